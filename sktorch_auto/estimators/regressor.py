"""``TorchRegressor``: regression, multi-output, and mixed regression/binary targets."""

import numpy as np
from sklearn.base import RegressorMixin

from ..core.criterion import MixedCriterion, infer_regression_flags, infer_scale
from .base import MIN_VALID_ROWS, BaseTorchEstimator


class TorchRegressor(RegressorMixin, BaseTorchEstimator):
    """A PyTorch network as a scikit-learn regressor, trained with all the automation.

    Fitting splits off a validation part, stops early, restarts the optimizer when
    training stalls, keeps (and optionally averages) the best versions, and scales the
    targets automatically. Columns of ``y`` that hold only 0 and 1 are binary targets
    (binary cross-entropy; their predictions are probabilities), the others are
    regression targets (mean squared error, predicted in original units).

    Parameters
    ----------
    net_builder : callable, default=None
        Returns a fresh ``torch.nn.Module``; called with the keyword arguments
        ``n_features_in`` and ``n_outputs`` when it accepts them, plus
        ``net_builder_kwargs``. None uses the built-in MLP. With categorical columns, a
        builder with a ``cardinalities`` parameter also gets the number of codes of
        each one, and its network's ``forward(x, codes)`` the numeric inputs and an
        int64 code matrix; any other builder gets one matrix with the categories
        one-hot encoded after the numeric inputs (``n_features_in`` counts them).
    net_builder_kwargs : dict, default=None
        The builder's own arguments (searchable as ``net_builder_kwargs__NAME``).
    hidden_layer_sizes : int or sequence of int, default=(128, 128)
        Hidden layers of the built-in MLP (chosen on ``benchmarks/quality.py``); an int
        is one hidden layer of that width, as in scikit-learn's MLP.
    activation : {'auto', 'relu', 'tanh', 'gelu', 'silu', 'logistic', 'identity'}, \
default='auto'
        Activation of the built-in MLP. 'auto' is 'gelu' for :class:`TorchRegressor`
        (on the quality benchmark it beat ReLU by 0.02-0.03 R^2 on smooth targets and
        was better or within 0.005 on the other regression sets)
        and 'relu' for :class:`TorchClassifier` (where GELU did not win overall).
    dropout : float in [0, 1), default=0.0
        Dropout of the built-in MLP.
    weight_decay : float, default=0.0
        Decoupled weight decay of the optimizer (as in AdamW): each step shrinks the
        weights by ``learning_rate * weight_decay`` of their value.
    n_epochs : int, default=100
        Maximum epochs; early stopping ends sooner (countdown of 15% of ``n_epochs``).
    tol : float, default=1e-3
        Early stopping's progress must lower the validation loss by 0.5% and by ``tol``
        times the first epoch's validation loss: smaller gains, as when a separable
        classification's loss keeps halving towards zero, do not prolong training.
        0 counts every gain of 0.5%.
    batch_size : int or 'auto', default='auto'
        'auto' is ``min(256, max(16, n_samples // 32))``.
    learning_rate : float or 'auto', default='auto'
        Initial learning rate of RAdam + Lookahead. 'auto' runs a short, seeded
        learning-rate range test on the training part before training (about 100
        steps on a copy of the network) and uses a tenth of the rate where the loss
        bottoms out, within [1e-4, 3e-2]; the rate used is ``learning_rate_``.
    train_prop : float in (0, 1] or 'auto', default='auto'
        Share of the data used for training; the rest is the internal validation set.
        'auto' is 0.9, except on fewer than 100 samples: then 10 samples validate, as
        long as they are at most a fifth of the data (:class:`TorchClassifier`: 0.9
        always; classification did not gain from it).
    n_best_nets : int, default=10
        Number of best versions to average (those within 10% of the best loss). The
        average of the best versions generalises better than the single best one on
        the quality benchmark; 10 rather than the seed's 5 gained on 11 of 20 real
        tables of ``benchmarks/realdata.py`` and lost on 1 (by 0.001). 1 keeps the best
        version only.
    with_restarts : bool, default=True
        Restart the optimizer when the validation loss stalls.
    repeat_train : int, default=1
        Passes over the training part per epoch.
    criterion : 'auto' or criterion class/object, default='auto'
        'auto' is the mixed criterion; see :class:`~sktorch_auto.MixedCriterion`.
    device : str, default='auto'
        'auto' (the GPU when there is one), 'cpu', 'cuda', 'cuda:N'.
    verbose : bool or int, default=False
        Progress bars and a line per epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the initial weights and the batch order.
    warm_start : bool, default=False
        Continue from the fitted network when fitting again.
    n_workers : int, default=0
        DataLoader workers (unused for in-memory arrays).
    checkpoint : str or path-like, default=None
        If given, the trainer's files ``{checkpoint}.pt`` (and ``_avg.pt``) are written;
        by default nothing is written to disk.
    amp : bool, default=False
        Automatic mixed precision (float16 on CUDA, bfloat16 on the CPU); off by default.
    compile : bool or str, default=False
        Compile the network with ``torch.compile`` (a string names the backend); pays
        off for long GPU trainings only, as compiling takes a while.
    standardize : {'robust', 'standard'} or bool, default='robust'
        Standardise each numeric input with statistics of the training part (the
        network's first step, stored with its weights), so raw units and large offsets
        need no scaler. 'robust': the mean and standard deviation of the values clipped
        to Tukey's far-out fences (3 interquartile ranges beyond the quartiles), and
        values beyond the fences compressed logarithmically, so that outliers and heavy
        tails cannot wreck a column's scale (without outliers it is plain
        standardisation); a column at least three quarters of whose rows hold its
        lowest or highest value (a rare 0/1 indicator, a count that is mostly 0) is
        centred on that value and scaled by the other values' median distance from it,
        so it enters near 0/1; a column whose 1st and 99th percentiles coincide is fenced at
        its least and greatest value, and a column constant in the training part enters
        as 0 whatever it holds later (its scale is infinite). 'standard' or True: the
        plain mean and standard deviation. False: no scaling. ``net_`` is then an
        ``InputScaled`` module whose ``net`` attribute is the network proper.
    categorical_features : 'auto', None, array-like of str or int, or bool mask, \
default='auto'
        Which columns are categorical. 'auto': category, string, boolean and object
        columns of a DataFrame (pandas or polars; object columns of numbers only, such
        as Decimals, are numeric), and in an object array the columns holding anything
        but numbers. Column names, indices or a boolean mask declare
        them (e.g. integer-coded categories in an array; the other columns must then be
        numeric). None: every column is numeric. Categories are coded with what the
        training part shows: those seen fewer than 5 times there share one "rare or
        unknown" code with categories never seen, a missing value is a category of its
        own. Gaps in numeric columns get the training part's median and a 0/1
        missing-indicator input. Date and time columns, and text columns that read as
        ISO 8601 dates or times of day, give numeric inputs whatever this setting (the
        trend, month, day, weekday and hour that vary in training), unless listed here.
    numeric_embedding : {'auto', 'periodic'} or None, default='auto'
        Inputs of the built-in network for the numeric columns. 'periodic': each
        (scaled) numeric input with more than two values in the training part also
        enters as 4 learned combinations of ``cos(2 pi (w x + b))`` for 16 learned
        frequencies and phases (RealMLP's "PBLD" embedding), which lets the network
        place sharp steps and bumps along a column; 0/1 and constant columns,
        missing-value indicators among them, and the trend of a date column (which a
        forecast extrapolates) enter as they are (sparse inputs: every column is
        embedded). 'auto': the same (dense or sparse) where there are at most
        64 such columns, and none beyond: each embedded column widens the first layer
        fivefold (an epoch with 32 embedded columns costs 3.3x, with 64 3.7x). None: the
        values alone. On the 21 tables of ``benchmarks/realdata.py`` the embeddings
        gained +0.004 on average (better on 11, e.g. +0.02 ROC AUC on attrition, +0.011
        R^2 on gestation; worse on 2 by 0.005) and on 30 other real tables kept out of
        the choice +0.005 (better on 14, worse on 4), for 1.6x the fit time (median;
        0.9-2.4x). Ignored
        with a ``net_builder`` and on data without a numeric column of more than two
        values.

    Attributes
    ----------
    net_ : torch.nn.Module
        The fitted network (the averaged or best version), behind the input
        standardisation when ``standardize=True``.
    criterion_ : MixedCriterion
        The criterion, holding the target flags and scale.
    n_outputs_ : int
        Number of target columns.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` has string column names.
    history_ : list of dict
        Per epoch: ``train_loss``, ``valid_loss``, ``learning_rate``, ``new_best``,
        ``decay``, ``restart``, ``seconds``.
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        Epoch of the lowest validation loss.
    best_loss_ : float
        That loss (unscaled), of the best single version: the averaged network in
        memory usually scores a little differently (``validation_score_`` is its).
    averaged_epochs_ : list of int
        Epochs whose versions were averaged.
    stop_reason_ : str
        Why training ended.
    learning_rate_ : float
        The initial learning rate used (the one chosen, with 'auto').
    validation_score_ : float
        :meth:`score` (R^2) of the fitted network on the internal validation part.
        NaN when that part is a single row (R^2 is undefined there).
    device_ : torch.device
        Where the network lives.
    encoder_ : TableEncoder
        The fitted encoding of the columns (kinds, categories, medians, indicator
        columns), plain data (``encoder_.state()``).
    categories_ : list of list
        The kept categories of each categorical column (codes 2 on; 0 is missing, 1 rare
        or unknown).
    is_categorical_ : ndarray of bool of shape (n_features_in_,)
        Which input columns were treated as categorical.
    periodic_columns_ : list of int or None
        Numeric inputs (positions in ``encoder_``'s numeric matrix) given periodic
        embeddings; None without embeddings.

    Examples
    --------
    >>> import numpy as np
    >>> from sktorch_auto import TorchRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3)); y = X @ [1.0, 2.0, 3.0] + 100
    >>> reg = TorchRegressor(n_epochs=20, random_state=0, device="cpu").fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _auto_activation = "gelu"
    _min_valid_rows = MIN_VALID_ROWS

    _y_checks = {"multi_output": True, "y_numeric": True}

    def _encode_targets(self, y, sample_weight):
        Y = y.reshape(len(y), -1).astype(np.float64)
        # Samples of weight zero do not count: neither for which columns are binary
        # nor for the target scale (the inputs' scaling is weighted the same way).
        counted = Y if sample_weight is None else Y[sample_weight > 0]
        flags = infer_regression_flags(counted)
        criterion = MixedCriterion(None, flags, infer_scale(Y, flags, sample_weight))
        return Y, sample_weight, criterion, None, {"n_outputs_": Y.shape[1], "_y_1d": y.ndim == 1}

    def _fitted_state(self):
        return {**super()._fitted_state(), "_y_1d": self._y_1d}

    def predict(self, X):
        """Predict targets: original units for regression columns, probabilities else.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self._forward(X).astype(np.float64)
        return out.ravel() if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
