"""Small networks and datasets shared by the trainer-core tests."""

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

REPO_ROOT = Path(__file__).resolve().parents[2]


def subprocess_env(*extra_paths):
    """Environment for a fresh interpreter that can import sktorch_auto (and ``extra_paths``)."""
    env = dict(os.environ)
    paths = [str(p) for p in extra_paths] + [str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def linear_problem(n=96, d=3, offset=0.0, slope=1.0, seed=0, n_outputs=1):
    """Inputs ``X`` (float32) and noiseless linear targets ``offset + slope * X @ w``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, n_outputs)).astype(np.float32) + 0.5
    y = (offset + slope * X @ w).astype(np.float32)
    return X, y


def linear_net(d_in, d_out):
    return nn.Linear(d_in, d_out)


def mlp_net(d_in, d_out, hidden=8):
    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, d_out))


class RecorderNet(nn.Module):
    """A linear network recording, per forward call, its input rows and mode.

    ``calls`` holds ``(training, first_column_of_input)`` per batch; with an index
    stored in the first input column this reveals which rows were seen and when.
    """

    def __init__(self, d_in, d_out):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, x[:, 0].detach().clone()))
        return self.linear(x)

    def rows(self, training):
        seen = [c[1] for c in self.calls if c[0] == training]
        return torch.cat(seen) if seen else torch.empty(0)

    def batch_sizes(self, training):
        return [len(c[1]) for c in self.calls if c[0] == training]


class TwoInputNet(nn.Module):
    """``forward(a, b)``: two network inputs (S20)."""

    def __init__(self, d_a, d_b, d_out=1):
        super().__init__()
        self.a = nn.Linear(d_a, d_out)
        self.b = nn.Linear(d_b, d_out, bias=False)
        self.seen_shapes = []

    def forward(self, a, b):
        self.seen_shapes.append((tuple(a.shape), tuple(b.shape)))
        return self.a(a) + self.b(b)


class ItemDataset(Dataset):
    """A plain map-style dataset (goes through the DataLoader path), counting items."""

    def __init__(self, X, y, weight=None):
        self.X = torch.as_tensor(X)
        self.y = torch.as_tensor(y)
        self.weight = None if weight is None else torch.as_tensor(weight)
        self.n_getitem = 0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        self.n_getitem += 1
        if self.weight is None:
            return self.X[i], self.y[i]
        return self.X[i], self.weight[i], self.y[i]


def state_equal(a, b):
    """Whether two state dicts hold exactly the same tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


class ScriptedCriterion:
    """MSE for training; the ``k``-th validation batch gets ``script[k]`` as its loss.

    With in-memory data the validation part is one batch, so the script is the
    sequence of validation losses, epoch by epoch (the last value repeats).
    """

    def __init__(self, script):
        self.script = list(script)
        self.calls = []  # (unscaled, grad_enabled)

    def __call__(self, output, target, weights=None, unscaled=False):
        self.calls.append((unscaled, torch.is_grad_enabled()))
        mse = ((output - target.to(output.dtype)) ** 2).mean()
        if not unscaled:
            return mse
        k = sum(1 for c in self.calls if c[0]) - 1
        return torch.tensor(self.script[min(k, len(self.script) - 1)], dtype=torch.float64)

    def postproc(self, pred):
        return pred


class WorkerFlagDataset(Dataset):
    """Column 0 of each input is 1.0 when the item was made in a DataLoader worker."""

    def __init__(self, n=40):
        g = torch.Generator().manual_seed(0)
        self.X = torch.randn(n, 2, generator=g)
        self.y = self.X.sum(dim=1, keepdim=True)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        in_worker = torch.utils.data.get_worker_info() is not None
        x = self.X[i].clone()
        x[0] = 1.0 if in_worker else 0.0
        return x, self.y[i]


class SwitchingDataset(Dataset):
    """``switch_state()`` toggles a state that every item carries in input column 0."""

    def __init__(self, n=40):
        g = torch.Generator().manual_seed(0)
        self.X = torch.randn(n, 2, generator=g)
        self.y = self.X[:, 1:2] * 2
        self.state = 0
        self.n_switch = 0

    def __len__(self):
        return len(self.y)

    def switch_state(self):
        self.n_switch += 1
        self.state = 1 - self.state

    def __getitem__(self, i):
        x = self.X[i].clone()
        x[0] = float(self.state)
        return x, self.y[i]
