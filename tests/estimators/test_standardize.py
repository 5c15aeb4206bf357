"""Built-in input standardisation (standardize=True): raw units need no scaler."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sktorch_auto import TorchClassifier, TorchRegressor
from sktorch_auto.core.split import train_valid_split
from sktorch_auto.estimators.nets import InputScaled, TabularInput, compress_tails
from sktorch_auto.estimators.scaling import input_statistics, robust_statistics


def _raw_units(n=300, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 3))
    X = Z * [1e4, 1e-3, 1.0] + [5e6, -2.0, 300.0]  # wild units and offsets
    return X, Z @ [1.0, -2.0, 0.5] * 100 + 1000


def _seed_of(random_state):
    return int(np.random.RandomState(random_state).randint(np.iinfo(np.int32).max))


def test_raw_units_and_offsets_fit_well_without_a_scaler():
    X, y = _raw_units()
    reg = TorchRegressor(n_epochs=60, learning_rate=1e-2, device="cpu", random_state=0)
    assert reg.fit(X, y).score(X, y) > 0.95
    off = TorchRegressor(n_epochs=60, learning_rate=1e-2, device="cpu", random_state=0,
                         standardize=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:  # the same network on raw inputs fails: it diverges or fits badly
            assert off.fit(X, y).score(X, y) < 0.5
        except ValueError as exc:
            assert "not finite" in str(exc)


def test_statistics_come_from_the_training_rows_only():
    X, y = _raw_units()
    reg = TorchRegressor(n_epochs=2, device="cpu", random_state=3,
                         standardize="standard").fit(X, y)
    train, valid = train_valid_split(len(X), 0.9, True, seed=_seed_of(3))
    assert isinstance(reg.net_, InputScaled)
    np.testing.assert_allclose(reg.net_.mean.numpy(), X[train].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(reg.net_.scale.numpy(), X[train].std(axis=0), rtol=1e-5)
    assert not np.allclose(reg.net_.mean.numpy(), X.mean(axis=0), rtol=1e-9)


def test_weighted_statistics_count_weights_like_repeated_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2)) * 3 + 1
    weight = rng.integers(0, 4, size=50)
    rows = np.arange(50)
    mean, scale = input_statistics(X, rows, weight)
    repeated = X.repeat(weight, axis=0)
    np.testing.assert_allclose(mean, repeated.mean(axis=0))
    np.testing.assert_allclose(scale, repeated.std(axis=0))


def test_sparse_statistics_match_dense_ones_in_small_chunks(monkeypatch):
    monkeypatch.setattr("sktorch_auto.estimators.scaling.CHUNK_ELEMENTS", 64)
    rng = np.random.default_rng(1)
    X = sp.random(200, 30, density=0.1, format="csr", random_state=1) * 5
    rows = rng.choice(200, size=150, replace=False)
    dense = input_statistics(X.toarray(), rows)
    sparse = input_statistics(X, rows)
    np.testing.assert_allclose(sparse[0], dense[0])
    np.testing.assert_allclose(sparse[1], dense[1])


def test_constant_feature_is_centred_not_divided_by_zero():
    X, y = _raw_units(n=100)
    X[:, 1] = 7.0
    reg = TorchRegressor(n_epochs=3, device="cpu", random_state=0).fit(X, y)
    assert np.isfinite(reg.predict(X)).all()
    plain = TorchRegressor(n_epochs=3, device="cpu", random_state=0,
                           standardize="standard").fit(X, y)
    assert plain.net_.scale[1].item() == 1.0  # plain standardisation: centred only


@pytest.mark.parametrize("later", [7.0, -3.0, 1e6])
def test_a_column_constant_in_training_is_ignored_at_prediction(later):
    # It told nothing in training: whatever it holds later, the predictions stay
    # those of the training constant (an unscaled 1e6 used to reach the network).
    X, y = _raw_units(n=100)
    X[:, 1] = 7.0
    reg = TorchRegressor(n_epochs=3, device="cpu", random_state=0).fit(X, y)
    changed = X.copy()
    changed[:, 1] = later
    np.testing.assert_array_equal(reg.predict(changed), reg.predict(X))
    np.testing.assert_array_equal(reg.predict(changed.astype(np.float32)),
                                  reg.predict(X.astype(np.float32)))


def test_an_almost_constant_column_is_fenced_at_its_training_range():
    # 2 rows of 300 off the mode: the 1st and 99th percentiles coincide, so the fences
    # are the least and the greatest training value; 1e9 then enters a few units past
    # the greatest (logarithmic tail), not a billion units.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 2))
    X[:, 1] = 0.0
    X[:2, 1] = [1.0, 3.0]
    mean, scale, low, high = robust_statistics(X, np.arange(300))
    assert (low[1], high[1]) == (0.0, 3.0)
    reg = TorchRegressor(n_epochs=3, device="cpu", random_state=0).fit(X, X[:, 0])
    far = X[:5].copy()
    far[:, 1] = 1e9
    z = (far[:, 1] - reg.net_.mean[1].item()) / reg.net_.scale[1].item()
    entered = compress_tails(z, (low[1] - mean[1]) / scale[1], (high[1] - mean[1]) / scale[1])
    assert np.all(entered < (high[1] - mean[1]) / scale[1] + 25)
    assert np.all(np.abs(reg.predict(far) - reg.predict(X[:5])) < 10 * X[:, 0].std())


def test_standardize_false_keeps_the_bare_network():
    X, y = _raw_units(n=60)
    clf = TorchClassifier(n_epochs=2, device="cpu", random_state=0, standardize=False,
                          numeric_embedding=None)
    clf.fit(X, y > 1000)
    assert isinstance(clf.net_, torch.nn.Sequential)
    periodic = TorchClassifier(n_epochs=2, device="cpu", random_state=0, standardize=False,
                               numeric_embedding="periodic").fit(X, y > 1000)
    assert isinstance(periodic.net_, TabularInput)  # no InputScaled around it


def test_scaling_travels_with_the_saved_weights(tmp_path):
    X, y = _raw_units(n=80)
    reg = TorchRegressor(n_epochs=3, device="cpu", random_state=0).fit(X, y)
    reg.save(tmp_path / "m.skt")
    loaded = TorchRegressor.load(tmp_path / "m.skt")
    assert torch.equal(loaded.net_.mean, reg.net_.mean)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


def test_prediction_folds_the_scaling_into_the_first_layer_exactly():
    from sktorch_auto.estimators.nets import build_mlp

    torch.manual_seed(0)
    inner = build_mlp(3, 2, (8,))
    scaled = InputScaled(3, inner)
    scaled.mean.copy_(torch.tensor([5.0, -2.0, 300.0]))
    scaled.scale.copy_(torch.tensor([10.0, 0.1, 3.0]))
    x = (torch.randn(16, 3) * scaled.scale + scaled.mean).float()
    expected = inner(((x - scaled.mean) / scaled.scale).float())
    torch.testing.assert_close(scaled.train()(x), expected, rtol=1e-5, atol=1e-5)
    with torch.inference_mode():
        folded = scaled.eval()(x)
    torch.testing.assert_close(folded, expected.detach(), rtol=1e-4, atol=1e-4)


def test_a_column_with_an_offset_far_beyond_its_spread_does_not_spoil_the_fit():
    # float32 keeps only a few levels of the third column: the scaling must subtract the
    # offset before dividing by the tiny spread, or those levels become huge inputs.
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(400, 3))
    X = Z * [1.0, 10.0, 1e-3] + [0.0, -50.0, 2.3e5]
    y = np.sin(Z[:, 0]) + Z[:, 1]
    reg = TorchRegressor(n_epochs=40, learning_rate=1e-2, device="cpu", random_state=0)
    assert reg.fit(X[:300], y[:300]).score(X[300:], y[300:]) > 0.9


def test_prediction_is_exact_when_the_offsets_are_large():
    from sktorch_auto.estimators.nets import build_mlp

    torch.manual_seed(0)
    inner = build_mlp(2, 1, (8,))
    scaled = InputScaled(2, inner)
    scaled.mean.copy_(torch.tensor([1e5, 3.0]))
    scaled.scale.copy_(torch.tensor([0.05, 2.0]))
    x = (torch.randn(16, 2) * scaled.scale + scaled.mean).float()
    exact = (x.double() - scaled.mean) / scaled.scale  # of these floats
    expected = inner(exact.float())
    torch.testing.assert_close(scaled.train()(x), expected, rtol=1e-3, atol=1e-3)
    with torch.inference_mode():
        torch.testing.assert_close(scaled.eval()(x), expected.detach(), rtol=1e-3, atol=1e-3)


def test_float64_inputs_are_standardised_in_float64():
    from sktorch_auto.estimators.nets import build_mlp

    torch.manual_seed(0)
    scaled = InputScaled(1, build_mlp(1, 1, (4,))).eval()
    scaled.mean.fill_(3e7)
    scaled.scale.fill_(0.5)
    x = torch.tensor([[3e7 + 0.25], [3e7 - 0.75]], dtype=torch.float64)
    with torch.inference_mode():
        out = scaled(x)
        expected = scaled.net(torch.tensor([[0.5], [-1.5]]))
    torch.testing.assert_close(out, expected)


def test_raw_units_beyond_float32_resolution_are_learned():
    # 3e7 + N(0, 1): float32 rounds to multiples of 2, keeping almost nothing of the
    # signal; standardising in float64 before the cast keeps all of it.
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 2))
    X = np.c_[3e7 + z[:, 0], z[:, 1]]
    y = 3 * z[:, 0] + z[:, 1]
    reg = TorchRegressor(n_epochs=40, learning_rate=1e-2, device="cpu", random_state=0)
    assert reg.fit(X[:200], y[:200]).score(X[200:], y[200:]) > 0.95
