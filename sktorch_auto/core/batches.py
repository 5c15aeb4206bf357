"""Batch sources: how the trainer turns a dataset into batches on the device.

A batch is ``(inputs, weight, target)``: ``inputs`` a list with one tensor per
network input (S20), ``weight`` a tensor or None (S19, S22).

- In-memory datasets (a ``TensorDataset``, an :class:`~sktorch_auto.ArrayDataset`)
  are moved to the device once; each batch is gathered from those tensors with a
  permutation drawn once per epoch: no per-sample ``__getitem__``, no collate.
- A dataset offering batched indexing (``get_batch(indices)``) is asked for whole
  batches, which then go to the device.
- Any other dataset goes through a ``DataLoader`` with its ``collate_fn`` (S23),
  ``switch_state()`` before each batch (S24) and ``n_workers`` processes (S5).
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


def unpack_item(item):
    """Split a dataset item or collated batch into ``(inputs, weight, target)`` (S19)."""
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        kind = f"a {type(item).__name__} of length {len(item)}" if isinstance(
            item, (tuple, list)
        ) else f"a {type(item).__name__}"
        raise ValueError(
            "A dataset item must be a tuple (input, target) or (input, weight, target); "
            f"got {kind}."
        )
    inputs, target = item[0], item[-1]
    weight = item[1] if len(item) == 3 else None
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    return inputs, weight, target


def in_memory_tensors(dataset):
    """``(inputs, weight, target)`` tensors of an in-memory dataset, else None."""
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) in (2, 3):
        if getattr(dataset, "collate_fn", None) or getattr(dataset, "switch_state", None):
            return None
        return unpack_item(dataset.tensors)
    tensors = getattr(dataset, "batch_tensors", None)
    return tensors() if callable(tensors) else None


def _to(tensor, device, dtype=None):
    """``tensor`` on ``device``; floating tensors cast to ``dtype`` when given."""
    if tensor is None:
        return None
    tensor = torch.as_tensor(tensor)
    if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
        return tensor.to(device=device, dtype=dtype, non_blocking=True)
    return tensor.to(device, non_blocking=True)


def _batch_to(batch, device, dtype=None):
    """A batch on the device, its floating inputs in the network's dtype."""
    inputs, weight, target = batch
    return [_to(x, device, dtype) for x in inputs], _to(weight, device), _to(target, device)


class IndexedBatches:
    """Batches drawn by index from a dataset that can fetch many rows at once.

    Parameters
    ----------
    fetch : callable
        ``fetch(rows) -> (inputs, weight, target)`` already on the device; ``rows`` is an
        index tensor, or a slice when the rows are consecutive and need no shuffling.
    indices : ndarray of int
        The rows of this part (training or validation).
    batch_size : int
    shuffle : bool
        Draw a new permutation of the rows for every pass (torch's global RNG).
    device : torch.device
    """

    def __init__(self, fetch, indices, batch_size, shuffle, device, index_device=None):
        self.fetch = fetch
        indices = np.asarray(indices, dtype=np.int64)
        # Consecutive rows in order (validation of a suffix, prediction) are sliced:
        # views instead of gathered copies.
        self.first = int(indices[0]) if len(indices) else 0
        self.consecutive = not shuffle and bool(
            len(indices) and np.array_equal(indices, np.arange(self.first, self.first
                                                               + len(indices))))
        self.indices = torch.as_tensor(indices, device=index_device or device)
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return -(-len(self.indices) // self.batch_size)

    def __iter__(self):
        n = len(self.indices)
        if self.consecutive:
            for start in range(self.first, self.first + n, self.batch_size):
                yield self.fetch(slice(start, min(start + self.batch_size, self.first + n)))
            return
        order = self.indices
        if self.shuffle:
            order = order[torch.randperm(n, device=order.device)]
        for start in range(0, n, self.batch_size):
            yield self.fetch(order[start : start + self.batch_size])


class _SwitchingSubset(torch.utils.data.Subset):
    """A subset that calls ``dataset.switch_state()`` before generating each batch (S24).

    The DataLoader fetches a whole batch through ``__getitems__`` in the process that
    builds it (a worker's own copy of the dataset when ``n_workers > 0``).
    """

    def __getitems__(self, indices):
        self.dataset.switch_state()
        return [self.dataset[self.indices[i]] for i in indices]


class LoaderBatches:
    """Batches through a torch ``DataLoader`` over the given rows of a dataset."""

    def __init__(self, dataset, indices, batch_size, shuffle, device, n_workers=0, dtype=None):
        self.device = device
        self.dtype = dtype
        switching = callable(getattr(dataset, "switch_state", None))
        subset = (_SwitchingSubset if switching else torch.utils.data.Subset)(
            dataset, list(map(int, indices))
        )
        self.loader = DataLoader(
            subset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=n_workers,
            collate_fn=getattr(dataset, "collate_fn", None),
            pin_memory=torch.device(device).type == "cuda",
        )

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield _batch_to(unpack_item(batch), self.device, self.dtype)


def check_finite(tensors):
    """Raise ValueError if a floating tensor of ``(inputs, weight, target)`` has NaN/inf."""
    inputs, weight, target = tensors
    named = [(f"input {i}" if len(inputs) > 1 else "input", x) for i, x in enumerate(inputs)]
    for name, t in named + [("weight", weight), ("target", target)]:
        # A finite sum proves every value finite; only then is the exact test needed.
        if t is not None and t.is_floating_point() and t.numel() and not (
                torch.isfinite(t.sum()) or torch.isfinite(t).all()):
            raise ValueError(f"The dataset's {name} contains NaN or infinity.")


def make_batches(dataset, indices, batch_size, shuffle, device, n_workers=0, cache=None,
                 dtype=None, finite=True):
    """The fastest batch source that the dataset allows (see the module docstring).

    ``cache`` is a dict shared between the training and validation sources of one
    run, so that in-memory tensors go to the device only once. Floating inputs are
    cast to ``dtype`` (the network's) when given. In-memory data is checked for NaN and
    infinity unless ``finite=False`` (the caller checked it already).
    """
    device = torch.device(device)
    cache = {} if cache is None else cache
    if "tensors" not in cache:
        tensors = in_memory_tensors(dataset)
        if tensors is not None:
            tensors = _batch_to(tensors, device, dtype)
            if finite:
                check_finite(tensors)
        cache["tensors"] = tensors
    tensors = cache["tensors"]
    if tensors is not None:
        inputs, weight, target = tensors

        def fetch(rows):
            def take(t):
                return t[rows] if isinstance(rows, slice) else t.index_select(0, rows)

            return [take(x) for x in inputs], None if weight is None else take(weight), take(
                target)

        return IndexedBatches(fetch, indices, batch_size, shuffle, device)
    get_batch = getattr(dataset, "get_batch", None)
    if callable(get_batch) and not getattr(dataset, "switch_state", None):
        def fetch_batch(rows):
            if isinstance(rows, slice):
                rows = torch.arange(rows.start, rows.stop)
            return _batch_to(unpack_item(get_batch(rows)), device, dtype)

        return IndexedBatches(fetch_batch, indices, batch_size, shuffle, device,
                              index_device="cpu")
    return LoaderBatches(dataset, indices, batch_size, shuffle, device, n_workers, dtype)

