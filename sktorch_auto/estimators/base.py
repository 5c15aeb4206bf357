"""The shared base of the scikit-learn estimators: parameters, validation, fit plumbing.

The estimators are a thin layer over the trainer core: they validate arrays, build an
in-memory dataset and a criterion, run :class:`~sktorch_auto.PytorchTrainer`, and
expose scikit-learn's API. Subclasses only say how targets are encoded and decoded.
"""

import contextlib
import copy
import inspect
import os
import re
import sys
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import _safe_indexing, assert_all_finite, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    _check_y,
    _num_features,
    _num_samples,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)
from tqdm import tqdm

from ..core.criterion import criterion_state
from ..core.data import ArrayDataset, as_tensor
from ..core.device import resolve_device
from ..core.predict import RawInputs, apply_net
from ..core.run import DivergedError
from ..core.split import train_valid_split
from ..core.trainer import PytorchTrainer
from . import nets
from .datasets import CSRDataset
from .nets import (
    ACTIVATIONS,
    CategoricalInput,
    InputScaled,
    TabularInput,
    build_categorical_mlp,
    build_mlp,
    build_periodic_mlp,
    compress_tails,
)
from .persistence import PersistenceMixin, _to_plain
from .scaling import CHUNK_ELEMENTS, input_statistics, robust_statistics
from .table import TableEncoder, UnseenGapsWarning, _plain_spec, needs_table

#: Below this many floating-point operations per training step (forward and backward
#: of the built-in MLP), a second intra-op thread costs more in synchronisation than it
#: saves: such fits run on one thread (measured in benchmarks/bench_fit.py).
SMALL_STEP_FLOPS = 2e7
#: Default ``tol``: progress must also lower the validation loss by 0.1% of the first
#: epoch's loss. On ``benchmarks/quality.py`` (two CV seeds, 18 sets) the scores stayed
#: the same (one iris sample differed) and the classification sets whose loss keeps
#: halving once every sample is right trained 5-20% fewer epochs; 3e-3 saved more time
#: but lost a little on four sets.
TOL = 1e-3


@contextlib.contextmanager
def torch_threads(n):
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != previous:
            torch.set_num_threads(previous)


#: ``batch_size='auto'``: about this many steps per epoch, with batches within
#: [``MIN_AUTO_BATCH``, ``MAX_AUTO_BATCH``].
STEPS_PER_EPOCH = 32
MIN_AUTO_BATCH = 16
MAX_AUTO_BATCH = 256


def auto_batch_size(n_samples):
    """Batch size for ``batch_size='auto'``: about ``STEPS_PER_EPOCH`` steps per epoch,
    within [``MIN_AUTO_BATCH``, ``MAX_AUTO_BATCH``]."""
    return int(min(MAX_AUTO_BATCH, max(MIN_AUTO_BATCH, n_samples // STEPS_PER_EPOCH)))


#: ``train_prop='auto'`` of :class:`TorchRegressor`: a tenth of the rows validates, but at
#: least this many rows when that stays within a fifth of them. Early stopping and the
#: choice of the versions to average on two to six rows picked noise: on eight regressions
#: of 20-80 rows (16 CV seeds) the larger validation part gained 0.02-0.09 R^2 on six,
#: within noise on two; on four classifications of 45-60 rows it lost 0.003-0.006
#: accuracy (a third of a test row), so the classifier keeps 0.9. From 100 rows on it is
#: the seed's 0.9.
MIN_VALID_ROWS = 10


def auto_train_prop(n_samples, min_valid_rows=MIN_VALID_ROWS):
    """Training share for ``train_prop='auto'``: 0.9, or ``min_valid_rows`` validation
    rows (at most a fifth) when a tenth of ``n_samples`` is fewer."""
    if 0.1 * n_samples >= min_valid_rows:
        return 0.9
    return 1.0 - min(min_valid_rows, 0.2 * n_samples) / max(n_samples, 1)


def _parameters(func):
    """``func``'s parameters by name, or None when its signature cannot be read."""
    try:
        return inspect.signature(func).parameters
    except (TypeError, ValueError):
        return None


def _accepts(func, name):
    params = _parameters(func)
    if params is None:
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _unfilled(func, kwargs):
    """Parameters of ``func`` that a call ``func(**kwargs)`` leaves without a value."""
    params = _parameters(func)
    if params is None:
        return []
    return [name for name, p in params.items()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and (p.kind is p.POSITIONAL_ONLY or name not in kwargs)]


def _as_float32(X):
    """``X`` as float32, refusing finite float64 values that float32 cannot hold."""
    if X.dtype == np.float32:
        return X
    low, high = torch.aminmax(as_tensor(X)) if X.size else (0.0, 0.0)  # no temporary copy
    if max(-float(low), float(high)) > np.finfo(np.float32).max:
        raise ValueError(f"Input X has values beyond the float32 range (+-"
                         f"{np.finfo(np.float32).max:.3g}), which the network computes in.")
    return X.astype(np.float32)


def _standardized(X, mean, scale, fences=None):
    """float32 ``(X - mean) / scale`` (tails compressed beyond ``fences`` ``(low, high)``),
    computed in float64 a chunk at a time.

    Subtracting the offset before rounding to float32 keeps the variation of columns
    whose offset dwarfs their spread (raw units), which a float32 copy of ``X`` loses.
    """
    out = np.empty(X.shape, dtype=np.float32)
    inverse = 1.0 / np.asarray(scale, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    # Small chunks: the tail compression makes a few temporaries of a chunk's size.
    rows = max(1, (CHUNK_ELEMENTS // 4) // max(1, X.shape[1]))
    limit = np.finfo(np.float32).max
    for start in range(0, X.shape[0], rows):
        block = (X[start:start + rows] - mean) * inverse
        if block.size and np.abs(block).max() > limit:
            raise ValueError(f"Input X has values beyond the float32 range (+-{limit:.3g}) "
                             "once standardised, which the network computes in.")
        out[start:start + rows] = block if fences is None else compress_tails(block, *fences)
    return out


def _sparse_columns_of_more_than_two_values(numeric, train_rows):
    """:func:`_columns_to_embed`'s rule for a sparse matrix, its implicit zeros counted,
    in time proportional to the stored entries."""
    block = sp.csc_matrix(numeric[train_rows])
    block.sum_duplicates()
    low = block.min(axis=0).toarray().ravel()
    high = block.max(axis=0).toarray().ravel()
    column = np.repeat(np.arange(block.shape[1]), np.diff(block.indptr))
    inside = (block.data != low[column]) & (block.data != high[column])
    more = np.bincount(column[inside], minlength=block.shape[1]) > 0
    # an implicit zero strictly between the lowest and the highest value is a third one
    more |= (np.diff(block.indptr) < block.shape[0]) & (low < 0) & (high > 0)
    return np.flatnonzero(more).tolist()


def _columns_to_embed(numeric, train_rows, choice="periodic"):
    """The numeric inputs with more than two values in ``train_rows``: those a periodic
    embedding can tell more about than the plain input (not 0/1 columns such as
    missing-value indicators, nor constant ones). ``choice='periodic'``: all of them
    for sparse inputs.

    ``choice='auto'``: none when there are more than
    :data:`~sktorch_auto.estimators.nets.PERIODIC_AUTO_MAX_COLUMNS` of them (each
    embedded column widens the first layer fivefold), dense or sparse alike."""
    if sp.issparse(numeric):
        if choice != "auto":
            return list(range(numeric.shape[1]))
        columns = _sparse_columns_of_more_than_two_values(numeric, train_rows)
    else:
        columns = []
        width = max(1, CHUNK_ELEMENTS // max(1, len(train_rows)))
        for start in range(0, numeric.shape[1], width):
            block = numeric[train_rows, start:start + width]
            low, high = block.min(axis=0), block.max(axis=0)
            more = ((block != low) & (block != high)).any(axis=0)
            columns += (start + np.flatnonzero(more)).tolist()
            if choice == "auto" and len(columns) > nets.PERIODIC_AUTO_MAX_COLUMNS:
                break  # declined already: no need to read the other columns
    if choice == "auto" and len(columns) > nets.PERIODIC_AUTO_MAX_COLUMNS:
        return []
    return columns


def _scaling(net):
    """``(mean, scale, fences)`` of an input-scaling network (float64 arrays; fences
    ``(low, high)`` or None), else None."""
    if not isinstance(net, InputScaled):
        return None

    def plain(t):
        return t.detach().cpu().double().numpy()

    fences = (plain(net.low), plain(net.high)) if net.fences else None
    return plain(net.mean), plain(net.scale), fences


def _check_finite(X, allow_nan=False):
    """scikit-learn's finiteness check of ``X``, with the usual first pass done by torch.

    Like scikit-learn, a finite sum proves every value finite; torch sums on all
    intra-op threads, which matters when predicting on millions of rows.
    """
    if sp.issparse(X) or not torch.isfinite(as_tensor(X).sum()):
        assert_all_finite(X.data if sp.issparse(X) else X, allow_nan=allow_nan and not
                          sp.issparse(X), input_name="X")


def _check_table_shape(estimator, X):
    """scikit-learn's messages for a table without rows or without columns."""
    n_samples, n_features = _num_samples(X), _num_features(X)
    for count, what in ((n_samples, "sample(s)"), (n_features, "feature(s)")):
        if count < 1:
            raise ValueError(f"Found array with {count} {what} (shape=({n_samples}, "
                             f"{n_features})) while a minimum of 1 is required by "
                             f"{type(estimator).__name__}.")


_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _outside_stacklevel():
    """``stacklevel`` for a ``warnings.warn`` in the caller: the first frame outside
    this package (the user's call, however many of our methods are between)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


class BaseTorchEstimator(PersistenceMixin, BaseEstimator):
    """Base of :class:`TorchRegressor` and :class:`TorchClassifier`; not for direct use."""

    _parameter_constraints: dict = {
        "net_builder": [callable, None],
        "net_builder_kwargs": [dict, None],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS) | {"auto"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "train_prop": [Interval(Real, 0, 1, closed="right"), StrOptions({"auto"})],
        "n_best_nets": [Interval(Integral, 1, None, closed="left")],
        "with_restarts": ["boolean"],
        "repeat_train": [Interval(Integral, 1, None, closed="left")],
        "criterion": [StrOptions({"auto"}), callable],
        "device": [str, torch.device, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "n_workers": [Interval(Integral, 0, None, closed="left")],
        "checkpoint": [str, os.PathLike, None],
        "amp": ["boolean"],
        "compile": ["boolean", str],
        "standardize": ["boolean", StrOptions({"robust", "standard"})],
        "categorical_features": [StrOptions({"auto"}), "array-like", None],
        "numeric_embedding": [StrOptions({"auto", "periodic"}), None],
    }

    def __init__(self, net_builder=None, net_builder_kwargs=None, *,
                 hidden_layer_sizes=(128, 128), activation="auto", dropout=0.0, weight_decay=0.0,
                 n_epochs=100, tol=TOL, batch_size="auto", learning_rate="auto", train_prop="auto",
                 n_best_nets=10, with_restarts=True, repeat_train=1, criterion="auto",
                 device="auto", verbose=False, random_state=None, warm_start=False, n_workers=0,
                 checkpoint=None, amp=False, compile=False, standardize="robust",
                 categorical_features="auto", numeric_embedding="auto"):
        self.net_builder = net_builder
        self.net_builder_kwargs = net_builder_kwargs
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.tol = tol
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.train_prop = train_prop
        self.n_best_nets = n_best_nets
        self.with_restarts = with_restarts
        self.repeat_train = repeat_train
        self.criterion = criterion
        self.device = device
        self.verbose = verbose
        self.random_state = random_state
        self.warm_start = warm_start
        self.n_workers = n_workers
        self.checkpoint = checkpoint
        self.amp = amp
        self.compile = compile
        self.standardize = standardize
        self.categorical_features = categorical_features
        self.numeric_embedding = numeric_embedding

    # ------------------------------------------------------------------ params
    def set_params(self, **params):
        """Set parameters; ``net_builder_kwargs__NAME`` sets one argument of the builder.

        That form lets ``GridSearchCV`` search a builder's own arguments, e.g.
        ``{"net_builder_kwargs__width": [32, 64]}``.
        """
        prefix = "net_builder_kwargs__"
        nested = {k[len(prefix):]: params.pop(k) for k in list(params) if k.startswith(prefix)}
        if nested:
            kwargs = dict(params.get("net_builder_kwargs", self.net_builder_kwargs) or {})
            kwargs.update(nested)
            params["net_builder_kwargs"] = kwargs
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # -------------------------------------------------------------- subclass API
    def _encode_targets(self, y, sample_weight):
        """Return ``(Y, weight, criterion, stratify, fitted)`` for the training dataset.

        ``fitted`` holds the target-related fitted attributes, set once training succeeded.
        """
        raise NotImplementedError

    #: ``_check_y``'s requirements on ``y`` (set by each estimator).
    _y_checks: dict = {}

    def _validate_targets(self, X, y, reset):
        """``validate_data`` for fit: tables keep their columns (checked by name and
        number only), numeric arrays become float arrays; ``y`` as the estimator needs.
        A warm start goes the way of the encoding it continues."""
        encoder = None if reset else getattr(self, "encoder_", None)
        if (encoder.table_ if encoder is not None else needs_table(X, self.categorical_features)):
            validate_data(self, X, reset=reset, skip_check_array=True)
            _check_table_shape(self, X)
            y = _check_y(y, estimator=self, **self._y_checks)
            check_consistent_length(X, y)
            return X, y
        return validate_data(self, X, y, reset=reset, accept_sparse=["csr", "csc"],
                             dtype=(np.float64, np.float32), ensure_all_finite="allow-nan",
                             **self._y_checks)

    # --------------------------------------------------------------------- fit
    def _check_hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(sizes)
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be a positive integer or a sequence of them; got "
                f"{self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    #: The activation ``activation='auto'`` stands for (set by each estimator).
    _auto_activation = "relu"
    #: Validation rows that ``train_prop='auto'`` keeps on small data (0: always 0.9).
    _min_valid_rows = 0

    #: Models pickled before ``numeric_embedding`` existed had none.
    numeric_embedding = None

    #: The one-hot limit (``nets.ONE_HOT_MAX``) a fitted model was built with; models
    #: fitted before it was recorded used 10. A fit records the limit of its time, so
    #: that ``load`` and ``warm_start`` rebuild the network it trained.
    _one_hot_max = 10
    #: The numeric inputs that ``numeric_embedding`` embeds (those with more than two
    #: values in the training part; [] where 'auto' declined); None: all of them, as in
    #: models fitted before the choice was recorded (or none with
    #: ``numeric_embedding=None``).
    _periodic_columns = None

    #: The parameters the fitted network was built with (:meth:`_architecture_of`),
    #: kept so that ``save``/``load`` and ``warm_start`` rebuild it whatever
    #: ``set_params`` changed since; None in models fitted before it was recorded.
    _architecture = None

    def _architecture_of(self):
        """The parameters that shape the network: those of the built-in MLP
        (``activation`` resolved) or the builder's arguments, and the input scaling."""
        if self.net_builder is None:
            shape = {"hidden_layer_sizes": list(self._check_hidden_layer_sizes()),
                     "activation": self._activation(), "dropout": float(self.dropout),
                     "numeric_embedding": self.numeric_embedding}
        else:
            shape = {"net_builder_kwargs": dict(self.net_builder_kwargs or {})}
        return {**shape, "standardize": self.standardize}

    def _as_fitted(self):
        """This estimator, or a shallow copy with the parameters its network was built
        with (where ``set_params`` changed them since fit): what rebuilds that network."""
        if not self._architecture:
            return self
        built = copy.copy(self)
        for key, value in self._architecture.items():
            setattr(built, key, tuple(value) if key == "hidden_layer_sizes"
                    and isinstance(value, list) else value)
        return built

    def _activation(self):
        return self._auto_activation if self.activation == "auto" else self.activation

    def _build_net(self, n_features, n_outputs, cardinalities=None, one_hot_max=None,
                   periodic_columns=None):
        """The network for ``n_features`` numeric inputs and categorical columns of these
        ``cardinalities`` (None: no codes input), behind the input scaling; columns of at
        most ``one_hot_max`` codes one-hot encoded, and with periodic embeddings of the
        ``periodic_columns`` (defaults: the fitted model's)."""
        net = self._build_inner_net(
            n_features, n_outputs, cardinalities,
            self._one_hot_max if one_hot_max is None else one_hot_max,
            self._periodic_columns if periodic_columns is None else periodic_columns)
        if not self.standardize:
            return net
        return InputScaled(n_features, net, fences=self.standardize == "robust")

    def _takes_codes(self):
        """Whether the user's builder has a ``cardinalities`` parameter (its network then
        always receives ``(x, codes)``; ``**kwargs`` alone does not count)."""
        if self.net_builder is None:
            return False
        return "cardinalities" in (_parameters(self.net_builder) or {})

    def _embeds_periodic(self, n_features, periodic_columns):
        """Whether the built-in network gets periodic embeddings: asked for ('auto' or
        'periodic'), and some numeric input to embed (``periodic_columns`` None: all of
        them)."""
        return (self.net_builder is None and self.numeric_embedding is not None
                and n_features > 0 and (periodic_columns is None or len(periodic_columns) > 0))

    def _choose_periodic_columns(self, numeric, train_rows, encoder):
        """The numeric inputs the built-in network will embed, or None when it is not
        asked to (or a user's builder makes the network: no pass over the data then).

        The trend of a date column (its 'time' part) is never embedded: a periodic
        embedding can only interpolate, and dates to come are where a trend is asked
        for (on a synthetic forecast, embedded: R^2 0.845, plain: 0.863).
        """
        if self.numeric_embedding is None or self.net_builder is not None:
            return None
        columns = _columns_to_embed(numeric, train_rows, self.numeric_embedding)
        trend = set(encoder.trend_columns) if encoder.table_ else set()
        return [c for c in columns if c not in trend] if trend else columns

    def _too_wide_to_embed(self, encoder):
        """Whether ``numeric_embedding='auto'`` declines the periodic embeddings for the
        width of the table (counted as its numeric inputs other than indicators)."""
        return self.numeric_embedding == "auto" and (
            encoder.n_numeric - len(encoder.indicator_columns_)
            > nets.PERIODIC_AUTO_MAX_COLUMNS)

    def _inputs_in_words(self, encoder, periodic):
        """What ``verbose`` says of the inputs before training: the columns by kind and
        the numeric inputs given periodic embeddings."""
        words = f"inputs: {encoder.describe()}" if encoder.table_ else (
            f"inputs: {encoder.n_numeric} numeric")
        if periodic is not None:
            words += (f"; periodic embeddings on {len(periodic)} of {encoder.n_numeric} "
                      "numeric inputs")
            if not periodic and self._too_wide_to_embed(encoder):
                words += (f" (numeric_embedding='auto' embeds at most "
                          f"{nets.PERIODIC_AUTO_MAX_COLUMNS}; 'periodic' embeds them all)")
        return words

    def _builder_width(self, n_features, cards):
        """Float inputs per row of a user's network: the numeric ones, and the categories
        one-hot encoded unless it takes the codes itself."""
        return n_features + (0 if self._takes_codes() else sum(cards))

    def _build_inner_net(self, n_features, n_outputs, cardinalities, one_hot_max,
                         periodic_columns=None):
        cards = list(cardinalities or [])
        if self.net_builder is None:
            shape = (self._check_hidden_layer_sizes(), self._activation(), self.dropout)
            if self._embeds_periodic(n_features, periodic_columns):
                return build_periodic_mlp(n_features, n_outputs, cards, *shape,
                                          one_hot_max=one_hot_max,
                                          periodic_columns=periodic_columns)
            if cards:
                return build_categorical_mlp(n_features, n_outputs, cards, *shape,
                                             one_hot_max=one_hot_max)
            return build_mlp(n_features, n_outputs, *shape)
        kwargs = dict(self.net_builder_kwargs or {})
        takes_codes = self._takes_codes()
        # A builder that does not take cardinalities gets one matrix: the numeric
        # inputs followed by the categories one-hot encoded.
        width = self._builder_width(n_features, cards)
        sizes = (("n_features_in", width), ("n_outputs", n_outputs))
        for name, value in sizes + ((("cardinalities", cards),) if takes_codes else ()):
            if _accepts(self.net_builder, name):
                kwargs.setdefault(name, value)
        unfilled = _unfilled(self.net_builder, kwargs)
        if unfilled:  # before the call: a clearer message than Python's own TypeError
            raise TypeError(
                f"net_builder is called by keyword, with n_features_in={width} and "
                f"n_outputs={n_outputs} (when it takes parameters of these names), "
                "cardinalities (when it takes it) and net_builder_kwargs; it has no value "
                f"for {', '.join(map(repr, unfilled))}. Name its size parameters "
                "n_features_in and n_outputs, or give the others in net_builder_kwargs.")
        net = self.net_builder(**kwargs)
        if not isinstance(net, torch.nn.Module):
            raise TypeError(
                f"net_builder must return a torch.nn.Module; it returned {type(net).__name__}."
            )
        if cards and not takes_codes:
            net = CategoricalInput(net, cards, one_hot_max=float("inf"))
        return net

    @staticmethod
    def _dataset(X, Y=None, weight=None, scaling=None, codes=None):
        """In-memory dataset of float32 rows (and int64 category codes, a second input);
        sparse X is densified a batch at a time.

        ``scaling`` ``(mean, scale, fences)`` scales the rows (dense ones in float64 first).
        """
        if Y is not None:
            Y = as_tensor(np.asarray(Y, dtype=np.float32))
        if weight is not None:
            weight = as_tensor(np.asarray(weight, dtype=np.float32))
        if sp.issparse(X):
            return CSRDataset(X, Y, weight, scaling)
        X = as_tensor(_as_float32(X) if scaling is None else _standardized(X, *scaling))
        inputs = [X] if codes is None else [X, as_tensor(codes)]
        if Y is None:
            return RawInputs(*inputs)
        return ArrayDataset(inputs if codes is not None else X, Y, weight)

    def _check_sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        if not np.all(np.isfinite(sample_weight)):
            raise ValueError("sample_weight contains NaN or infinity.")
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight sums to zero: at least one sample must count.")
        return sample_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network on ``X`` and ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Weight of each sample in the loss.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        # validate_data sets these before the data is known to be usable: a fit that
        # fails puts them back, so that nothing is left half-fitted.
        kept = {k: v for k, v in vars(self).items() if k in _INPUT_ATTRIBUTES}
        try:
            return self._fit(X, y, sample_weight)
        except Exception:
            for key in _INPUT_ATTRIBUTES:
                vars(self).pop(key, None)
            vars(self).update(kept)
            raise

    def _fit(self, X, y, sample_weight):
        warm = self.warm_start and hasattr(self, "net_")
        if warm:
            self._check_warm_architecture()
        architecture = self._architecture_of()
        X, y = self._validate_targets(X, y, reset=not warm)
        sample_weight = self._check_sample_weight(sample_weight, X)
        Y, weight, criterion, stratify, fitted = self._encode_targets(y, sample_weight)
        if warm:
            self._check_warm_start(fitted, criterion)
            criterion = self.criterion_  # keep the scale the network was trained with
        if self.criterion != "auto":
            criterion = self.criterion
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        cuda = [device.index or 0] if device.type == "cuda" else []
        n_samples = _num_samples(X)
        batch_size = auto_batch_size(n_samples) if self.batch_size == "auto" else self.batch_size
        train_prop = (auto_train_prop(n_samples, self._min_valid_rows)
                      if self.train_prop == "auto" else self.train_prop)
        # The rows the trainer will train on: the input encoding and scaling learn from
        # them only (the same seeded split as the trainer's).
        train_rows, valid_rows = train_valid_split(n_samples, train_prop, True, seed=seed,
                                                   stratify=stratify)
        encoder = self.encoder_ if warm else TableEncoder(self.categorical_features).fit(
            X, train_rows, sample_weight)
        numeric, codes = self._encode(encoder, X)
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            one_hot_max = self._one_hot_max if warm else nets.ONE_HOT_MAX
            periodic = self._periodic_columns if warm else self._choose_periodic_columns(
                numeric, train_rows, encoder)
            net = self.net_ if warm else self._build_net(
                encoder.n_numeric, Y.shape[1], None if codes is None else encoder.cardinalities,
                one_hot_max, periodic)
            if isinstance(net, InputScaled) and not warm:
                self._set_input_scale(net, numeric, sample_weight, train_rows, encoder)
            if self.verbose:
                tqdm.write(self._inputs_in_words(encoder, periodic))
            # The network proper trains on rows scaled once, up front: no scaling
            # kernels per step, and float64 arithmetic for the offsets.
            scaling = _scaling(net)
            inner = net.net if scaling is not None else net
            dataset = self._dataset(numeric, Y, weight, scaling, codes)
            del numeric  # the scaled float32 copy is what training needs
            trainer = PytorchTrainer(lambda: inner, [], device)
            with torch_threads(self._fit_threads(inner, min(batch_size, n_samples), device)), \
                    self._explain_shape_errors(encoder, codes), self._explain_divergence(net):
                trainer.train(dataset, **self._train_args(batch_size, criterion, train_prop),
                              split_seed=seed, stratify=stratify)
        for key, value in fitted.items():  # only now: a failed fit changes nothing
            setattr(self, key, value)
        self.encoder_ = encoder
        self._one_hot_max = one_hot_max
        self._periodic_columns = periodic
        if not warm:
            self._architecture = architecture
        self._set_fitted(trainer, device, net)
        valid = trainer.valid_indices
        with warnings.catch_warnings():  # e.g. R^2 of a single validation sample
            warnings.simplefilter("ignore")
            self.validation_score_ = float(self.score(_safe_indexing(X, valid), y[valid]))
        return self

    @contextlib.contextmanager
    def _explain_shape_errors(self, encoder, codes):
        """A user's network that cannot take the encoded rows: say what it receives."""
        try:
            yield
        except RuntimeError as exc:
            text = str(exc)
            cards = [] if codes is None else list(encoder.cardinalities)
            width = self._builder_width(encoder.n_numeric, cards)
            # torch: "mat1 and mat2 shapes cannot be multiplied (16x7 and 3x1)"; only a
            # product of the inputs themselves (7 columns) is about their width: a
            # mismatch deeper in the network is the network's own.
            shapes = re.search(r"shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x\d+\)",
                               text)
            if self.net_builder is None or shapes is None or int(shapes[2]) != width:
                raise
            if self._takes_codes():
                receives = (f"forward(x, codes) with {encoder.n_numeric} float inputs per "
                            f"row and {len(cards)} code column{'' if len(cards) == 1 else 's'}")
            else:
                receives = (f"{width} float inputs per row "
                            f"({encoder.n_numeric} numeric, missing-value indicators "
                            f"included, and {sum(cards)} one-hot inputs of {len(cards)} "
                            f"categorical column{'' if len(cards) == 1 else 's'})")
            raise ValueError(
                f"The network of net_builder could not take its inputs ({text}). It "
                f"receives {receives}; build it with the n_features_in it is passed "
                "(by keyword, when net_builder takes a parameter of that name).") from exc

    @contextlib.contextmanager
    def _explain_divergence(self, net):
        """Training that diverged on data known to be finite: say what to change."""
        try:
            yield
        except DivergedError as exc:
            raw = not isinstance(net, InputScaled)
            advice = ("standardize='robust' (the default) scales the inputs; or lower "
                      "learning_rate" if raw else "set a lower learning_rate (e.g. 1e-4)")
            raise DivergedError(
                "Training diverged: the loss was not finite from the first epoch, though "
                "the inputs and targets are finite (checked), so most likely the first "
                f"steps were too large: {advice}."
                + (" With standardize=False the inputs enter in their own units: large "
                   "inputs make large gradients, and RAdam's first steps are as large "
                   "as the gradients." if raw else "")) from exc

    def _encode(self, encoder, X, unseen_gaps=None):
        """``(numeric, codes)`` network inputs of ``X``; codes None without categorical
        columns (unless the user's network takes codes). ``unseen_gaps``: see
        :meth:`TableEncoder.transform`."""
        numeric, codes = encoder.transform(X, unseen_gaps)
        if numeric is not X or sp.issparse(X):  # a dense X itself was checked already
            _check_finite(numeric)
        if codes is None and self._takes_codes():
            codes = np.zeros((numeric.shape[0], 0), dtype=np.int64)
        elif codes is not None and not codes.shape[1] and not self._takes_codes():
            codes = None
        return numeric, codes

    @property
    def categories_(self):
        """The kept categories of each categorical column (codes 2 on; see
        :mod:`~sktorch_auto.estimators.table`)."""
        check_is_fitted(self)
        return [list(c) for c in self.encoder_.categories_]

    @property
    def is_categorical_(self):
        """Per input column: whether it was treated as categorical."""
        check_is_fitted(self)
        return np.asarray(self.encoder_.is_categorical_, dtype=bool)

    @property
    def periodic_columns_(self):
        """Positions, among the numeric inputs (the columns of ``encoder_``'s numeric
        matrix), of those given periodic embeddings: a list, empty when none was, None
        without embeddings (``numeric_embedding=None`` or a user's ``net_builder``)."""
        check_is_fitted(self)
        return None if self._periodic_columns is None else list(self._periodic_columns)

    def _set_input_scale(self, net, X, sample_weight, train_rows, encoder):
        """Scale the inputs with statistics of the rows the trainer will train on;
        missing-indicator inputs stay as they are (0/1)."""
        if net.fences:
            mean, scale, low, high = robust_statistics(X, train_rows, sample_weight)
        else:
            mean, scale = input_statistics(X, train_rows, sample_weight)
        indicators = slice(encoder.n_numeric - len(encoder.indicator_columns_), None)
        mean[indicators], scale[indicators] = 0.0, 1.0
        net.mean.copy_(torch.as_tensor(mean, dtype=net.mean.dtype))
        net.scale.copy_(torch.as_tensor(scale, dtype=net.scale.dtype))
        if net.fences:  # in standardised units
            low, high = (low - mean) / scale, (high - mean) / scale
            low[indicators], high[indicators] = -np.inf, np.inf
            net.low.copy_(torch.as_tensor(low))
            net.high.copy_(torch.as_tensor(high))

    def _train_args(self, batch_size, criterion, train_prop):
        """The trainer core's arguments from the estimator's parameters."""
        return dict(
            name=None if self.checkpoint is None else os.fspath(self.checkpoint),
            batch_size=batch_size, criterion=criterion, n_epochs=self.n_epochs,
            train_prop=train_prop, learning_rate=self.learning_rate,
            n_workers=self.n_workers, verbose=bool(self.verbose),
            repeat_train=self.repeat_train, n_best_nets=self.n_best_nets,
            with_restarts=self.with_restarts, amp=self.amp, compile=self.compile,
            weight_decay=float(self.weight_decay), tol=float(self.tol),
        )

    def _fit_threads(self, net, batch_size, device):
        """Intra-op threads for fit: at most torch's current number (which follows the
        limits joblib and threadpoolctl set), one for the built-in MLP's small steps."""
        threads = torch.get_num_threads()
        if self.net_builder is None and device.type == "cpu":
            n_params = sum(p.numel() for p in net.parameters())
            if 6 * batch_size * n_params < SMALL_STEP_FLOPS:
                threads = 1
        return threads

    def _check_warm_architecture(self):
        """Refuse a warm start whose network parameters changed since it was built (the
        fitted network would silently stay as it is)."""
        if not self._architecture:
            return
        now, then = _to_plain(self._architecture_of()), _to_plain(self._architecture)
        if set(now) != set(then):  # the built-in network and a builder's swapped places
            raise ValueError("warm_start continues with the fitted network, and net_builder "
                             "changed since: fit with warm_start=False to apply it.")
        changed = sorted(k for k, v in then.items()
                         if k not in ("standardize", "numeric_embedding") and now[k] != v)
        if changed:
            raise ValueError(
                "warm_start continues with the fitted network, built with "
                + ", ".join(f"{k}={self._architecture[k]!r}" for k in changed)
                + "; these parameters changed since: fit with warm_start=False to apply "
                "them.")

    def _check_warm_start(self, fitted, criterion):
        """Refuse a warm start on targets of another shape or type than the fitted ones."""
        if fitted["n_outputs_"] != self.n_outputs_:
            raise ValueError(f"warm_start: the network has {self.n_outputs_} outputs but y "
                             f"now needs {fitted['n_outputs_']}.")
        old, new = criterion_state(self.criterion_) or {}, criterion_state(criterion) or {}
        if (old.get("kind"), old.get("regression_flags")) != (
                new.get("kind"), new.get("regression_flags")):
            raise ValueError("warm_start: the targets changed type since the last fit "
                             "(regression/binary columns, multiclass or multilabel); "
                             "fit with warm_start=False.")
        # The encoding and the scaling are kept from the first fit: refuse to ignore a
        # change of the parameters that chose them.
        net = self.net_
        scaling = (False if not isinstance(net, InputScaled)
                   else "robust" if net.fences else "standard")
        asked = "standard" if self.standardize is True else self.standardize
        encoded = self.encoder_.state()["categorical_features"]
        if scaling != asked or encoded != _plain_spec(self.categorical_features):
            raise ValueError(
                "warm_start continues with the fitted encoding and scaling "
                f"(categorical_features={encoded!r}, standardize={scaling!r}); these "
                "parameters changed since: fit with warm_start=False to apply them.")
        inner = net.net if isinstance(net, InputScaled) else net
        # 'auto' continues with what it chose; None and 'periodic' must match the network.
        if (self.net_builder is None and self.numeric_embedding != "auto"
                and isinstance(inner, TabularInput) != self._embeds_periodic(
                    self.encoder_.n_numeric, self._periodic_columns)):
            raise ValueError(
                "warm_start continues with the fitted network, built with"
                f"{'' if isinstance(inner, TabularInput) else 'out'} periodic embeddings; "
                f"numeric_embedding={self.numeric_embedding!r} asks otherwise: fit with "
                "warm_start=False to apply it.")

    def _set_fitted(self, trainer, device, net):
        if isinstance(net, InputScaled):
            net.net = trainer.net
            trainer.net = net.to(device)
        self.net_ = trainer.net
        self.criterion_ = trainer.criterion
        self.device_ = device
        self.history_ = [dict(entry) for entry in trainer.history]
        self.n_iter_ = len(trainer.history)
        self.best_epoch_ = trainer.best_epoch
        self.best_loss_ = trainer.best_loss
        self.averaged_epochs_ = list(trainer.averaged_epochs)
        self.stop_reason_ = trainer.stop_reason
        self.learning_rate_ = trainer.learning_rate

    # ------------------------------------------------------------------ predict
    def _warn_unseen_gaps(self, unseen_gaps, n_rows):
        """Warn of gaps in columns that had none in the training part (a median took
        their place, with no missing-value indicator the network learned from)."""
        names = getattr(self, "feature_names_in_", None)
        listed = ", ".join(
            f"{names[j] if names is not None else 'x' + str(j)} ({n} of {n_rows} rows)"
            for j, n in sorted(unseen_gaps.items()))
        warnings.warn(UnseenGapsWarning(
            "X has missing values in column(s) that had none in the rows the network "
            f"was trained on: {listed}. "
            "They got the training median, and the network never learned what a gap "
            "means there, so predictions for those rows may be poor; fill them, or fit "
            "anew (not warm-started) on data with gaps in those columns.", unseen_gaps,
            n_rows), stacklevel=_outside_stacklevel())

    def _forward(self, X):
        """Post-processed network outputs for ``X``, shape (n_samples, n_outputs)."""
        check_is_fitted(self)
        encoder = getattr(self, "encoder_", None)
        if encoder is not None and encoder.table_:
            validate_data(self, X, reset=False, skip_check_array=True)
            _check_table_shape(self, X)
        else:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32), ensure_all_finite=False)
            # Gaps are imputed, unless the model predates imputation.
            _check_finite(X, allow_nan=encoder is not None and encoder.medians_ is not None)
        if encoder is not None:
            unseen_gaps = {}
            X, codes = self._encode(encoder, X, unseen_gaps)
            if unseen_gaps:
                self._warn_unseen_gaps(unseen_gaps, X.shape[0])
        else:
            codes = None
        net = self.net_
        if isinstance(net, InputScaled) and not sp.issparse(X) and X.dtype == np.float64:
            # Scaled in float64 like the training rows (float32 inputs go through the
            # network's own float32 scaling, folded into its first layer).
            dataset, net = self._dataset(X, scaling=_scaling(net), codes=codes), net.net
        elif sp.issparse(X):
            dataset = self._dataset(X, np.zeros((X.shape[0], 0)))
        else:
            dataset = self._dataset(X, codes=codes)
        out = apply_net(net, self.criterion_, dataset, device=self.device_, finite=False)
        return out.reshape(X.shape[0], -1)
