"""``TorchClassifier``: binary, multiclass and multilabel classification."""

from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from ..core.criterion import MixedCriterion, SoftmaxCriterion
from .base import TOL, BaseTorchEstimator


def _class_weights(class_weight, classes, y):
    """Weight of each class (same order as ``classes``) for ``class_weight``."""
    if isinstance(class_weight, dict):
        unknown = set(class_weight) - set(classes.tolist())
        if unknown:
            raise ValueError(f"class_weight names classes not in y: {sorted(map(str, unknown))}.")
        values = [class_weight[c] for c in class_weight]
        if not all(isinstance(v, Real) and not isinstance(v, (bool, np.bool_))
                   and 0 <= v < np.inf for v in values):
            raise ValueError("class_weight values must be non-negative finite numbers; got "
                             f"{class_weight!r}.")
    weights = compute_class_weight(class_weight, classes=classes, y=y)
    if not weights.sum() > 0:
        raise ValueError("class_weight gives every class of y a weight of zero: at least "
                         "one class must count.")
    return weights


class TorchClassifier(ClassifierMixin, BaseTorchEstimator):
    """A PyTorch network as a scikit-learn classifier, trained with all the automation.

    Any labels (strings, integers, ...); binary problems use one logit with binary
    cross-entropy, multiclass problems K logits with softmax cross-entropy, and a
    multilabel indicator ``y`` one logit per label. The internal validation split is
    stratified.

    Parameters
    ----------
    net_builder, net_builder_kwargs, hidden_layer_sizes, activation, dropout, weight_decay, \
n_epochs, tol, \
batch_size, learning_rate, train_prop, n_best_nets, with_restarts, repeat_train, criterion, \
device, verbose, random_state, warm_start, n_workers, checkpoint, amp, compile, \
standardize, categorical_features, numeric_embedding
        As in :class:`~sktorch_auto.TorchRegressor`.
    class_weight : None, 'balanced' or dict, default=None
        Weights of the classes, applied through per-output weights (multiplied with
        ``sample_weight``). 'balanced' uses ``n_samples / (n_classes * counts)``; for a
        multilabel ``y`` it balances the 0s and 1s of each label.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (for multilabel ``y``, the label indices).
    n_outputs_ : int
        Network outputs: 1 for binary, K for multiclass and multilabel.
    net_, criterion_, n_features_in_, feature_names_in_, history_, n_iter_, best_epoch_, \
best_loss_, averaged_epochs_, stop_reason_, device_, learning_rate_, encoder_, categories_, \
is_categorical_, periodic_columns_
        As in :class:`~sktorch_auto.TorchRegressor`.
    validation_score_ : float
        :meth:`score` (accuracy) of the fitted network on the internal validation part.

    Examples
    --------
    >>> import numpy as np
    >>> from sktorch_auto import TorchClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3)); y = np.where(X[:, 0] > 0, "yes", "no")
    >>> clf = TorchClassifier(n_epochs=20, random_state=0, device="cpu").fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(self, net_builder=None, net_builder_kwargs=None, *,
                 hidden_layer_sizes=(128, 128), activation="auto", dropout=0.0, weight_decay=0.0,
                 n_epochs=100, tol=TOL, batch_size="auto", learning_rate="auto", train_prop="auto",
                 n_best_nets=10, with_restarts=True, repeat_train=1, criterion="auto",
                 device="auto", verbose=False, random_state=None, warm_start=False, n_workers=0,
                 checkpoint=None, amp=False, compile=False, standardize="robust",
                 categorical_features="auto", numeric_embedding="auto", class_weight=None):
        super().__init__(
            net_builder, net_builder_kwargs, hidden_layer_sizes=hidden_layer_sizes,
            activation=activation, dropout=dropout, weight_decay=weight_decay,
            n_epochs=n_epochs, tol=tol, batch_size=batch_size,
            learning_rate=learning_rate, train_prop=train_prop, n_best_nets=n_best_nets,
            with_restarts=with_restarts, repeat_train=repeat_train, criterion=criterion,
            device=device, verbose=verbose, random_state=random_state, warm_start=warm_start,
            n_workers=n_workers, checkpoint=checkpoint, amp=amp, compile=compile,
            standardize=standardize, categorical_features=categorical_features,
            numeric_embedding=numeric_embedding,
        )
        self.class_weight = class_weight

    _y_checks = {"multi_output": True}

    def _validate_targets(self, X, y, reset):
        X, y = super()._validate_targets(X, y, reset)
        check_classification_targets(y)
        return X, y

    def _encode_targets(self, y, sample_weight):
        target_type = type_of_target(y)
        if target_type == "multilabel-indicator":
            return self._encode_multilabel(y, sample_weight)
        if target_type not in ("binary", "multiclass"):
            raise ValueError(f"TorchClassifier does not support {target_type} targets.")
        y = column_or_1d(y, warn=True)
        classes, codes = np.unique(y, return_inverse=True)
        weight = np.ones(len(y)) if sample_weight is None else sample_weight
        if self.class_weight is not None:
            weight = weight * _class_weights(self.class_weight, classes, y)[codes]
        weight = None if sample_weight is None and self.class_weight is None else weight
        if len(classes) <= 2:
            Y = codes.reshape(-1, 1).astype(np.float64)
            criterion = MixedCriterion(None, [0], ([0.0], [1.0]))
        else:
            Y = np.eye(len(classes))[codes]
            criterion = SoftmaxCriterion()
        if weight is not None:
            weight = weight.reshape(-1, 1)
        fitted = {"classes_": classes, "n_outputs_": Y.shape[1], "_multilabel": False}
        return Y, weight, criterion, codes, fitted

    def _encode_multilabel(self, y, sample_weight):
        Y = np.asarray(y.toarray() if hasattr(y, "toarray") else y, dtype=np.float64)
        weight = None if sample_weight is None else np.repeat(
            sample_weight.reshape(-1, 1), Y.shape[1], axis=1)
        if self.class_weight is not None:
            if self.class_weight != "balanced":
                raise ValueError("For a multilabel y, class_weight must be None or 'balanced'.")
            per_output = np.ones_like(Y)
            for k in range(Y.shape[1]):
                present = np.unique(Y[:, k])
                cw = compute_class_weight("balanced", classes=present, y=Y[:, k])
                per_output[:, k] = cw[np.searchsorted(present, Y[:, k])]
            weight = per_output if weight is None else weight * per_output
        criterion = MixedCriterion(None, np.zeros(Y.shape[1]),
                                   (np.zeros(Y.shape[1]), np.ones(Y.shape[1])))
        fitted = {"classes_": np.arange(Y.shape[1]), "n_outputs_": Y.shape[1],
                  "_multilabel": True}
        return Y, weight, criterion, None, fitted

    def _check_warm_start(self, fitted, criterion):
        if fitted["_multilabel"] != self._multilabel or not np.array_equal(
                fitted["classes_"], self.classes_):
            raise ValueError(f"warm_start: y has classes {fitted['classes_']} but the "
                             f"estimator was fitted on {self.classes_}.")
        super()._check_warm_start(fitted, criterion)

    def _fitted_state(self):
        state = super()._fitted_state()
        state["classes_"] = self.classes_.tolist()
        state["classes_dtype"] = self.classes_.dtype.str
        state["_multilabel"] = self._multilabel
        return state

    def _restore_fitted(self, fitted):
        fitted = dict(fitted)
        dtype = fitted.pop("classes_dtype")
        classes = fitted.pop("classes_")
        super()._restore_fitted(fitted)
        self.classes_ = np.asarray(classes, dtype=object if dtype == "|O" else dtype)

    def predict_proba(self, X):
        """Probability of each class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1 (for multilabel ``y``: one independent probability per label).
        """
        out = self._forward(X).astype(np.float64)
        if self._multilabel or self.n_outputs_ > 1:
            return out
        if len(self.classes_) == 1:
            return np.ones((out.shape[0], 1))
        return np.hstack([1.0 - out, out])

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predict class labels (for multilabel ``y``, a 0/1 indicator matrix).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
