"""TorchClassifier: labels, probabilities, multilabel targets, class weights (E1)."""

import numpy as np
import pytest
from sklearn.metrics import recall_score

from sktorch_auto import TorchClassifier

FAST = dict(n_epochs=30, learning_rate=1e-2, device="cpu", random_state=0)


def _binary(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 2))
    return X, X[:, 0] + 0.5 * X[:, 1] > 0


def _blobs(n_per_class=40, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    centers = 3.0 * np.eye(n_classes, 2 if n_classes <= 2 else n_classes)
    X = np.vstack([c + rng.normal(size=(n_per_class, centers.shape[1])) for c in centers])
    y = np.repeat(np.arange(n_classes), n_per_class)
    return X, y


def test_string_labels_predict_original_strings():
    X, y = _binary()
    labels = np.where(y, "yes", "no")
    clf = TorchClassifier(**FAST).fit(X, labels)
    pred = clf.predict(X)
    assert set(pred) <= {"yes", "no"}
    assert set(pred) == {"yes", "no"}
    assert np.mean(pred == labels) > 0.9


def test_classes_are_sorted_strings():
    X, y = _blobs()
    names = np.array(["pear", "apple", "fig"])[y]
    clf = TorchClassifier(**FAST).fit(X, names)
    assert clf.classes_.tolist() == ["apple", "fig", "pear"]
    assert np.mean(clf.predict(X) == names) > 0.9


def test_integer_labels_3_and_7():
    X, y = _binary()
    labels = np.where(y, 7, 3)
    clf = TorchClassifier(**FAST).fit(X, labels)
    assert clf.classes_.tolist() == [3, 7]
    pred = clf.predict(X)
    assert set(np.unique(pred)) == {3, 7}
    assert np.mean(pred == labels) > 0.9
    # Column 1 of predict_proba is the probability of classes_[1] == 7.
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(np.where(proba[:, 1] > 0.5, 7, 3), pred)


def test_multiclass_predict_proba_rows_sum_to_one():
    X, y = _blobs(n_classes=4)
    clf = TorchClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 4)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) > 0.9


def test_binary_predict_proba_shape_and_sum():
    X, y = _binary()
    clf = TorchClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    with np.errstate(divide="ignore"):  # a probability that rounds to 0 has log -inf
        expected = np.log(proba)
    np.testing.assert_allclose(clf.predict_log_proba(X), expected)


def test_multilabel_indicator_predicts_0_1_matrix():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 3))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 2] > 0]).astype(int)
    clf = TorchClassifier(**FAST).fit(X, Y)
    pred = clf.predict(X)
    assert pred.shape == Y.shape
    assert set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape
    assert np.all((proba >= 0) & (proba <= 1))
    assert np.mean(pred == Y) > 0.85


def test_single_class_fits_and_predicts_that_class():
    X, _ = _binary(n=40)
    clf = TorchClassifier(**FAST).fit(X, np.full(len(X), "only"))
    assert clf.classes_.tolist() == ["only"]
    assert clf.predict(X).tolist() == ["only"] * len(X)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 1)
    np.testing.assert_array_equal(proba, 1.0)


def test_continuous_target_raises_unknown_label_type():
    X, _ = _binary(n=40)
    y = np.random.RandomState(0).normal(size=len(X))
    with pytest.raises(ValueError, match="Unknown label type"):
        TorchClassifier(**FAST).fit(X, y)


def test_class_weight_balanced_raises_minority_recall():
    rng = np.random.RandomState(0)
    n_major, n_minor = 270, 30
    X = np.vstack([rng.normal(0.0, 1.0, size=(n_major, 2)),
                   rng.normal(1.2, 1.0, size=(n_minor, 2))])
    y = np.r_[np.zeros(n_major, int), np.ones(n_minor, int)]
    params = dict(FAST, n_epochs=40, hidden_layer_sizes=(8,))
    plain = TorchClassifier(**params).fit(X, y)
    balanced = TorchClassifier(class_weight="balanced", **params).fit(X, y)
    recall_plain = recall_score(y, plain.predict(X))
    recall_balanced = recall_score(y, balanced.predict(X))
    assert recall_balanced > recall_plain + 0.2


def test_class_weight_dict_favours_the_weighted_class():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + rng.normal(scale=1.0, size=200) > 0).astype(int)
    params = dict(FAST, hidden_layer_sizes=(8,))
    plain = TorchClassifier(**params).fit(X, y)
    heavy = TorchClassifier(class_weight={0: 1.0, 1: 5.0}, **params).fit(X, y)
    assert heavy.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean() + 0.1


def test_class_weight_dict_with_unknown_class_raises():
    X, y = _binary(n=40)
    with pytest.raises(ValueError, match="class_weight"):
        TorchClassifier(class_weight={0: 1.0, 5: 2.0}, **FAST).fit(X, y.astype(int))


@pytest.mark.parametrize("class_weight", [{0: -1.0, 1: 1.0}, {0: np.nan, 1: 1.0},
                                          {0: np.inf, 1: 1.0}, {0: "heavy", 1: 1.0}])
def test_class_weight_dict_with_invalid_weights_raises(class_weight):
    X, y = _binary(n=40)
    with pytest.raises(ValueError, match="class_weight values must be non-negative"):
        TorchClassifier(class_weight=class_weight, **FAST).fit(X, y.astype(int))


def test_class_weight_zero_for_every_class_raises():
    X, y = _binary(n=40)
    with pytest.raises(ValueError, match="at least one class must count"):
        TorchClassifier(class_weight={0: 0.0, 1: 0.0}, **FAST).fit(X, y.astype(int))


def test_class_weight_dict_with_string_labels():
    X, y = _binary()
    labels = np.where(y, "yes", "no")
    clf = TorchClassifier(class_weight={"yes": 2.0, "no": 1.0}, **FAST).fit(X, labels)
    assert set(clf.predict(X)) <= {"yes", "no"}
