"""Property-based reliability tests (issue 5): on random shapes, dtypes, label sets and
sample weights, the estimators either work (right output shapes, finite values, known
labels) or raise ValueError / TypeError - never another exception."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sktorch_auto import TorchClassifier, TorchRegressor

FAST = dict(n_epochs=2, hidden_layer_sizes=(4,), device="cpu", random_state=0)
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EXPECTED_ERRORS = (ValueError, TypeError)

NUMERIC_KINDS = ["float32", "float64", "int64", "bool"]
ALL_KINDS = NUMERIC_KINDS + ["object-str", "object-numeric-str"]


def _elements(kind):
    if kind == "float32":
        return st.floats(-1e3, 1e3, width=32)
    if kind == "float64":
        return st.floats(-1e3, 1e3)
    if kind == "int64":
        return st.integers(-1000, 1000)
    if kind == "bool":
        return st.booleans()
    if kind == "object-numeric-str":
        return st.floats(-1e3, 1e3).map(repr)
    return st.sampled_from(["a", "b", "1.5", "x y", ""])


def _dtype(kind):
    return object if kind.startswith("object") else np.dtype(kind)


@st.composite
def matrices(draw, n_rows, n_features, kinds, allow_special=True):
    """``n_rows`` x ``n_features`` arrays of the given kind, sometimes with NaN or inf."""
    kind = draw(st.sampled_from(kinds))
    X = draw(arrays(_dtype(kind), (n_rows, n_features), elements=_elements(kind)))
    if allow_special and kind.startswith("float") and X.size and draw(st.integers(0, 4)) == 0:
        X = X.copy()
        X.flat[draw(st.integers(0, X.size - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    return X, kind


@st.composite
def sample_weights(draw, n_rows, valid=False):
    """None, or per-sample weights with zeros; unless ``valid``, sometimes negative,
    NaN, all zero or of the wrong length."""
    kinds = ["none", "positive", "with-zeros"]
    if not valid:
        kinds += ["negative", "nan", "all-zero", "wrong-length"]
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    length = n_rows + 1 if kind == "wrong-length" else n_rows
    values = [0.0, 0.5, 1.0, 3.0] if kind == "with-zeros" else [0.5, 1.0, 3.0]
    w = draw(arrays(np.float64, length, elements=st.sampled_from(values))).copy()
    if kind == "with-zeros" and length:
        w[draw(st.integers(0, length - 1))] = 1.0  # at least one sample counts
    if kind in ("negative", "nan") and length:
        w[draw(st.integers(0, length - 1))] = -1.0 if kind == "negative" else np.nan
    if kind == "all-zero":
        w[:] = 0.0
    return w


@st.composite
def regression_problems(draw, valid=False):
    n_rows = draw(st.integers(1 if valid else 0, 12))
    n_features = draw(st.integers(1 if valid else 0, 4))
    X, _ = draw(matrices(n_rows, n_features, NUMERIC_KINDS if valid else ALL_KINDS,
                         allow_special=not valid))
    n_outputs = draw(st.sampled_from([0, 1, 2]))  # 0: a 1-D y
    y_shape = (n_rows,) if n_outputs == 0 else (n_rows, n_outputs)
    y_kind = draw(st.sampled_from(["float64", "float32", "int64"]))
    y = draw(arrays(np.dtype(y_kind), y_shape, elements=_elements(y_kind)))
    X_new, _ = draw(matrices(3, n_features, NUMERIC_KINDS, allow_special=False))
    return X, y, draw(sample_weights(n_rows, valid)), X_new


@st.composite
def classification_problems(draw, valid=False):
    n_rows = draw(st.integers(1 if valid else 0, 12))
    n_features = draw(st.integers(1 if valid else 0, 4))
    X, _ = draw(matrices(n_rows, n_features, NUMERIC_KINDS if valid else ALL_KINDS,
                         allow_special=not valid))
    n_classes = draw(st.integers(1, 5))
    label_kind = draw(st.sampled_from(["int", "str"]))
    labels = (np.array([3 * k - 4 for k in range(n_classes)]) if label_kind == "int"
              else np.array([f"class {k}" for k in range(n_classes)], dtype=object))
    codes = draw(arrays(np.int64, n_rows, elements=st.integers(0, n_classes - 1)))
    y = labels[codes]
    X_new, _ = draw(matrices(3, n_features, NUMERIC_KINDS, allow_special=False))
    return X, y, draw(sample_weights(n_rows, valid)), X_new


def _fit_quietly(est, X, y, w):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y, sample_weight=w)


def _check_regressor(reg, X, y, X_new):
    for data in (X, X_new):
        pred = reg.predict(data)
        assert pred.shape == (len(data),) + y.shape[1:]
        assert np.isfinite(pred).all()


def _check_classifier(clf, X, y, X_new):
    assert set(clf.classes_.tolist()) == set(y.tolist())
    for data in (X, X_new):
        pred = clf.predict(data)
        assert pred.shape == (len(data),)
        assert set(pred.tolist()) <= set(y.tolist())
        proba = clf.predict_proba(data)
        assert proba.shape == (len(data), len(clf.classes_))
        assert np.isfinite(proba).all()
        assert np.allclose(proba.sum(axis=1), 1.0)


@SETTINGS
@given(problem=regression_problems())
def test_regressor_works_or_raises_value_or_type_error(problem):
    X, y, w, X_new = problem
    try:
        reg = _fit_quietly(TorchRegressor(**FAST), X, y, w)
    except EXPECTED_ERRORS as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("fitted")
    _check_regressor(reg, X, y, X_new)


@SETTINGS
@given(problem=regression_problems(valid=True))
def test_regressor_always_works_on_valid_numeric_data(problem):
    X, y, w, X_new = problem
    reg = _fit_quietly(TorchRegressor(**FAST), X, y, w)
    _check_regressor(reg, X, y, X_new)


@SETTINGS
@given(problem=classification_problems())
def test_classifier_works_or_raises_value_or_type_error(problem):
    X, y, w, X_new = problem
    try:
        clf = _fit_quietly(TorchClassifier(**FAST), X, y, w)
    except EXPECTED_ERRORS as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("fitted")
    _check_classifier(clf, X, y, X_new)


@SETTINGS
@given(problem=classification_problems(valid=True))
def test_classifier_always_works_on_valid_numeric_data(problem):
    X, y, w, X_new = problem
    clf = _fit_quietly(TorchClassifier(**FAST), X, y, w)
    _check_classifier(clf, X, y, X_new)


_FITTED = {}


def _fitted(cls):
    if cls not in _FITTED:
        rng = np.random.RandomState(0)
        X = rng.normal(size=(20, 3))
        y = X.sum(axis=1)
        _FITTED[cls] = cls(**FAST).fit(X, y if cls is TorchRegressor else y > 0)
    return _FITTED[cls]


@pytest.mark.parametrize("cls", [TorchRegressor, TorchClassifier], ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_predict_on_bad_inputs_raises_value_or_type_error(cls, data):
    """A fitted estimator given X of any shape and dtype: predictions or a clean error."""
    est = _fitted(cls)
    n_rows = data.draw(st.integers(0, 5))
    n_features = data.draw(st.sampled_from([3, 3, 3, 0, 2, 4]))
    X_bad, _ = data.draw(matrices(n_rows, n_features, ALL_KINDS))
    if data.draw(st.integers(0, 3)) == 0:
        X_bad = X_bad.reshape(-1) if data.draw(st.booleans()) else X_bad[..., None]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = est.predict(X_bad)
    except EXPECTED_ERRORS as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("predicted")
    assert X_bad.ndim == 2 and X_bad.shape[1] == 3
    assert pred.shape == (len(X_bad),)
    if cls is TorchRegressor:
        assert np.isfinite(pred).all()
    else:
        assert set(pred.tolist()) <= {False, True}
