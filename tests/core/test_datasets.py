"""Datasets the trainer accepts (S19-S25): items, inputs, weights, collate_fn, switch_state."""

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from sktorch_auto.core import ArrayDataset, PytorchTrainer
from sktorch_auto.core.batches import unpack_item

from .helpers import (
    ItemDataset,
    RecorderNet,
    SwitchingDataset,
    TwoInputNet,
    linear_net,
    linear_problem,
    mlp_net,
)


def train(dataset, builder=linear_net, args=(3, 1), **kwargs):
    kwargs.setdefault("verbose", False)
    kwargs.setdefault("batch_size", 8)
    kwargs.setdefault("n_epochs", 3)
    kwargs.setdefault("name", None)
    trainer = PytorchTrainer(builder, list(args), device="cpu")
    return trainer.train(dataset, **kwargs)


# ------------------------------------------------------------------------ ArrayDataset


def test_array_dataset_items_follow_the_training_format():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.ones((4, 1), np.float32)
    x0, y0 = ArrayDataset(X, y)[1]
    assert torch.equal(x0, torch.tensor([3.0, 4.0, 5.0])) and torch.equal(y0, torch.ones(1))
    x0, w0, y0 = ArrayDataset(X, y, weight=np.array([1, 2, 3, 4], np.float32))[2]
    assert w0.item() == 3.0
    (a, b), _ = ArrayDataset([X, X[:, :2]], y)[0]
    assert a.shape == (3,) and b.shape == (2,)


def test_array_dataset_rejects_arrays_of_different_lengths():
    with pytest.raises(ValueError, match="rows"):
        ArrayDataset(np.zeros((4, 3)), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="rows"):
        ArrayDataset(np.zeros((4, 3)), np.zeros((4, 1)), weight=np.ones(3))


def test_s25_array_dataset_declares_flags_and_scale_only_when_given():
    plain = ArrayDataset(np.zeros((2, 1)), np.zeros((2, 1)))
    assert not hasattr(plain, "regression_flags") and not hasattr(plain, "scale")
    declared = ArrayDataset(np.zeros((2, 1)), np.zeros((2, 1)), regression_flags=[1],
                            scale=[[0.0], [1.0]])
    assert declared.regression_flags == [1] and declared.scale == [[0.0], [1.0]]


# ------------------------------------------------------------------------------- S19


@pytest.mark.parametrize("with_weight", [False, True])
def test_s19_items_with_and_without_weight_train(with_weight):
    X, y = linear_problem(n=40)
    weight = np.ones(40, np.float32) if with_weight else None
    trainer = train(ItemDataset(X, y, weight), n_epochs=10, learning_rate=0.05)
    first, best = trainer.history[0]["valid_loss"], trainer.best_loss
    assert best < 0.9 * first


class _BadItems(Dataset):
    def __init__(self, make):
        self.make = make

    def __len__(self):
        return 20

    def __getitem__(self, i):
        return self.make(torch.ones(3), torch.ones(1))


@pytest.mark.parametrize("make", [
    lambda x, y: (x,),
    lambda x, y: (x, y, y, y),
    lambda x, y: x,
    lambda x, y: {"input": x, "target": y},
], ids=["1-tuple", "4-tuple", "bare-tensor", "dict"])
def test_s19_an_item_that_is_not_a_2_or_3_tuple_is_a_value_error(make):
    with pytest.raises(ValueError, match="tuple"):
        train(_BadItems(make), n_epochs=1)


def test_s19_unpack_item():
    x, w, y = torch.ones(2, 3), torch.ones(2), torch.zeros(2, 1)
    assert unpack_item((x, y))[1] is None
    inputs, weight, target = unpack_item([[x, x], w, y])
    assert len(inputs) == 2 and weight is w and target is y
    with pytest.raises(ValueError, match="length 4"):
        unpack_item((x, w, y, y))


# ------------------------------------------------------------------------------- S20


class _TwoInputItems(Dataset):
    def __init__(self, A, B, y):
        self.A, self.B, self.y = torch.as_tensor(A), torch.as_tensor(B), torch.as_tensor(y)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return [self.A[i], self.B[i]], self.y[i]


def _two_input_problem(n=64):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(n, 3)).astype(np.float32)
    B = rng.normal(size=(n, 2)).astype(np.float32)
    y = (A @ np.array([[1.0], [2.0], [-1.0]]) + B @ np.array([[3.0], [-2.0]]))
    return A, B, y.astype(np.float32)


@pytest.mark.parametrize("kind", ["custom", "array"])
def test_s20_list_input_is_unpacked_into_forward(kind):
    A, B, y = _two_input_problem()
    ds = _TwoInputItems(A, B, y) if kind == "custom" else ArrayDataset([A, B], y)
    trainer = train(ds, TwoInputNet, (3, 2), n_epochs=20, learning_rate=0.05, batch_size=16)
    shapes = trainer.net.seen_shapes
    assert shapes and all(a[1:] == (3,) and b[1:] == (2,) and a[0] == b[0] for a, b in shapes)
    assert trainer.best_loss < 0.5 * trainer.history[0]["valid_loss"]
    pred = trainer.predict(A, B)
    assert pred.shape == (64, 1)
    assert np.allclose(pred, trainer.predict_dataset(ds, verbose=False), atol=1e-5)


# ------------------------------------------------------------------------------- S21


@pytest.mark.parametrize("d_out, target_shape", [(2, (40, 1)), (1, (40,))])
def test_s21_output_shape_different_from_target_shape_is_a_value_error(d_out, target_shape):
    X, _ = linear_problem(n=40)
    y = np.zeros(target_shape, np.float32)
    with pytest.raises(ValueError) as info:
        train(ArrayDataset(X, y), linear_net, (3, d_out), batch_size=8)
    message = str(info.value)
    assert str((8, d_out)) in message
    assert str((8,) + target_shape[1:]) in message


@pytest.mark.parametrize("d_out, hint", [(1, "y.reshape(-1, 1)"), (3, "one_hot(y, 3)")])
def test_s21_one_dimensional_targets_get_a_hint(d_out, hint):
    X, _ = linear_problem(n=40)
    y = np.zeros(40, np.float32)
    with pytest.raises(ValueError, match="S21") as info:
        train(ArrayDataset(X, y), linear_net, (3, d_out), batch_size=8)
    assert hint in str(info.value)


class _Flat(torch.nn.Module):
    def __init__(self, d_in):
        super().__init__()
        self.linear = torch.nn.Linear(d_in, 1)

    def forward(self, x):
        return self.linear(x).squeeze(1)


def test_s21_one_dimensional_outputs_and_targets_train_and_predict():
    X, y = linear_problem(n=40, offset=100.0)
    trainer = train(ArrayDataset(X, y[:, 0]), _Flat, (3,), n_epochs=30, learning_rate=0.05)
    pred = trainer.predict(X)
    assert pred.shape == (40,)
    assert np.corrcoef(pred, y[:, 0])[0, 1] > 0.9
    assert abs(pred.mean() - y.mean()) < y.std()  # original units


# ------------------------------------------------------------------------------- S22


def _contradictory_halves(n=64):
    """Each input twice: once with target f(x) and weight 1, once with -f(x) and weight 0."""
    X, y = linear_problem(n=n, slope=2.0)
    X2 = np.concatenate([X, X])
    y2 = np.concatenate([y, -y])
    w = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.float32)
    order = np.random.default_rng(1).permutation(2 * n)
    return X, y, X2[order], y2[order], w[order]


@pytest.mark.parametrize("kind", ["array", "tensor", "custom"])
def test_s22_zero_sample_weight_removes_samples_from_training(kind):
    X, y, X2, y2, w = _contradictory_halves()
    if kind == "array":
        ds = ArrayDataset(X2, y2, weight=w)
    elif kind == "tensor":
        ds = TensorDataset(torch.from_numpy(X2), torch.from_numpy(w), torch.from_numpy(y2))
    else:
        ds = ItemDataset(X2, y2, w)
    trainer = train(ds, n_epochs=25, batch_size=16, learning_rate=0.05)
    pred = trainer.predict(X)
    # Unweighted, the best fit would be 0 everywhere; weighted, it follows the first half.
    assert np.corrcoef(pred[:, 0], y[:, 0])[0, 1] > 0.95
    assert np.abs(pred - y).mean() < 0.3 * np.abs(y).mean()


def test_s22_per_output_weights_weight_each_column():
    X, y = linear_problem(n=64, slope=2.0)
    X2 = np.concatenate([X, X])
    # Rows of the first copy teach column 0 +f; rows of the second teach column 1 -f.
    y2 = np.concatenate([np.hstack([y, y]), np.hstack([-y, -y])])
    w = np.concatenate([np.tile([1.0, 0.0], (64, 1)), np.tile([0.0, 1.0], (64, 1))])
    ds = ArrayDataset(X2, y2, weight=w.astype(np.float32))
    trainer = train(ds, linear_net, (3, 2), n_epochs=25, batch_size=16, learning_rate=0.05)
    pred = trainer.predict(X)
    assert np.corrcoef(pred[:, 0], y[:, 0])[0, 1] > 0.95
    assert np.corrcoef(pred[:, 1], -y[:, 0])[0, 1] > 0.95


# ------------------------------------------------------------------------------- S23


class _DictItems(Dataset):
    """Items a default collate cannot turn into (input, target): collate_fn must be used."""

    regression_flags = [1]
    scale = [[0.0], [1.0]]

    def __init__(self, X, y):
        self.X, self.y = torch.as_tensor(X), torch.as_tensor(y)
        self.n_collate = 0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.X[i], "y": self.y[i]}

    def collate_fn(self, items):
        self.n_collate += 1
        return torch.stack([it["x"] for it in items]), torch.stack([it["y"] for it in items])


def test_s23_s28_collate_fn_is_used_and_declared_attributes_replace_inference():
    X, y = linear_problem(n=40)
    ds = _DictItems(X, y)
    trainer = train(ds, n_epochs=2, with_restarts=False)
    # 36 training rows in batches of 8 -> 5, 4 validation rows -> 1, per epoch.
    assert ds.n_collate == 2 * 6
    pred = trainer.predict_dataset(ds, batch_size=8, verbose=False)
    assert pred.shape == (40, 1)
    assert ds.n_collate == 2 * 6 + 5


class _CollatingTensors(TensorDataset):
    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.n_collate = 0

    def collate_fn(self, items):
        self.n_collate += 1
        return tuple(torch.stack(t) for t in zip(*items))


def test_s23_collate_fn_of_a_tensor_dataset_is_used():
    X, y = linear_problem(n=40)
    ds = _CollatingTensors(torch.from_numpy(X), torch.from_numpy(y))
    train(ds, n_epochs=2, with_restarts=False)
    assert ds.n_collate == 2 * 6


# ------------------------------------------------------------------------------- S24


@pytest.mark.parametrize("train_prop, n_train_batches, n_valid_batches", [
    (0.9, 5, 1),  # 36 training rows: the last batch is partial
    (0.8, 4, 1),  # 32 training rows: batches of exactly 8
])
def test_s24_switch_state_is_called_once_per_batch(train_prop, n_train_batches,
                                                   n_valid_batches):
    ds = SwitchingDataset(n=40)
    trainer = train(ds, RecorderNet, (2, 1), n_epochs=2, train_prop=train_prop,
                    with_restarts=False)
    n_batches = len(trainer.net.calls)
    assert n_batches == 2 * (n_train_batches + n_valid_batches)
    assert ds.n_switch == n_batches


@pytest.mark.parametrize("n_workers", [0, 1])
def test_s24_each_batch_is_generated_after_its_own_switch_state(n_workers):
    """Every item of a batch carries the state switched to for that batch: states are
    uniform within a batch and alternate from one batch to the next."""
    ds = SwitchingDataset(n=40)
    trainer = train(ds, RecorderNet, (2, 1), n_epochs=1, n_workers=n_workers)
    states = [c[1] for c in trainer.net.calls if c[0]]  # training batches, in order
    assert len(states) == 5
    assert all(torch.all(s == s[0]) for s in states)
    firsts = [int(s[0]) for s in states]
    assert all(a != b for a, b in zip(firsts, firsts[1:])), firsts


# ------------------------------------------------------------------------------- S25


class _DeclaredItems(ItemDataset):
    regression_flags = [1]
    scale = [[0.5], [2.0]]


def test_s25_regression_flags_and_scale_declared_on_the_dataset_are_used():
    X, _ = linear_problem(n=40)
    y = (X[:, :1] > 0).astype(np.float32)  # 0/1: would be inferred as classification
    trainer = train(_DeclaredItems(X, y), n_epochs=2)
    crit = trainer.criterion
    assert crit.regression_flags.tolist() == [1]
    assert crit.mean.tolist() == [0.5] and crit.std.tolist() == [2.0]
    raw = trainer.net(torch.from_numpy(X)).detach().numpy()
    assert np.allclose(trainer.predict(X), raw * 2.0 + 0.5, atol=1e-5)  # no sigmoid


def test_s25_without_declaration_a_binary_column_is_classification():
    X, _ = linear_problem(n=40)
    y = (X[:, :1] > 0).astype(np.float32)
    trainer = train(ItemDataset(X, y), mlp_net, (3, 1), n_epochs=2)
    assert trainer.criterion.regression_flags.tolist() == [0]
    raw = trainer.net(torch.from_numpy(X)).detach()
    assert np.allclose(trainer.predict(X), torch.sigmoid(raw).numpy(), atol=1e-6)
