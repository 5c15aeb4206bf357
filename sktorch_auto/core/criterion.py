"""Training criteria: the seed's ``MixedCriterion`` (S26-S28) and a softmax one.

A criterion is built from the dataset (or None) and offers
``__call__(output, target, weights=None, unscaled=False)`` and ``postproc(pred)``.
Training backpropagates the scaled loss; the unscaled loss measures quality.
``state()`` / ``from_state()`` let a checkpoint rebuild the criterion for
prediction without the dataset.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .batches import in_memory_tensors, unpack_item

#: S27/S28: how many samples the flags and the scale are inferred from.
N_INFERENCE_SAMPLES = 1000


def _as_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _item_target(item):
    try:
        return unpack_item(item)[2]
    except ValueError as exc:
        raise ValueError(f"{exc} If a collate_fn builds batches from other items, declare "
                         "the dataset's regression_flags and scale (or pass a "
                         "criterion).") from exc


def sample_targets(dataset, n=N_INFERENCE_SAMPLES):
    """The targets of the first ``n`` samples as a 2-D float64 array (samples, columns)."""
    n = min(n, len(dataset))
    if n == 0:
        raise ValueError("Cannot infer the criterion's settings from an empty dataset.")
    tensors = in_memory_tensors(dataset)
    get_batch = getattr(dataset, "get_batch", None)
    if tensors is not None:
        target = _as_numpy(tensors[-1][:n])
    elif get_batch is not None:
        target = _as_numpy(get_batch(torch.arange(n))[-1])
    else:
        target = np.stack([_as_numpy(_item_target(dataset[i])) for i in range(n)])
    return target.reshape(n, -1).astype(np.float64)


def infer_regression_flags(targets):
    """S27: a column holding only 0 and 1 is classification (flag 0), else regression (1)."""
    binary = np.all((targets == 0) | (targets == 1), axis=0)
    return (~binary).astype(np.int64)


def check_output_shape(output, target):
    """S21: the network's output and the target must have the same shape."""
    if output.shape != target.shape:
        hint = ""
        if target.dim() == 1 and output.dim() == 2 and len(target) == len(output):
            if output.shape[1] == 1:
                hint = (" Give the dataset targets of shape (n, 1), e.g. y.reshape(-1, 1) "
                        "or y.unsqueeze(1).")
            else:
                hint = (" Class indices? Targets are one-hot here, as the network's "
                        f"{output.shape[1]} outputs: torch.nn.functional.one_hot(y, "
                        f"{output.shape[1]}).float() (with criterion=SoftmaxCriterion for "
                        "softmax cross-entropy).")
        raise ValueError(
            f"The network's output has shape {tuple(output.shape)} but the target has "
            f"shape {tuple(target.shape)}; they must be equal (S21).{hint}"
        )


def _broadcast_weights(weights, n, dtype):
    """Weights (one per sample, or one per output) shaped to multiply ``(n, k)`` terms."""
    w = weights.to(dtype)
    return w.reshape(n, -1) if w.dim() > 1 else w.reshape(n, 1)


def infer_scale(targets, regression_flags, weights=None):
    """S28: mean and std of the regression columns; 0 and 1 for the classification ones.

    ``weights`` (one per sample, optional) count like repeated samples: a sample of
    weight zero does not move the scale.
    """
    flags = np.asarray(regression_flags, dtype=bool)
    # NaN or infinity in the targets: the batches' check names them, without numpy's
    # "invalid value" warning first.
    with np.errstate(invalid="ignore", over="ignore"):
        if weights is None:
            mean, std = targets.mean(axis=0), targets.std(axis=0)
        else:
            w = np.asarray(weights, dtype=np.float64).reshape(len(targets), 1) / np.sum(weights)
            kept = w[:, 0] > 0
            mean = (w[kept] * targets[kept]).sum(axis=0)
            std = np.sqrt((w[kept] * (targets[kept] - mean) ** 2).sum(axis=0))
        mean = np.where(flags, mean, 0.0)
    # A spread that is rounding noise next to the mean, or whose inverse float32 cannot
    # hold, is a constant column: scaled by 1 (dividing by it made the loss NaN).
    real = (std > 1e-12 * np.abs(mean)) & (std > 1.0 / np.finfo(np.float32).max)
    std = np.where(flags & real, std, 1.0)
    return mean, std


class MixedCriterion:
    """Any mix of regression (MSE) and binary classification (BCE) columns (S27).

    Parameters
    ----------
    dataset : Dataset or None
        Where ``regression_flags`` and ``scale = [mean, std]`` are read from, or
        inferred from the first 1000 samples when the dataset does not declare them.
        A column holding only 0 and 1 is classification.
    regression_flags : sequence of {0, 1}, optional
        Overrides the dataset's / inferred flags (1 = regression column).
    scale : (mean, std), optional
        Overrides the dataset's / inferred scale.

    Attributes
    ----------
    regression_flags : ndarray of int
        One flag per target column (targets flattened per sample).
    mean, std : ndarray of float
        Scale of each column; classification columns have mean 0 and std 1.
    """

    def __init__(self, dataset=None, regression_flags=None, scale=None):
        if regression_flags is None:
            regression_flags = getattr(dataset, "regression_flags", None)
        if scale is None:
            scale = getattr(dataset, "scale", None)
        targets = None
        if regression_flags is None or scale is None:
            if dataset is None:
                raise ValueError(
                    "MixedCriterion needs a dataset, or both regression_flags and scale."
                )
            targets = sample_targets(dataset)
        if regression_flags is None:
            regression_flags = infer_regression_flags(targets)
        self.regression_flags = np.asarray(regression_flags, dtype=np.int64).ravel()
        if scale is None:
            scale = infer_scale(targets, self.regression_flags)
        mean, std = (np.asarray(s, dtype=np.float64).ravel() for s in scale)
        if not (len(mean) == len(std) == len(self.regression_flags)):
            raise ValueError(
                f"scale has {len(mean)} means and {len(std)} stds for "
                f"{len(self.regression_flags)} target columns."
            )
        self.mean, self.std = mean, std
        self._cache = {}
        # Targets far from zero next to their spread lose precision in t / s - m / s.
        self._small_offset = bool(np.all(np.abs(mean) <= 1e3 * std))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = {}  # device tensors are rebuilt where the criterion is used
        return state

    def _constants(self, like):
        """Flags, mean and std as tensors on ``like``'s device and dtype (cached)."""
        key = (like.device, like.dtype)
        if key not in self._cache:
            as_t = lambda a: torch.as_tensor(a, device=like.device, dtype=like.dtype)  # noqa: E731
            self._cache[key] = (
                torch.as_tensor(self.regression_flags.astype(bool), device=like.device),
                as_t(self.mean),
                as_t(self.std),
                as_t(1.0 / self.std),
                as_t(-self.mean / self.std),
            )
        return self._cache[key]

    def _check_shape(self, output):
        n_columns = output.shape[1]
        if n_columns != len(self.regression_flags):
            raise ValueError(
                f"The network outputs {n_columns} values per sample but the criterion "
                f"has {len(self.regression_flags)} target columns."
            )

    def __call__(self, output, target, weights=None, unscaled=False):
        """Mean loss: MSE on (scaled) regression columns, BCE on logits elsewhere.

        Weights (one per sample, or one per output) multiply the element losses;
        they are not normalised (S22).
        """
        return self._loss(*self._columns(output, target), weights, unscaled)

    def _kinds(self):
        """Whether any and whether all columns are regression (checked once, in numpy:
        no device sync; the common cases then take the fewest kernels, which on small
        networks cost as much as the arithmetic)."""
        kinds = self._cache.get("kinds")
        if kinds is None:
            flags = self.regression_flags
            kinds = self._cache["kinds"] = (bool(flags.any()), bool(flags.all()))
        return kinds

    def _loss(self, n, out, tgt, weights, unscaled):
        """The loss of :meth:`__call__` on ``(n, columns)`` output and target."""
        regression, only_regression = self._kinds()
        if regression:  # the prediction and target compared by the squared error
            if unscaled:
                _, mean, std, _, _ = self._constants(out)
                pred, true = torch.addcmul(mean, out, std), tgt
            else:
                pred, true = out, self._scaled_target(tgt)
        if weights is None and only_regression:
            return F.mse_loss(pred, true)
        if weights is None and not regression:
            return F.binary_cross_entropy_with_logits(out, tgt)
        loss = (pred - true) ** 2 if regression else None
        if not only_regression:
            bce = F.binary_cross_entropy_with_logits(out, tgt, reduction="none")
            loss = torch.where(self._constants(out)[0], loss, bce) if regression else bce
        if weights is not None:
            loss = loss * _broadcast_weights(weights, n, out.dtype)
        return loss.mean()

    def _columns(self, output, target):
        """``n`` and the output and target as ``(n, columns)``, the target in the output's
        dtype; the number of columns checked against the flags."""
        n = output.shape[0]
        out = output.reshape(n, -1)
        tgt = target.reshape(n, -1)
        if tgt.dtype != out.dtype:
            tgt = tgt.to(out.dtype)
        self._check_shape(out)
        return n, out, tgt

    def _scaled_target(self, tgt):
        """The target in the network's scale, ``(t - mean) / std``."""
        _, mean, _, inv_std, shift = self._constants(tgt)
        if self._small_offset:
            return torch.addcmul(shift, tgt, inv_std)
        return (tgt - mean) * inv_std  # t / s - m / s would cancel in float32: subtract first

    def loss_and_gradient(self, output, target, weights=None):
        """``self(output, target, weights)`` and its :meth:`gradient`, computed together
        (for hand-written backward passes, :mod:`~sktorch_auto.core.manual`)."""
        n, out, tgt = self._columns(output, target)
        if weights is None and self._kinds()[1]:  # plain MSE: one difference for both
            diff = (out - self._scaled_target(tgt)).reshape(-1)
            loss = torch.dot(diff, diff).div_(diff.numel())
            return loss, diff.mul_(2 / diff.numel()).reshape(output.shape)
        return (self._loss(n, out, tgt, weights, False),
                self._gradient(n, out, tgt, weights).reshape(output.shape))

    def gradient(self, output, target, weights=None):
        """The gradient of ``self(output, target, weights)`` with respect to ``output``,
        written out (for hand-written backward passes, :mod:`~sktorch_auto.core.manual`)."""
        return self._gradient(*self._columns(output, target), weights).reshape(output.shape)

    def _gradient(self, n, out, tgt, weights):
        """The gradient of :meth:`_loss` with respect to the ``(n, columns)`` output."""
        regression, only_regression = self._kinds()
        if regression:  # d/dout (out - true)^2
            grad = (out - self._scaled_target(tgt)).mul_(2)
        if not only_regression:  # d/dout BCE with logits
            bce = torch.sigmoid(out).sub_(tgt)
            grad = torch.where(self._constants(out)[0], grad, bce) if regression else bce
        if weights is not None:
            grad.mul_(_broadcast_weights(weights, n, out.dtype))
        return grad.div_(out.numel())

    def postproc(self, pred):
        """Network output to predictions: sigmoid on classification, unscaling on regression."""
        n = pred.shape[0]
        out = pred.reshape(n, -1)
        flags, mean, std, _, _ = self._constants(out)
        regression, only_regression = self._kinds()
        if only_regression:
            result = torch.addcmul(mean, out, std)
        elif not regression:
            result = torch.sigmoid(out)
        else:
            result = torch.where(flags, torch.addcmul(mean, out, std), torch.sigmoid(out))
        return result.reshape(pred.shape)

    def state(self):
        """Plain data that rebuilds this criterion with :meth:`from_state`."""
        return {
            "kind": "mixed",
            "regression_flags": self.regression_flags.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    @classmethod
    def from_state(cls, state):
        return cls(None, state["regression_flags"], (state["mean"], state["std"]))


class SoftmaxCriterion:
    """Cross-entropy over K logits with one-hot (or soft) targets, for multiclass.

    Per-output weights weight each class's term; a per-sample weight the sample.
    ``postproc`` returns the softmax probabilities. Scaling does not apply.

    Parameters
    ----------
    dataset : Dataset or None
        Unused; accepted for the criterion protocol.
    """

    def __init__(self, dataset=None):
        pass

    def __call__(self, output, target, weights=None, unscaled=False):
        n = output.shape[0]
        if weights is None:  # one kernel: cross-entropy with class-probability targets
            out = output.reshape(n, -1)
            return F.cross_entropy(out, target.reshape(n, -1).to(out.dtype))
        log_p = torch.log_softmax(output.reshape(n, -1), dim=1)
        loss = -(target.reshape(n, -1).to(log_p.dtype) * log_p)
        loss = loss * _broadcast_weights(weights, n, log_p.dtype)
        return loss.sum(dim=1).mean()

    def gradient(self, output, target, weights=None):
        """The gradient of ``self(output, target, weights)`` with respect to ``output``:
        ``(softmax * sum(t w) - t w) / n`` per sample, ``w`` the weights (1 without)."""
        n, log_p, tw = self._terms(output, target, weights)
        return self._gradient(n, log_p, tw).reshape(output.shape)

    def loss_and_gradient(self, output, target, weights=None):
        """``self(output, target, weights)`` and its :meth:`gradient`, from one
        log-softmax (for hand-written backward passes, :mod:`~sktorch_auto.core.manual`)."""
        n, log_p, tw = self._terms(output, target, weights)
        loss = torch.dot(log_p.reshape(-1), tw.reshape(-1)).div_(-n)  # -sum(t w log p) / n
        return loss, self._gradient(n, log_p, tw).reshape(output.shape)

    @staticmethod
    def _terms(output, target, weights):
        """``n``, the log-softmax of the output and the weighted targets, as ``(n, k)``."""
        n = output.shape[0]
        out = output.reshape(n, -1)
        tw = target.reshape(n, -1).to(out.dtype)
        if weights is not None:
            tw = tw * _broadcast_weights(weights, n, out.dtype)
        return n, torch.log_softmax(out, dim=1), tw

    @staticmethod
    def _gradient(n, log_p, tw):
        """The gradient from :meth:`_terms` (overwrites ``log_p``)."""
        return log_p.exp_().mul_(tw.sum(dim=1, keepdim=True)).sub_(tw).div_(n)

    def postproc(self, pred):
        n = pred.shape[0]
        return torch.softmax(pred.reshape(n, -1), dim=1).reshape(pred.shape)

    def state(self):
        return {"kind": "softmax"}

    @classmethod
    def from_state(cls, state):
        return cls(None)


_KINDS = {"mixed": MixedCriterion, "softmax": SoftmaxCriterion}


def build_criterion(criterion, dataset):
    """S26: ``'auto'`` -> MixedCriterion(dataset); a class -> class(dataset); else as given."""
    if isinstance(criterion, str):
        if criterion != "auto":
            raise ValueError(f"criterion must be 'auto', a class or an object; got {criterion!r}.")
        return MixedCriterion(dataset)
    if isinstance(criterion, type):
        criterion = criterion(dataset)
    if isinstance(criterion, torch.nn.Module) and not callable(
            getattr(criterion, "postproc", None)):
        return PlainLoss(criterion)  # torch.nn.MSELoss() and the like
    if not callable(criterion) or not callable(getattr(criterion, "postproc", None)):
        raise TypeError(
            "A criterion must be callable as criterion(output, target, weights, unscaled) "
            f"and have a postproc(pred) method (or be a torch loss module); got "
            f"{criterion!r}."
        )
    return criterion


class PlainLoss:
    """A torch loss module (``torch.nn.MSELoss()``, ...) as a criterion: the same value
    for training and validation (no target scaling), predictions the network's raw
    outputs. Sample weights need a criterion of its own (S22)."""

    def __init__(self, loss):
        self.loss = loss

    def __call__(self, output, target, weights=None, unscaled=False):
        if weights is not None:
            raise ValueError(
                f"The dataset has sample weights, which a plain torch loss "
                f"({type(self.loss).__name__}) cannot take: use criterion='auto', or a "
                "criterion with a weights parameter (see MixedCriterion).")
        return self.loss(output, target)

    def postproc(self, pred):
        return pred

    def __repr__(self):
        return f"PlainLoss({self.loss!r})"


def criterion_state(criterion):
    """The criterion's plain-data state for a checkpoint, or None if it has none."""
    state = getattr(criterion, "state", None)
    if state is None:
        return None
    state = state()
    return state if isinstance(state, dict) and state.get("kind") in _KINDS else None


def criterion_from_state(state):
    """Rebuild a criterion recorded by :func:`criterion_state` (None if unknown)."""
    if not state or state.get("kind") not in _KINDS:
        return None
    return _KINDS[state["kind"]].from_state(state)
