"""``ArrayDataset``: in-memory arrays as a dataset the trainer batches fast."""

import warnings

import numpy as np
import torch
from torch.utils.data import Dataset


def as_tensor(array, dtype=None):
    """A tensor sharing memory with ``array`` where possible (no copy of the data).

    Read-only arrays (memory maps, some pandas frames) are shared too: the trainer
    never writes into its data, so torch's warning about them does not apply.
    """
    if isinstance(array, torch.Tensor):
        return array if dtype is None else array.to(dtype)
    array = np.ascontiguousarray(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(array)
    return tensor if dtype is None else tensor.to(dtype)


class ArrayDataset(Dataset):
    """Arrays (or tensors) held in memory, one row per sample.

    Items follow the trainer's format (S19): ``(input, target)`` or
    ``(input, weight, target)``, ``input`` being a list when there are several
    network inputs (S20). The trainer does not call ``__getitem__`` for it: it
    gathers whole batches from the tensors directly.

    Parameters
    ----------
    inputs : array-like or list of array-like
        One array per network input, each with one row per sample.
    target : array-like
        Targets, one row per sample, of the network's output shape (S21).
    weight : array-like, optional
        Per-sample weights of shape ``(n,)`` or per-output weights (S22).
    regression_flags, scale : optional
        Declared for :class:`~sktorch_auto.MixedCriterion` (S25).

    Examples
    --------
    >>> import numpy as np
    >>> ds = ArrayDataset(np.zeros((4, 3), np.float32), np.ones((4, 1), np.float32))
    >>> len(ds), ds[0][0].shape
    (4, torch.Size([3]))
    """

    def __init__(self, inputs, target, weight=None, regression_flags=None, scale=None):
        self.multi_input = isinstance(inputs, (list, tuple))
        self.inputs = [as_tensor(x) for x in (inputs if self.multi_input else [inputs])]
        self.target = as_tensor(target)
        self.weight = None if weight is None else as_tensor(weight)
        n = len(self.target)
        for name, tensor in [("input", x) for x in self.inputs] + [("weight", self.weight)]:
            if tensor is not None and len(tensor) != n:
                raise ValueError(f"The {name} has {len(tensor)} rows but the target has {n}.")
        if regression_flags is not None:
            self.regression_flags = regression_flags
        if scale is not None:
            self.scale = scale

    def __len__(self):
        return len(self.target)

    def __getitem__(self, index):
        x = [t[index] for t in self.inputs]
        x = x if self.multi_input else x[0]
        if self.weight is None:
            return x, self.target[index]
        return x, self.weight[index], self.target[index]

    def batch_tensors(self):
        """``(inputs, weight, target)``: the tensors the trainer batches from."""
        return self.inputs, self.weight, self.target

    def get_batch(self, indices):
        """The samples at ``indices`` as one batch ``(inputs, weight, target)``."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        x = [t.index_select(0, idx) for t in self.inputs]
        w = None if self.weight is None else self.weight.index_select(0, idx)
        return (x, w, self.target.index_select(0, idx)) if w is not None else (
            x, self.target.index_select(0, idx)
        )
