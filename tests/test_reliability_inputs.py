"""Reliability (issue 5): bad inputs get scikit-learn's exception type and a message
that names the problem, in the estimators and in the trainer core."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from sktorch_auto import PytorchTrainer, TorchClassifier, TorchRegressor

FAST = dict(n_epochs=2, hidden_layer_sizes=(8,), device="cpu", random_state=0)
ESTIMATORS = [TorchRegressor, TorchClassifier]


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _data(n=40, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    return X, X @ np.arange(1.0, d + 1)


def _target_for(cls, y):
    return (y > 0).astype(int) if cls is TorchClassifier else y


@pytest.fixture(scope="module", params=ESTIMATORS, ids=lambda c: c.__name__)
def fitted(request):
    X, y = _data()
    return request.param(**FAST).fit(X, _target_for(request.param, y)), X


@pytest.fixture(scope="module")
def frame_fitted():
    X, y = _data()
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    return TorchRegressor(**FAST).fit(df, y), df


def _with_value(X, value, row=3, col=1):
    X = X.copy()
    X[row, col] = value
    return X


# ----------------------------------------------------------- NaN / inf in X or y


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("value, message", [(np.inf, "Input X contains infinity"),
                                            (-np.inf, "Input X contains infinity")],
                         ids=["inf", "-inf"])
def test_infinite_X_at_fit_is_a_value_error_naming_X(cls, value, message):
    X, y = _data()
    with pytest.raises(ValueError, match=message):
        cls(**FAST).fit(_with_value(X, value), _target_for(cls, y))


@pytest.mark.parametrize("value, message", [(np.nan, "Input y contains NaN"),
                                            (np.inf, "Input y contains infinity")],
                         ids=["nan", "inf"])
def test_non_finite_y_at_fit_is_a_value_error_naming_y(value, message):
    X, y = _data()
    y = y.copy()
    y[2] = value
    with pytest.raises(ValueError, match=message):
        TorchRegressor(**FAST).fit(X, y)


def test_nan_label_for_the_classifier_is_a_value_error_naming_y():
    X, y = _data()
    labels = (y > 0).astype(float)
    labels[5] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        TorchClassifier(**FAST).fit(X, labels)


def test_infinite_X_at_predict_is_a_value_error_naming_X(fitted):
    est, X = fitted
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.predict(_with_value(X, np.inf))


def test_nan_in_X_is_a_gap_imputed_at_fit_and_at_predict(fitted):
    """NaN is a missing value (imputed with the training median), not an error."""
    est, X = fitted
    pred = est.predict(_with_value(X, np.nan))
    assert np.isfinite(np.asarray(pred, dtype=float)).all()
    X, y = _data()
    clf = TorchClassifier(**FAST).fit(_with_value(X, np.nan), y > 0)
    assert np.isfinite(clf.predict_proba(_with_value(X, np.nan))).all()


def test_nan_in_a_sparse_X_is_still_refused():
    X, y = _data()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        TorchRegressor(**FAST).fit(sp.csr_matrix(_with_value(X, np.nan)), y)


def test_X_beyond_float32_range_at_predict_is_refused_not_predicted_as_nan(fitted):
    """1e39 is finite in float64 (so it passes the finiteness check) but infinite in
    the float32 the network runs in: the predictions would be NaN. Never silently."""
    est, X = fitted
    huge = _with_value(X[:4], 1e39, row=0, col=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "overflow in cast"
        try:
            out = est.predict_proba(huge) if hasattr(est, "predict_proba") else est.predict(huge)
        except ValueError as exc:
            assert re.search(r"infinit|too large|float32|finite", str(exc), re.I), str(exc)
            return
    assert np.isfinite(out).all(), f"silent non-finite predictions: {out}"


# -------------------------------------------------------------------------- shapes


def test_wrong_number_of_features_at_predict_names_both_counts(fitted):
    est, X = fitted
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3 features"):
        est.predict(X[:, :2])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_one_dimensional_X_at_fit_asks_for_a_2d_array(cls):
    X, y = _data()
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        cls(**FAST).fit(X[:, 0], _target_for(cls, y))


def test_one_dimensional_X_at_predict_asks_for_a_2d_array(fitted):
    est, X = fitted
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        est.predict(X[0])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_three_dimensional_X_at_fit_is_refused_naming_the_dimension(cls):
    X, y = _data()
    with pytest.raises(ValueError, match="dim 3"):
        cls(**FAST).fit(X.reshape(40, 3, 1), _target_for(cls, y))


def test_three_dimensional_X_at_predict_is_refused_naming_the_dimension(fitted):
    est, X = fitted
    with pytest.raises(ValueError, match="dim 3"):
        est.predict(X.reshape(40, 3, 1))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_empty_X_at_fit_is_refused_naming_the_sample_count(cls):
    X, y = _data()
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        cls(**FAST).fit(X[:0], _target_for(cls, y)[:0])


def test_empty_X_at_predict_is_refused_naming_the_sample_count(fitted):
    est, X = fitted
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        est.predict(X[:0])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_zero_features_at_fit_is_refused_naming_the_feature_count(cls):
    X, y = _data()
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        cls(**FAST).fit(X[:, :0], _target_for(cls, y))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_inconsistent_lengths_of_X_and_y_name_both_lengths(cls):
    X, y = _data()
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[40, 39\]"):
        cls(**FAST).fit(X, _target_for(cls, y)[:-1])


# ------------------------------------------------------------ types and DataFrames


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_complex_X_at_fit_is_refused(cls):
    X, y = _data()
    with pytest.raises(ValueError, match="Complex data not supported"):
        cls(**FAST).fit(X.astype(complex), _target_for(cls, y))


def test_complex_y_is_refused():
    X, y = _data()
    with pytest.raises(ValueError, match="Complex data not supported"):
        TorchRegressor(**FAST).fit(X, y.astype(complex))


def test_complex_X_at_predict_is_refused(fitted):
    est, X = fitted
    with pytest.raises(ValueError, match="Complex data not supported"):
        est.predict(X.astype(complex))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_string_column_with_categorical_features_none_is_refused_naming_it(cls):
    X, y = _data()
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(city=["Paris"] * len(X))
    with pytest.raises(ValueError, match="Column 'city' .* is not numeric"):
        cls(**FAST, categorical_features=None).fit(df, _target_for(cls, y))


def test_text_in_a_column_that_was_numeric_at_fit_is_refused_naming_it(frame_fitted):
    reg, df = frame_fitted
    with pytest.raises(ValueError, match="Column 'c' was numeric in fit.*'x'"):
        reg.predict(df.assign(c=["x"] * len(df)))


def test_numbers_written_as_text_in_a_numeric_column_are_read_as_numbers(frame_fitted):
    reg, df = frame_fitted
    as_text = df.assign(c=[None if i == 0 else repr(float(v)) for i, v in enumerate(df["c"])])
    with_gap = df.assign(c=[np.nan] + list(df["c"][1:]))
    assert np.array_equal(reg.predict(as_text), reg.predict(with_gap))
    with pytest.raises(ValueError, match="'1,5'"):
        reg.predict(df.assign(c=["1.5"] * (len(df) - 1) + ["1,5"]))
    nan_text = as_text.assign(c=["nan"] + list(as_text["c"][1:]))
    assert np.array_equal(reg.predict(nan_text), reg.predict(with_gap))  # a gap, as NaN
    with pytest.raises(ValueError, match="Column 'c' holds infinite values"):
        reg.predict(as_text.assign(c=["1e400"] + list(as_text["c"][1:])))


def test_dataframe_at_fit_then_ndarray_at_predict_warns_and_predicts_the_same(frame_fitted):
    reg, df = frame_fitted
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        pred = reg.predict(df.to_numpy())
    assert np.array_equal(pred, reg.predict(df))


def test_reordered_dataframe_columns_at_predict_are_an_error(frame_fitted):
    reg, df = frame_fitted
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        reg.predict(df[["c", "a", "b"]])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
def test_classifier_before_fit_raises_not_fitted_error(method):
    X, y = _data()
    args = (X, y > 0) if method == "score" else (X,)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(TorchClassifier(**FAST), method)(*args)


def test_regressor_predict_before_fit_raises_not_fitted_error():
    X, _ = _data()
    with pytest.raises(NotFittedError, match="TorchRegressor instance is not fitted yet"):
        TorchRegressor(**FAST).predict(X)


def test_continuous_y_for_the_classifier_names_the_label_type():
    X, y = _data()
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        TorchClassifier(**FAST).fit(X, y)


# ----------------------------------------------------------------- sample weights


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("make_weight, message", [
    (lambda n: np.r_[np.ones(n - 1), -1.0], "Negative values .*sample_weight"),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], "sample_weight contains NaN"),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], "sample_weight contains inf"),
    (lambda n: np.zeros(n), "non-zero|sums to zero"),
    (lambda n: np.ones(n + 1), r"sample_weight.shape == \(41,\), expected \(40,\)"),
], ids=["negative", "nan", "inf", "all-zero", "wrong-length"])
def test_bad_sample_weight_is_a_value_error_naming_the_problem(cls, make_weight, message):
    X, y = _data()
    with pytest.raises(ValueError, match=message):
        cls(**FAST).fit(X, _target_for(cls, y), sample_weight=make_weight(len(X)))


def test_bad_sample_weight_leaves_a_fitted_estimator_unchanged(fitted):
    est, X = fitted
    _, y = _data()
    before = est.predict(X)
    with pytest.raises(ValueError):
        est.fit(X, _target_for(type(est), y), sample_weight=-np.ones(len(X)))
    assert np.array_equal(est.predict(X), before)


# ------------------------------------------------------------- invalid parameters


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("param, pattern", [
    ({"n_epochs": -1}, "'n_epochs' parameter .* Got -1"),
    ({"batch_size": 0}, "'batch_size' parameter .* Got 0"),
    ({"train_prop": 1.5}, "'train_prop' parameter .* Got 1.5"),
    ({"device": "gpu7"}, "device .*'gpu7'"),
    ({"device": "banana"}, "device .*'banana'"),
], ids=lambda p: p if isinstance(p, str) else "-".join(f"{k}={v}" for k, v in p.items()))
def test_invalid_parameter_is_a_value_error_naming_it(cls, param, pattern):
    X, y = _data()
    est = cls(**{**FAST, **param})
    with pytest.raises(ValueError, match=pattern):
        est.fit(X, _target_for(cls, y))
    assert not hasattr(est, "net_")


# ==================================================================== trainer core


def _core_data(n=40):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=g)
    return X, X.sum(dim=1, keepdim=True)


class _CountingNet(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.linear(x)


def _core_train(dataset, d_out=1, **kwargs):
    trainer = PytorchTrainer(_CountingNet, [3, d_out], device="cpu")
    kwargs = {"name": None, "n_epochs": 2, "batch_size": 8, "verbose": False, **kwargs}
    return trainer, trainer.train(dataset, **kwargs)


class _MSE:
    """A criterion that needs nothing from the dataset (so items reach the batcher)."""

    def __call__(self, output, target, weights=None, unscaled=False):
        return ((output - target) ** 2).mean()

    def postproc(self, pred):
        return pred


def test_core_output_shape_differing_from_target_fails_at_the_first_batch():
    X, y = _core_data()
    trainer = PytorchTrainer(_CountingNet, [3, 2], device="cpu")
    with pytest.raises(ValueError) as info:
        trainer.train(TensorDataset(X, y), name=None, n_epochs=2, batch_size=8,
                      verbose=False, criterion=_MSE())
    assert "(8, 2)" in str(info.value) and "(8, 1)" in str(info.value)
    assert trainer.net.calls == 1


def test_core_output_shape_mismatch_with_the_default_criterion_names_both_shapes():
    X, y = _core_data()
    trainer = PytorchTrainer(_CountingNet, [3, 2], device="cpu")
    with pytest.raises(ValueError, match=r"\(8, 2\).*\(8, 1\)"):
        trainer.train(TensorDataset(X, y), name=None, n_epochs=2, batch_size=8, verbose=False)
    assert trainer.net.calls == 1


class _Items(Dataset):
    def __init__(self, make, n=20):
        self.make, self.n = make, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.make(torch.full((3,), float(i)), torch.ones(1))


BAD_ITEMS = {
    "1-tuple": lambda x, y: (x,),
    "4-tuple": lambda x, y: (x, y, y, y),
    "bare-tensor": lambda x, y: x,
    "dict": lambda x, y: {"input": x, "target": y},
}


@pytest.mark.parametrize("criterion", ["auto", "custom"])
@pytest.mark.parametrize("make", BAD_ITEMS.values(), ids=BAD_ITEMS.keys())
def test_core_item_not_a_2_or_3_tuple_says_what_was_expected(make, criterion):
    crit = "auto" if criterion == "auto" else _MSE()
    with pytest.raises(ValueError, match=re.escape("(input, target) or (input, weight, target)")):
        _core_train(_Items(make), criterion=crit)


@pytest.mark.parametrize("part", ["input", "target", "weight"])
def test_core_nan_in_a_tensor_dataset_is_a_value_error_at_train(part):
    X, y = _core_data()
    w = torch.ones(len(X))
    {"input": X, "target": y, "weight": w}[part][4].fill_(float("nan"))
    with pytest.raises(ValueError, match=f"{part} contains NaN or infinity"):
        _core_train(TensorDataset(X, w, y))


def test_core_infinity_in_a_tensor_dataset_is_a_value_error_at_train():
    X, y = _core_data()
    X[7, 2] = float("inf")
    with pytest.raises(ValueError, match="input contains NaN or infinity"):
        _core_train(TensorDataset(X, y))


@pytest.fixture(scope="module")
def core_trained():
    X, y = _core_data()
    trainer = PytorchTrainer(nn.Linear, [3, 1], device="cpu")
    return trainer.train(TensorDataset(X, y), name=None, n_epochs=2, verbose=False)


def test_core_nan_in_a_tensor_dataset_is_a_value_error_at_predict_dataset(core_trained):
    X, y = _core_data()
    X[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinity"):
        core_trained.predict_dataset(TensorDataset(X, y), verbose=False)


def test_core_nan_in_raw_inputs_is_a_value_error_at_predict(core_trained):
    X, _ = _core_data()
    X[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinity"):
        core_trained.predict(X.numpy())


@pytest.mark.parametrize("kwargs, pattern", [
    ({"n_epochs": -1}, "n_epochs .*-1"), ({"batch_size": 0}, "batch_size .*0"),
    ({"train_prop": 1.5}, "train_prop .*1.5"),
], ids=["n_epochs=-1", "batch_size=0", "train_prop=1.5"])
def test_core_invalid_training_argument_is_a_value_error_naming_it(kwargs, pattern):
    X, y = _core_data()
    with pytest.raises(ValueError, match=pattern):
        _core_train(TensorDataset(X, y), **kwargs)


@pytest.mark.parametrize("device", ["gpu7", "banana"])
def test_core_unknown_device_is_a_value_error_naming_it(device):
    with pytest.raises(ValueError, match=f"'{device}'"):
        PytorchTrainer(nn.Linear, [3, 1], device=device)
