"""Saving, loading and pickling the estimators.

``save``/``load`` write the safe format: weights and plain data only, atomically, with a
checksum, loaded with ``torch.load(weights_only=True)``. Pickling (joblib, pickle) keeps
the network on the CPU so that an estimator fitted on a GPU unpickles anywhere; like any
pickle it runs code when loaded.
"""

import copy
import os
import pickle

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..core.checkpoint import (
    builder_record,
    is_plain,
    load_checkpoint,
    resolve_builder,
    save_checkpoint,
)
from ..core.criterion import criterion_from_state, criterion_state
from ..core.device import resolve_device

try:  # joblib >= 1.6 depends on cloudpickle; older versions vendor it
    import cloudpickle
except ImportError:  # pragma: no cover
    from joblib.externals import cloudpickle

#: Parameters kept out of saved files (the builder is recorded separately).
_NOT_SAVED = ("net_builder", "criterion")


def _to_plain(value):
    """numpy scalars and arrays, paths and devices as plain Python data, for saved files."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, dict):
        return {_to_plain(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):  # torch's safe loader keeps tuples: they come back as such
        return tuple(_to_plain(v) for v in value)
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    return value


class _PickledByValue:
    """A network builder that plain pickle cannot store (a lambda, a local function),
    carried as cloudpickle bytes so that joblib.dump, multiprocessing and dask all work."""

    def __init__(self, builder):
        try:
            self.payload = cloudpickle.dumps(builder)
        except Exception as exc:  # noqa: BLE001 - any failure: the builder cannot travel
            raise pickle.PicklingError(
                f"The network builder {builder!r} cannot be pickled ({exc}). Define it as "
                "a function at module level (not a lambda, a local function or a closure "
                "over unpicklable objects) so that the estimator can be saved and sent to "
                "parallel workers."
            ) from exc

    def load(self):
        return cloudpickle.loads(self.payload)


def load_estimator(path, device=None, *, net_builder=None, trust_builder=False):
    """Load a file written by ``save``, as a TorchRegressor or TorchClassifier.

    Parameters are those of :meth:`PersistenceMixin.load`.
    """
    from . import TorchClassifier, TorchRegressor

    classes = {cls.__name__: cls for cls in (TorchRegressor, TorchClassifier)}
    kind = load_checkpoint(path).get("estimator")
    if kind not in classes:
        raise ValueError(f"{os.fspath(path)!r} does not hold an sktorch_auto estimator.")
    return classes[kind].load(path, device, net_builder=net_builder,
                              trust_builder=trust_builder)


def load_metadata(path):
    """The ``metadata`` dict that was passed to ``save`` (empty if none)."""
    return dict(load_checkpoint(path).get("metadata") or {})


class PersistenceMixin:
    """``save``/``load`` in the safe format, and pickling that works across devices."""

    def __getstate__(self):
        state = self.__dict__.copy()
        builder = state.get("net_builder")
        if builder is not None:
            try:
                pickle.dumps(builder)
            except Exception:  # noqa: BLE001 - plain pickle cannot store it: by value
                state["net_builder"] = _PickledByValue(builder)
        if "net_" in state:  # pickle on the CPU, so that a CUDA fit unpickles anywhere
            state["net_"] = copy.deepcopy(self.net_).cpu()
            state["device_"] = str(self.device_)
        return state

    def __setstate__(self, state):
        from .table import TableEncoder

        # Pickles from before tables were supported: their defaults and encoding.
        state.setdefault("categorical_features", "auto")
        if "net_" in state and "encoder_" not in state:
            state["encoder_"] = TableEncoder.identity(state["n_features_in_"])
        if isinstance(state.get("net_builder"), _PickledByValue):
            state["net_builder"] = state["net_builder"].load()
        self.__dict__.update(state)
        if "net_" in state:
            device = torch.device(state["device_"])
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
            self.device_ = device
            self.net_ = self.net_.to(device)

    def _fitted_state(self):
        """The fitted attributes other than the network, as plain data."""
        return {
            "n_features_in_": self.n_features_in_,
            "feature_names_in_": getattr(self, "feature_names_in_", None),
            "history_": self.history_, "n_iter_": self.n_iter_,
            "best_epoch_": self.best_epoch_, "best_loss_": self.best_loss_,
            "averaged_epochs_": self.averaged_epochs_, "stop_reason_": self.stop_reason_,
            "n_outputs_": self.n_outputs_, "validation_score_": self.validation_score_,
            "learning_rate_": self.learning_rate_,
            "encoder_": None if getattr(self, "encoder_", None) is None
            else self.encoder_.state(),
            "one_hot_max": _to_plain(self._one_hot_max),
            "periodic_columns": self._periodic_columns,
            "architecture": self._architecture,
        }

    def _restore_fitted(self, fitted):
        from .table import TableEncoder

        if "encoder_" not in fitted:  # files from before tables were supported
            fitted = {**fitted, "encoder_": TableEncoder.identity(
                fitted["n_features_in_"]).state()}
        for key, value in fitted.items():
            if key == "one_hot_max":  # absent from older files: their limit, 10
                self._one_hot_max = value
            elif key == "periodic_columns":  # absent from older files: all columns
                self._periodic_columns = None if value is None else [int(j) for j in value]
            elif key == "architecture":  # absent from older files: the saved params
                self._architecture = value
            elif key == "encoder_":  # absent from files written before it existed
                self.encoder_ = None if value is None else TableEncoder.from_state(value)
            elif key == "feature_names_in_":
                if value is not None:
                    self.feature_names_in_ = np.asarray(value, dtype=object)
            else:
                setattr(self, key, value)

    def _saved_params(self):
        params = {k: _to_plain(v) for k, v in self.get_params(deep=False).items()
                  if k not in _NOT_SAVED}
        if isinstance(self.random_state, np.random.RandomState):
            params["random_state"] = None  # a generator's state only mattered for fit
        if self.criterion != "auto":
            raise ValueError("save() supports criterion='auto' only; pickle the estimator "
                             "(joblib.dump) to keep a custom criterion.")
        unsaved = [k for k, v in params.items() if not is_plain(v)]
        if unsaved:
            raise ValueError(f"save() stores parameters as plain data, and {unsaved} are not "
                             "(numbers, strings, lists and dicts of them); pickle the "
                             "estimator (joblib.dump) instead.")
        return params

    def save(self, path, metadata=None):
        """Save the fitted estimator to ``path`` in the safe format.

        The file holds the weights and plain data only (no pickle), written atomically
        (a failure leaves a previous file intact) with a checksum. Load it with the
        class's :meth:`load` or :func:`~sktorch_auto.load_estimator`.

        Parameters
        ----------
        path : str or path-like
        metadata : dict, optional
            Plain data stored alongside (read it back with
            :func:`~sktorch_auto.load_metadata`).
        """
        check_is_fitted(self)
        metadata = _to_plain(dict(metadata or {}))
        if not is_plain(metadata):
            raise ValueError("metadata must hold plain data (numbers, strings, lists, dicts).")
        builder = None
        if self.net_builder is not None:  # an unnamed builder must be passed to load()
            builder = builder_record(self.net_builder, []) or {"unnamed": True}
        params, fitted = self._saved_params(), _to_plain(self._fitted_state())
        if not is_plain(fitted.get("architecture")):
            raise ValueError("save() stores the network's parameters as plain data, and "
                             "the net_builder_kwargs it was fitted with are not; pickle "
                             "the estimator (joblib.dump) instead.")
        save_checkpoint(path, {
            "estimator": type(self).__name__,
            "params": params,
            "builder": builder,
            "fitted": fitted,
            "criterion": criterion_state(self.criterion_),
            "metadata": metadata,
            "state_dict": {k: v.detach().cpu() for k, v in self.net_.state_dict().items()},
        })

    @classmethod
    def load(cls, path, device=None, *, net_builder=None, trust_builder=False):
        """Load an estimator written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
        device : str, optional
            Where to put the network; by default the estimator's ``device`` parameter.
        net_builder : callable, optional
            The network builder, when the estimator was fitted with one of your own.
        trust_builder : bool, default=False
            Import and call the builder the file names (only for files you trust: a
            checksum detects accidents, not a crafted file).

        Returns
        -------
        estimator : fitted instance of this class
        """
        content = load_checkpoint(path)
        if content.get("estimator") != cls.__name__:
            raise ValueError(f"{os.fspath(path)!r} holds a {content.get('estimator')}, "
                             f"not a {cls.__name__}.")
        params = dict(content["params"])
        # Files from before numeric_embedding existed: fitted without embeddings.
        params.setdefault("numeric_embedding", None)
        record = content.get("builder")
        if record is not None or net_builder is not None:
            params["net_builder"] = resolve_builder(
                record if record and "module" in record else None, net_builder,
                trust_builder, source=os.fspath(path))
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        estimator = cls(**params)
        estimator._restore_fitted(content["fitted"])
        encoder = getattr(estimator, "encoder_", None)
        built = estimator._as_fitted()  # the network as fitted, whatever set_params did
        if encoder is None:
            net = built._build_net(estimator.n_features_in_, estimator.n_outputs_)
        else:
            codes = encoder.categories_ or estimator._takes_codes()
            net = built._build_net(encoder.n_numeric, estimator.n_outputs_,
                                   encoder.cardinalities if codes else None)
        net.load_state_dict(content["state_dict"])
        estimator.device_ = resolve_device(params.get("device") if device is None else device)
        estimator.net_ = net.to(estimator.device_)
        estimator.criterion_ = criterion_from_state(content.get("criterion"))
        return estimator
