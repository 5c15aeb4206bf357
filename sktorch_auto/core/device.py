"""Choosing the torch device from what the user asked for."""

import warnings

import torch


def resolve_device(device):
    """A ``torch.device`` for ``device`` ('cpu', 'cuda', 'cuda:1', 'auto' or None).

    ``None`` and ``'auto'`` pick the GPU when there is one. A CUDA device asked for
    on a machine without CUDA falls back to the CPU with a warning, so the seed's
    default ``device='cuda'`` still runs on a laptop.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'auto' or a torch.device; got {device!r}."
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            warnings.warn(
                f"device={device!r} was asked for but CUDA is not available; using the CPU.",
                RuntimeWarning,
                stacklevel=3,
            )
            return torch.device("cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) exist."
            )
    elif resolved.type not in ("cpu", "mps", "xpu"):
        raise ValueError(f"Unsupported device {device!r}; use 'cpu' or 'cuda'.")
    return resolved
