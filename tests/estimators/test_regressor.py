"""TorchRegressor: target shapes, mixed targets, sample weights, sparse input (E1)."""

import numpy as np
import pytest
import scipy.sparse as sp

from sktorch_auto import TorchClassifier, TorchRegressor

FAST = dict(n_epochs=30, learning_rate=1e-2, device="cpu", random_state=0)


def _linear(n=150, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=n)


def test_1d_target_gives_1d_predictions():
    X, y = _linear()
    reg = TorchRegressor(**FAST).fit(X, y)
    assert reg.n_outputs_ == 1
    assert reg.predict(X).shape == (len(X),)


def test_2d_single_column_target_gives_2d_predictions():
    X, y = _linear()
    reg = TorchRegressor(**FAST).fit(X, y.reshape(-1, 1))
    assert reg.predict(X).shape == (len(X), 1)


def test_2d_target_gives_2d_predictions():
    X, y = _linear()
    Y = np.column_stack([y, -y, 2 * y])
    reg = TorchRegressor(**FAST).fit(X, Y)
    assert reg.n_outputs_ == 3
    pred = reg.predict(X)
    assert pred.shape == (len(X), 3)
    assert reg.score(X, Y) > 0.9


def test_regression_in_original_units_with_large_offset():
    X, y = _linear()
    reg = TorchRegressor(**FAST).fit(X, 1000.0 + 10.0 * y)
    pred = reg.predict(X)
    assert np.mean(np.abs(pred - (1000.0 + 10.0 * y))) < 5.0
    assert reg.score(X, 1000.0 + 10.0 * y) > 0.9


def test_mixed_regression_and_binary_columns():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    regression = 1000.0 + 5.0 * (X @ [1.0, -1.0, 0.5]) + rng.normal(scale=0.5, size=200)
    binary = (X[:, 0] + X[:, 2] > 0).astype(float)
    Y = np.column_stack([regression, binary])
    reg = TorchRegressor(**FAST).fit(X, Y)
    pred = reg.predict(X)
    assert pred.shape == (200, 2)
    # The regression column is predicted in original units, not standardised ones.
    assert np.mean(np.abs(pred[:, 0] - regression)) < 5.0
    # The binary column is a probability that follows the truth.
    assert np.all((pred[:, 1] >= 0) & (pred[:, 1] <= 1))
    assert np.corrcoef(pred[:, 1], binary)[0, 1] > 0.7
    assert np.mean((pred[:, 1] > 0.5) == binary) > 0.9


def _contradictory_halves(n=100, seed=0):
    """y = +x on the first half, y = -x on the second; the second half gets weight 0."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(-2, 2, size=2 * n)
    y = np.r_[x[:n], -x[n:]]
    weight = np.r_[np.ones(n), np.zeros(n)]
    return x.reshape(-1, 1), y, weight


def test_zero_sample_weight_removes_contradictory_half():
    X, y, weight = _contradictory_halves()
    reg = TorchRegressor(**FAST).fit(X, y, sample_weight=weight)
    X_test = np.linspace(-1.5, 1.5, 21).reshape(-1, 1)
    pred = reg.predict(X_test)
    assert np.corrcoef(pred, X_test.ravel())[0, 1] > 0.95
    assert np.mean(np.abs(pred - X_test.ravel())) < 0.3
    # Without the weights, the halves cancel out: the fit is flat.
    flat = TorchRegressor(**FAST).fit(X, y).predict(X_test)
    assert np.ptp(flat) < 0.5 * np.ptp(pred)


def test_targets_of_zero_weight_samples_do_not_move_the_fit():
    # Weight zero counts as absent for the target scale and the binary/regression
    # choice too: any y there, the same network (a 1e4 there used to set the scale).
    X, y, weight = _contradictory_halves()
    changed = y.copy()
    changed[weight == 0] = 1e4
    reference = TorchRegressor(**FAST).fit(X, y, sample_weight=weight)
    moved = TorchRegressor(**FAST).fit(X, changed, sample_weight=weight)
    np.testing.assert_allclose(moved.predict(X), reference.predict(X), rtol=1e-6, atol=1e-6)
    binary = (X[:, 0] > 0).astype(float)
    binary[weight == 0] = 0.5  # a 0/1 column where it counts: binary cross-entropy
    reg = TorchRegressor(**FAST).fit(X, binary, sample_weight=weight)
    assert reg.criterion_.regression_flags.tolist() == [0]
    assert np.all((reg.predict(X) >= 0) & (reg.predict(X) <= 1))


def test_zero_sample_weight_removes_contradictory_half_classifier():
    X, y, weight = _contradictory_halves()
    labels = (y > 0).astype(int)
    clf = TorchClassifier(**FAST).fit(X, labels, sample_weight=weight)
    X_test = np.array([[-1.5], [-1.0], [1.0], [1.5]])
    np.testing.assert_array_equal(clf.predict(X_test), [0, 0, 1, 1])


@pytest.mark.parametrize("cls", [TorchRegressor, TorchClassifier])
@pytest.mark.parametrize(
    "make_weight",
    [lambda n: -np.ones(n), lambda n: np.r_[np.nan, np.ones(n - 1)],
     lambda n: np.r_[np.inf, np.ones(n - 1)], lambda n: np.ones(n - 1),
     lambda n: np.zeros(n)],
    ids=["negative", "nan", "inf", "wrong-length", "all-zero"],
)
def test_invalid_sample_weight_raises(cls, make_weight):
    X, y = _linear(n=40)
    if cls is TorchClassifier:
        y = (y > 0).astype(int)
    with pytest.raises(ValueError):
        cls(**FAST).fit(X, y, sample_weight=make_weight(len(X)))


def test_single_negative_sample_weight_raises():
    X, y = _linear(n=40)
    weight = np.ones(len(X))
    weight[3] = -0.5
    with pytest.raises(ValueError):
        TorchRegressor(**FAST).fit(X, y, sample_weight=weight)


def _sparse_problem(n=120, seed=0):
    rng = np.random.RandomState(seed)
    dense = rng.normal(size=(n, 6)) * (rng.uniform(size=(n, 6)) < 0.4)
    y = dense @ [1.0, -1.0, 2.0, 0.0, 0.5, -0.5]
    return dense, y


def test_sparse_input_matches_dense_regressor():
    dense, y = _sparse_problem()
    sparse = sp.csr_matrix(dense)
    from_dense = TorchRegressor(**FAST).fit(dense, y)
    from_sparse = TorchRegressor(**FAST).fit(sparse, y)
    assert from_sparse.n_iter_ == from_dense.n_iter_
    np.testing.assert_allclose(from_sparse.predict(dense), from_dense.predict(dense),
                               rtol=1e-5, atol=1e-5)
    # Predicting on sparse rows gives what predicting on the dense rows gives.
    np.testing.assert_allclose(from_sparse.predict(sparse), from_sparse.predict(dense),
                               rtol=1e-6, atol=1e-6)


def test_sparse_input_matches_dense_classifier():
    dense, y = _sparse_problem()
    labels = (y > 0).astype(int)
    from_dense = TorchClassifier(**FAST).fit(dense, labels)
    from_sparse = TorchClassifier(**FAST).fit(sp.csr_matrix(dense), labels)
    np.testing.assert_allclose(from_sparse.predict_proba(sp.csr_matrix(dense)),
                               from_dense.predict_proba(dense), rtol=1e-5, atol=1e-5)


def test_sparse_csc_input_is_accepted():
    dense, y = _sparse_problem()
    reg = TorchRegressor(**FAST).fit(sp.csc_matrix(dense), y)
    np.testing.assert_allclose(reg.predict(sp.csc_matrix(dense)), reg.predict(dense),
                               rtol=1e-6, atol=1e-6)


def test_sparse_input_with_sample_weight():
    dense, y = _sparse_problem()
    weight = np.random.RandomState(1).uniform(0.5, 2.0, size=len(y))
    from_dense = TorchRegressor(**FAST).fit(dense, y, sample_weight=weight)
    from_sparse = TorchRegressor(**FAST).fit(sp.csr_matrix(dense), y, sample_weight=weight)
    # The weighted statistics of the two paths differ in the last bit (1e-16); over 22
    # epochs of float32 training that drifts to ~1e-5 on some CPUs (targets' sd: 1.8).
    np.testing.assert_allclose(from_sparse.predict(dense), from_dense.predict(dense),
                               rtol=1e-5, atol=1e-4)
