"""The trainer core as a library (S31): public hooks, and no scikit-learn dependency."""

import subprocess
import sys

import numpy as np
import torch
from torch.utils.data import Dataset

import sktorch_auto
from sktorch_auto import ArrayDataset, MixedCriterion, PytorchTrainer, set_seed

from .helpers import RecorderNet, subprocess_env

NO_SKLEARN = r"""
import sys

import numpy as np
import sktorch_auto.core
from sktorch_auto.core import ArrayDataset, PytorchTrainer

X = np.random.rand(20, 2).astype(np.float32)
trainer = PytorchTrainer(__import__("torch").nn.Linear, [2, 1], device="cpu")
trainer.train(ArrayDataset(X, X[:, :1]), name=None, n_epochs=2, verbose=False)
trainer.predict(X)
loaded = [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]
assert not loaded, loaded
print("ok")
"""


def test_core_imports_and_trains_without_scikit_learn(tmp_path):
    result = subprocess.run([sys.executable, "-c", NO_SKLEARN], cwd=tmp_path,
                            env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_s31_public_names_are_exported():
    for name in ["PytorchTrainer", "MixedCriterion", "SoftmaxCriterion", "ArrayDataset",
                 "set_seed", "register_builder"]:
        assert name in sktorch_auto.__all__
        assert getattr(sktorch_auto, name) is getattr(sktorch_auto.core, name)


class _HookedDataset(Dataset):
    def __init__(self, n=40):
        g = torch.Generator().manual_seed(0)
        self.X = torch.randn(n, 2, generator=g)
        self.y = self.X[:, 1:] * 2 + 10
        self.events = []

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], self.y[i]

    def switch_state(self):
        self.events.append("switch")

    def collate_fn(self, items):
        self.events.append("collate")
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


class _ShiftedCriterion(MixedCriterion):
    """A user's criterion built on the library's one: its postproc shifts predictions."""

    def postproc(self, pred):
        return super().postproc(pred) + 1000.0


def test_s31_hooks_are_the_supported_ways_to_adapt_the_trainer():
    set_seed(0)
    ds = _HookedDataset()
    epochs = []
    trainer = PytorchTrainer(RecorderNet, [2, 1], device="cpu")
    trainer.train(ds, name=None, n_epochs=2, batch_size=8, verbose=False,
                  criterion=_ShiftedCriterion, epoch_hook=lambda t: epochs.append(t.history[-1]))
    assert isinstance(trainer.criterion, _ShiftedCriterion)
    assert epochs and epochs[0]["epoch"] == 1
    n_batches = len(trainer.net.calls)
    assert ds.events.count("collate") == n_batches
    assert ds.events[0] == "switch"  # switch_state comes before the batch it prepares
    X = ds.X.numpy()
    raw = MixedCriterion.postproc(trainer.criterion, trainer.net(ds.X).detach()).numpy()
    assert np.allclose(trainer.predict(X), raw + 1000.0, atol=1e-4)
    assert isinstance(ArrayDataset(X, X), torch.utils.data.Dataset)
