"""Applying a network to a dataset or to raw inputs, in large batches without gradients."""

import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from .batches import make_batches
from .checks import check_int

#: Batch size of validation and prediction over in-memory data (results do not depend on it).
EVAL_BATCH_SIZE = 4096


def input_dtype(net):
    """Floating dtype of the network's parameters: floating inputs are cast to it."""
    for p in net.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


@torch.inference_mode()
def apply_net(net, criterion, dataset, batch_size=EVAL_BATCH_SIZE, device="cpu", verbose=False,
              finite=True):
    """Post-processed network outputs for every item of ``dataset``, as a numpy array.

    In-memory inputs with NaN or infinity raise ValueError unless ``finite=False``.
    """
    check_int("batch_size", batch_size, 1)
    net.eval()
    batches = make_batches(dataset, np.arange(len(dataset)), batch_size, False, device,
                           dtype=input_dtype(net), finite=finite)
    outputs = [
        net(*inputs).cpu()
        for inputs, _, _ in tqdm(batches, desc="predict", disable=None if verbose else True,
                                 leave=False)
    ]
    if not outputs:
        outputs = _empty_output(net, dataset, device)
        if outputs is None:
            return np.empty((0,))
    # One post-processing of all outputs: per batch, its kernel launches add up.
    postproc = getattr(criterion, "postproc", None)
    output = torch.cat(outputs)
    if output.numel() == 0:  # zero rows: the output's shape, nothing to post-process
        return np.empty(tuple(output.shape), dtype=np.float32)
    if output.is_floating_point() and not torch.isfinite(output).all():
        warnings.warn("Some predictions are NaN or infinite: check the inputs for NaN, "
                      "infinity or values the network's dtype cannot hold.", RuntimeWarning,
                      stacklevel=3)
    return (postproc(output) if postproc is not None else output).numpy()


def _empty_output(net, dataset, device):
    """``[net(zero rows)]`` for empty raw inputs, so that their prediction has the
    output's width, shape (0, k); None where the network cannot say."""
    inputs = getattr(dataset, "inputs", None) if isinstance(dataset, RawInputs) else None
    if inputs is None:
        return None
    dtype = input_dtype(net)
    try:
        return [net(*[x.to(device=device, dtype=dtype) if x.is_floating_point()
                      else x.to(device) for x in inputs]).cpu()]
    except Exception:  # noqa: BLE001 - a network that cannot take zero rows
        return None


class RawInputs(torch.utils.data.Dataset):
    """Raw input arrays (one per network input) as an in-memory dataset without targets."""

    def __init__(self, *inputs):
        self.inputs = [x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
                       for x in inputs]
        lengths = [len(x) for x in self.inputs]
        if len(set(lengths)) > 1:
            raise ValueError(f"All inputs must have the same number of rows; got {lengths}.")
        self.target = torch.empty(lengths[0], 0)

    def __len__(self):
        return len(self.target)

    def __getitem__(self, index):
        return [x[index] for x in self.inputs], self.target[index]

    def batch_tensors(self):
        return self.inputs, None, self.target
