"""The fast in-memory batch path and the speed switches of the trainer (issue 4)."""

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from sktorch_auto.core import ArrayDataset, PytorchTrainer, set_seed
from sktorch_auto.core.batches import IndexedBatches, make_batches

from .helpers import linear_problem, mlp_net


class CountingTensorDataset(TensorDataset):
    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.items = 0

    def __getitem__(self, index):
        self.items += 1
        return super().__getitem__(index)


class BatchedDataset(Dataset):
    """Offers batched indexing only; counts how it is asked for data."""

    def __init__(self, X, y):
        self.X, self.y = torch.as_tensor(X), torch.as_tensor(y)
        self.items = self.batches = 0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, index):
        self.items += 1
        return self.X[index], self.y[index]

    def get_batch(self, indices):
        self.batches += 1
        return self.X[indices], self.y[indices]


def _train(dataset, **kwargs):
    trainer = PytorchTrainer(mlp_net, [3, 1], device="cpu")
    return trainer.train(dataset, name=None, batch_size=16, n_epochs=3, verbose=False,
                         **kwargs)


def test_tensor_dataset_is_batched_without_getitem():
    X, y = linear_problem(n=80)
    dataset = CountingTensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    trainer = _train(dataset)
    trainer.predict_dataset(dataset, verbose=False)
    assert dataset.items == 0
    assert len(trainer.history) >= 1


def test_dataset_with_get_batch_is_asked_for_whole_batches():
    X, y = linear_problem(n=80)
    dataset = BatchedDataset(X, y)
    trainer = _train(dataset)
    assert dataset.items == 0
    # Criterion inference (1) + per epoch 5 training batches of 16 and 1 validation batch.
    assert dataset.batches == 1 + len(trainer.history) * (5 + 1)


def test_in_memory_batches_reuse_the_data_without_copying_it():
    X, y = linear_problem(n=40)
    dataset = ArrayDataset(X, y)
    batches = make_batches(dataset, np.arange(40), 10, False, "cpu")
    first_inputs, _, first_target = next(iter(batches))
    # Consecutive rows in order are views of the dataset's tensors, not copies.
    assert first_inputs[0].data_ptr() == dataset.inputs[0].data_ptr()
    assert first_target.data_ptr() == dataset.target.data_ptr()


def test_shuffled_batches_cover_every_row_once_per_pass():
    seen = []
    batches = IndexedBatches(lambda idx: idx, np.arange(5, 42), 8, True, torch.device("cpu"))
    for idx in batches:
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(5, 42))
    assert seen != list(range(5, 42))  # shuffled


def test_consecutive_rows_out_of_order_are_not_sliced():
    batches = IndexedBatches(lambda rows: rows, np.array([3, 1, 2]), 2, False,
                             torch.device("cpu"))
    assert [r.tolist() for r in batches] == [[3, 1], [2]]


def test_amp_trains_in_bfloat16_on_the_cpu_close_to_float32(monkeypatch):
    X, y = linear_problem(n=200, offset=10.0)
    autocast_dtypes = []
    original = torch.autocast

    def spy(device_type, dtype=None, **kwargs):
        autocast_dtypes.append(dtype)
        return original(device_type, dtype=dtype, **kwargs)

    monkeypatch.setattr(torch, "autocast", spy)
    predictions = {}
    for amp in (False, True):
        set_seed(0)
        trainer = PytorchTrainer(mlp_net, [3, 1], device="cpu")
        trainer.train(ArrayDataset(X, y), name=None, batch_size=32, n_epochs=15,
                      learning_rate=1e-2, verbose=False, amp=amp)
        predictions[amp] = trainer.predict(X)
    assert set(autocast_dtypes) == {torch.bfloat16}
    assert predictions[True].dtype == np.float32
    assert np.isfinite(predictions[True]).all()
    assert not np.array_equal(predictions[True], predictions[False])  # really bfloat16
    assert np.corrcoef(predictions[True].ravel(), predictions[False].ravel())[0, 1] > 0.99


def test_compile_switch_runs_the_network_through_torch_compile(monkeypatch):
    compiled = []
    original = torch.compile

    def spy(model, **kwargs):
        compiled.append(kwargs)
        return original(model, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    X, y = linear_problem(n=64)
    trainer = _train(ArrayDataset(X, y), compile="eager")
    assert compiled == [{"backend": "eager"}]
    # Best versions are taken from the original module: plain parameter names.
    assert all(not k.startswith("_orig_mod") for k in trainer.net.state_dict())
    assert np.isfinite(trainer.predict(X)).all()


@pytest.mark.parametrize("flag", [False, True])
def test_training_leaves_torch_threads_as_they_were(flag):
    before = torch.get_num_threads()
    X, y = linear_problem(n=64)
    _train(ArrayDataset(X, y), amp=flag)
    assert torch.get_num_threads() == before


class CodesNet(torch.nn.Module):
    """Numeric inputs plus an integer code per row (an embedding); records input dtypes."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(5, 2)
        self.out = torch.nn.Linear(3 + 2, 1)
        self.dtypes = set()

    def forward(self, x, codes):
        self.dtypes.add((x.dtype, codes.dtype))
        return self.out(torch.cat([x, self.embedding(codes[:, 0])], dim=1))


def test_integer_codes_travel_beside_floats_without_a_cast_or_getitem(monkeypatch):
    X, y = linear_problem(n=96)
    codes = torch.randint(0, 5, (96, 1))
    dataset = ArrayDataset([X.astype(np.float64), codes], y)
    monkeypatch.setattr(ArrayDataset, "__getitem__", lambda *a: pytest.fail("per-sample"))
    net = CodesNet()
    trainer = PytorchTrainer(lambda: net, [], device="cpu")
    trainer.train(dataset, name=None, batch_size=16, n_epochs=3, verbose=False)
    # Floats are cast to the network's dtype; the codes stay int64 throughout.
    assert net.dtypes == {(torch.float32, torch.int64)}
    assert trainer.predict(X.astype(np.float32), codes.numpy()).shape == (96, 1)


def test_networks_with_embeddings_are_trained_by_autograd():
    from sktorch_auto.core.criterion import MixedCriterion
    from sktorch_auto.core.manual import manual_step

    assert manual_step(CodesNet(), MixedCriterion(None, [1], ([0.0], [1.0]))) is None
