"""Real tables as they come: text and categorical columns, gaps, unseen categories (issue 14)."""

import datetime
import pickle
import re
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from sktorch_auto import TorchClassifier, TorchRegressor, UnseenGapsWarning
from sktorch_auto.core.checkpoint import is_plain
from sktorch_auto.core.split import train_valid_split
from sktorch_auto.estimators.nets import (
    CategoricalInput,
    InputScaled,
    TabularInput,
    compress_tails,
)
from sktorch_auto.estimators.scaling import robust_statistics
from sktorch_auto.estimators.table import MIN_FREQUENCY, TableEncoder

FAST = dict(n_epochs=15, hidden_layer_sizes=(32,), device="cpu", random_state=0)
EFFECT = {"red": -2.0, "green": 0.0, "blue": 2.0, "black": 4.0}


def _table(n=240, seed=0):
    """Every kind of column, each with gaps, and a target driven by two of them."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(list(EFFECT), size=n)
    x = rng.normal(size=n)
    df = pd.DataFrame({
        "x": x,
        "colour": pd.Series(colour, dtype=object),
        "size": pd.Categorical(rng.choice(["S", "M", "L"], size=n)),
        "label": pd.array(rng.choice(["a", "b"], size=n), dtype="string"),
        "flag": pd.Series(rng.random(n) > 0.5, dtype=object),  # bools with gaps
        "maybe": pd.array(rng.choice([True, False], size=n), dtype="boolean"),
        "count": pd.array(rng.integers(0, 9, size=n), dtype="Int64"),
        "income": np.exp(rng.normal(10, 1.5, size=n)),
    })
    y = df["colour"].map(EFFECT).to_numpy() + x
    for j, column in enumerate(df.columns):
        df.loc[df.index[j::17], column] = None  # gaps everywhere (the target keeps its row)
    return df, y


@pytest.fixture(scope="module")
def fitted_table():
    df, y = _table()
    return TorchRegressor(**FAST).fit(df, y), df, y


# ------------------------------------------------------------------ kinds of columns
def test_every_kind_of_column_with_gaps_fits_and_predicts(fitted_table):
    reg, df, y = fitted_table
    assert reg.is_categorical_.tolist() == [False, True, True, True, True, True, False, False]
    assert reg.categories_[0] == ["black", "blue", "green", "red"]
    assert reg.categories_[1] == ["L", "M", "S"]
    assert reg.categories_[3] == [False, True]
    pred = reg.predict(df)
    assert pred.shape == (len(df),) and np.isfinite(pred).all()
    assert reg.score(df, y) > 0.8


def test_numeric_gaps_get_the_training_median_and_an_indicator(fitted_table):
    reg, df, _ = fitted_table
    encoder = reg.encoder_
    # x, count and income had gaps: three numeric columns plus three indicators.
    assert encoder.indicator_columns_ == [0, 1, 2]
    assert encoder.n_numeric == 6
    numeric, codes = encoder.transform(df.head(20))
    gaps = df.head(20)["x"].isna().to_numpy()
    assert gaps.any()
    assert np.all(numeric[gaps, 0] == encoder.medians_[0])
    assert np.array_equal(numeric[:, 3], gaps.astype(float))
    assert codes.dtype == np.int64 and codes.shape == (20, 5)


def test_medians_are_those_of_the_training_part(fitted_table):
    reg, df, _ = fitted_table
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    train, _ = train_valid_split(len(df), 0.9, True, seed=seed)
    x = df["x"].to_numpy()
    assert reg.encoder_.medians_[0] == pytest.approx(np.nanmedian(x[train]))
    assert reg.encoder_.medians_[0] != pytest.approx(np.nanmedian(x))


def test_missing_is_a_category_of_its_own_and_unseen_ones_are_unknown(fitted_table):
    reg, df, _ = fitted_table
    rows = df.head(4).copy()
    rows["colour"] = [None, "purple", "red", np.nan]
    _, codes = reg.encoder_.transform(rows)
    red = 2 + reg.categories_[0].index("red")
    assert codes[:, 0].tolist() == [0, 1, red, 0]
    assert np.isfinite(reg.predict(rows)).all()


def test_rare_categories_share_the_unknown_code():
    rng = np.random.default_rng(1)
    values = np.array(["common"] * 60 + ["rare"] * (MIN_FREQUENCY - 1) + ["other"] * 20)
    df = pd.DataFrame({"c": rng.permutation(values)})
    encoder = TableEncoder().fit(df)
    assert encoder.categories_ == [["common", "other"]]
    _, codes = encoder.transform(pd.DataFrame({"c": ["rare", "never seen", "common"]}))
    assert codes[:, 0].tolist() == [1, 1, 2]


def test_a_gap_at_predict_in_a_column_without_gaps_at_fit_is_imputed():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"a": rng.normal(size=100), "b": rng.choice(["u", "v"], size=100)})
    reg = TorchRegressor(**FAST).fit(df, df["a"] * 2)
    assert reg.encoder_.indicator_columns_ == []
    gap = df.head(3).copy()
    gap.loc[0, "a"] = np.nan
    numeric, _ = reg.encoder_.transform(gap)
    assert numeric[0, 0] == reg.encoder_.medians_[0]
    with pytest.warns(UnseenGapsWarning, match=r"had none .*: a \(1 of 3 rows\)"):
        assert np.isfinite(reg.predict(gap)).all()


def test_unseen_gaps_are_named_and_known_ones_are_not():
    rng = np.random.default_rng(5)
    n = 120
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                       "c": rng.choice(["u", "v"], size=n),
                       "when": pd.date_range("2021-01-01", periods=n, freq="D")})
    df.loc[::7, "b"] = np.nan  # gaps in fit: an indicator, no warning later
    reg = TorchRegressor(**FAST).fit(df, df["a"])
    new = df.head(6).copy()
    new.loc[[0, 1], "a"] = np.nan
    new.loc[2, "b"] = np.nan
    new.loc[3, "c"] = None  # a missing category has a code of its own: no warning
    new.loc[4, "when"] = pd.NaT
    with pytest.warns(UnseenGapsWarning) as caught:
        reg.predict(new)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "a (2 of 6 rows), when (1 of 6 rows)" in message and "b (" not in message
    assert caught[0].message.gaps == {0: 2, 3: 1} and caught[0].message.n_rows == 6
    assert caught[0].filename == __file__  # the user's line, not ours
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.predict(df.head(6).assign(b=np.nan, c=None))  # only b and c: silent


def test_gaps_in_a_column_constant_in_training_change_nothing_and_do_not_warn(tmp_path):
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"a": rng.normal(size=80), "k": 1.0,
                       "day": pd.Timestamp("2024-05-01")})
    y = (df["a"] > 0).to_numpy()
    clf = TorchClassifier(**FAST).fit(df, y)
    gaps = df.head(4).assign(k=np.nan, day=pd.NaT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(clf.predict_proba(gaps), clf.predict_proba(df.head(4)))
    with pytest.warns(UnseenGapsWarning, match=r": a \(4 of 4 rows\)") as caught:
        clf.predict(gaps.assign(a=np.nan))  # through predict_proba: still the user's line
    assert caught[0].filename == __file__
    X = np.c_[rng.normal(size=80), np.full(80, 3.0)]
    reg = TorchRegressor(**FAST).fit(X, X[:, 0])
    reg.save(tmp_path / "m.skt")
    loaded = TorchRegressor.load(tmp_path / "m.skt")  # the safe format keeps the constants
    assert loaded.encoder_.constant_inputs_ == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in (reg, loaded):
            model.predict(np.c_[X[:3, 0], [np.nan] * 3])


def test_unseen_gaps_in_an_array_are_named_by_position():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(100, 3))
    X[::4, 2] = np.nan
    reg = TorchRegressor(**FAST).fit(X, X[:, 0])
    new = X[:5].copy()
    new[1, 1] = np.nan
    new[2, 2] = np.nan
    with pytest.warns(UnseenGapsWarning, match=r": x1 \(1 of 5 rows\)\. "):
        reg.predict(new)


def test_gaps_of_the_validation_part_do_not_warn_in_fit():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 2))
    reg = TorchRegressor(**FAST, train_prop=0.8)
    seed = int(np.random.RandomState(reg.random_state).randint(np.iinfo(np.int32).max))
    _, valid = train_valid_split(200, 0.8, True, seed=seed)  # the estimator's own split
    X[valid[:3], 1] = np.nan  # gaps only where the encoder does not learn from
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnseenGapsWarning)
        reg.fit(X, X[:, 0])
    assert reg.encoder_.indicator_columns_ == []


def test_nan_in_a_numeric_array_is_imputed_with_an_indicator():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3))
    y = X[:, 0] + np.isnan(X[:, 1])
    X[::5, 1] = np.nan
    reg = TorchRegressor(**FAST).fit(X, y)
    assert reg.encoder_.indicator_columns_ == [1]
    assert reg.net_.mean.shape == (4,)  # three columns and one indicator
    assert np.isfinite(reg.predict(X)).all()
    assert reg.score(X, y) > 0.8


def test_constant_and_entirely_missing_columns_are_harmless():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": rng.normal(size=80), "const": 3.0, "empty": np.nan,
                       "nothing": pd.Series([None] * 80, dtype=object), "one": "same"})
    reg = TorchRegressor(**FAST).fit(df, df["x"])
    assert np.isfinite(reg.predict(df.head(5).assign(nothing=["a"] * 5, one="new"))).all()
    later = df.head(5).assign(empty=[1e9, -1e9, 5.0, np.nan, 0.0])
    # The numeric column without any value in fit stays constant: new values change nothing.
    assert np.array_equal(reg.predict(later), reg.predict(df.head(5)))


def test_nullable_integers_and_booleans_are_read_with_their_gaps():
    df = pd.DataFrame({"i": pd.array([1, None, 3, 4] * 10, dtype="Int64"),
                       "b": pd.array([True, None, False, True] * 10, dtype="boolean")})
    encoder = TableEncoder().fit(df)
    numeric, codes = encoder.transform(df.head(4))
    assert numeric[:, 0].tolist() == [1.0, 3.0, 3.0, 4.0]  # the median fills the gap
    assert codes[:, 0].tolist() == [3, 0, 2, 3]  # True, missing, False, True


def test_a_target_that_depends_on_a_category_only_is_learned_well():
    rng = np.random.default_rng(5)
    cities = [f"city{k}" for k in range(12)]
    effect = dict(zip(cities, rng.normal(scale=3, size=12)))
    city = rng.choice(cities, size=600)
    df = pd.DataFrame({"city": city, "noise": rng.normal(size=600)})
    y = np.array([effect[c] for c in city]) + rng.normal(scale=0.1, size=600)
    train, test = slice(0, 450), slice(450, None)
    reg = TorchRegressor(n_epochs=60, device="cpu", random_state=0)
    reg.fit(df.iloc[train], y[train])
    assert reg.score(df.iloc[test], y[test]) > 0.95
    clf = TorchClassifier(n_epochs=60, device="cpu", random_state=0)
    labels = np.where(y > 0, "high", "low")
    clf.fit(df.iloc[train], labels[train])
    assert clf.score(df.iloc[test], labels[test]) > 0.95


def _categorical_input(net):
    """The categories' part of the built-in network (behind periodic embeddings or not)."""
    inner = net.categorical if isinstance(net, TabularInput) else net
    assert isinstance(inner, CategoricalInput)
    return inner


def test_a_column_of_a_thousand_categories_gets_embeddings():
    rng = np.random.default_rng(6)
    codes = rng.integers(0, 1000, size=8000)
    effect = rng.normal(size=1000)
    df = pd.DataFrame({"id": [f"id{c:04d}" for c in codes], "x": rng.normal(size=8000)})
    y = effect[codes] + df["x"].to_numpy()
    reg = TorchRegressor(n_epochs=8, device="cpu", random_state=0).fit(df, y)
    assert 700 <= len(reg.categories_[0]) <= 1000  # about 7 rows each: the rarest pooled
    inner = _categorical_input(reg.net_.net)
    assert inner.embedding is not None
    assert inner.embedding.num_embeddings == len(reg.categories_[0]) + 2
    assert reg.score(df, y) > 0.5


def test_small_categorical_columns_are_one_hot_encoded(fitted_table):
    reg, _, _ = fitted_table
    inner = _categorical_input(reg.net_.net)
    assert len(inner.one_hot_columns) == 5 and inner.embedding is None


def test_integer_coded_categories_in_an_array_can_be_declared():
    rng = np.random.default_rng(7)
    group = rng.integers(0, 6, size=300)
    X = np.column_stack([rng.normal(size=300), group])
    y = np.array([3.0, -1.0, 0.5, 2.0, -3.0, 1.0])[group]
    for spec in ([1], [False, True], np.array([1])):
        reg = TorchRegressor(**FAST, categorical_features=spec).fit(X, y)
        assert reg.is_categorical_.tolist() == [False, True]
        assert reg.categories_ == [[0, 1, 2, 3, 4, 5]]
    assert reg.score(X, y) > 0.9


def test_declared_by_name_in_a_dataframe_and_others_must_be_numeric():
    df = pd.DataFrame({"code": [1, 2, 3, 1] * 10, "x": np.arange(40.0), "t": ["a", "b"] * 20})
    reg = TorchRegressor(**FAST, categorical_features=["code", "t"]).fit(df, df["x"])
    assert reg.is_categorical_.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="Column 't' .* is not numeric"):
        TorchRegressor(**FAST, categorical_features=["code"]).fit(df, df["x"])


def test_categorical_features_none_keeps_every_numeric_column_numeric():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0] * 10, "b": [0, 1, 0] * 10})
    reg = TorchRegressor(**FAST, categorical_features=None).fit(df, df["a"])
    assert not reg.is_categorical_.any()
    assert isinstance(reg.net_.net, TabularInput) and reg.net_.net.categorical is None
    plain = TorchRegressor(**FAST, categorical_features=None, numeric_embedding=None)
    assert isinstance(plain.fit(df, df["a"]).net_.net, torch.nn.Sequential)  # fast path


@pytest.mark.parametrize("spec, message", [
    (["nope"], "names 'nope', which is not a column"),
    ([7], "index 7 is out of range for 2 features"),
    ([True], "boolean mask must have one entry per feature"),
    ([1.5], "got an entry 1.5"),
])
def test_bad_categorical_features_are_clear_errors(spec, message):
    df = pd.DataFrame({"a": [1.0, 2.0] * 10, "b": ["u", "v"] * 10})
    with pytest.raises(ValueError, match=message):
        TorchRegressor(**FAST, categorical_features=spec).fit(df, df["a"])


def test_names_in_categorical_features_need_a_dataframe():
    X = np.arange(20.0).reshape(10, 2)
    with pytest.raises(ValueError, match="no column names"):
        TorchRegressor(**FAST, categorical_features=["a"]).fit(X, X[:, 0])


def test_categorical_features_is_validated_like_the_other_parameters():
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="categorical_features"):
        TorchRegressor(categorical_features="everything").fit([[1.0]] * 10, [1.0] * 10)


def test_object_arrays_keep_numbers_numeric_and_code_text():
    X = np.array([[1.5, "a"], [2.5, "b"], [None, "a"], [0.5, None]] * 10, dtype=object)
    encoder = TableEncoder().fit(X)
    assert encoder.kinds_ == ["numeric", "string"]
    numeric, codes = encoder.transform(X[:4])
    assert numeric[:, 0].tolist() == [1.5, 2.5, 1.5, 0.5]
    assert codes[:, 0].tolist() == [2, 3, 2, 0]
    reg = TorchRegressor(**FAST).fit(X, np.arange(40.0))
    assert np.isfinite(reg.predict(X)).all()


def test_lists_of_rows_keep_their_numbers_numeric():
    rows = [[1.5 * k, "a" if k % 3 else "b", None if k % 7 == 0 else k] for k in range(60)]
    reg = TorchRegressor(**FAST).fit(rows, np.arange(60.0))
    assert reg.is_categorical_.tolist() == [False, True, False]
    assert reg.encoder_.indicator_columns_ == [1]  # the gaps of the third column


# -------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("column, what", [
    (pd.Series([datetime.timedelta(days=k) for k in range(30)], dtype=object), "timedelta"),
    (pd.Series(np.arange(30) * (1 + 1j)), "complex"),
    (pd.Series([[1, 2]] * 30), "nested"),
    (pd.Series([{"a": 1}] * 30), "nested"),
])
def test_unusable_columns_are_refused_naming_the_column(column, what):
    df = pd.DataFrame({"x": np.arange(30.0), "bad": column})
    reg = TorchRegressor(**FAST)
    with pytest.raises(ValueError, match=f"Column 'bad' holds {what} values.*drop it"):
        reg.fit(df, df["x"])
    assert not hasattr(reg, "net_") and not hasattr(reg, "encoder_")  # nothing half-fitted


def test_a_failed_refit_leaves_the_fitted_model_as_it_was(fitted_table):
    reg, df, y = fitted_table
    model = clone(reg).fit(df, y)
    before = model.predict(df)
    with pytest.raises(ValueError, match="complex"):
        model.fit(df.assign(when=1 + 1j), y)
    assert np.array_equal(model.predict(df), before)
    assert model.n_features_in_ == df.shape[1]


def test_missing_extra_and_reordered_columns_are_scikit_learn_errors(fitted_table):
    reg, df, _ = fitted_table
    with pytest.raises(ValueError, match="Feature names"):
        reg.predict(df.drop(columns="colour"))
    with pytest.raises(ValueError, match="Feature names"):
        reg.predict(df.assign(extra=1.0))
    with pytest.raises(ValueError, match="feature names should match"):
        reg.predict(df[df.columns[::-1]])


# ------------------------------------------------------------------ persistence
def test_save_load_keeps_the_encoding_as_plain_data(fitted_table, tmp_path):
    reg, df, _ = fitted_table
    assert is_plain(reg.encoder_.state())
    reg.save(tmp_path / "table.skt")
    loaded = TorchRegressor.load(tmp_path / "table.skt")
    assert loaded.categories_ == reg.categories_
    unseen = df.head(6).assign(colour=["purple"] * 6, x=np.nan)
    assert np.array_equal(loaded.predict(df), reg.predict(df))
    assert np.array_equal(loaded.predict(unseen), reg.predict(unseen))


def test_pickle_and_joblib_round_trips(fitted_table, tmp_path):
    reg, df, _ = fitted_table
    assert np.array_equal(pickle.loads(pickle.dumps(reg)).predict(df), reg.predict(df))
    joblib.dump(reg, tmp_path / "m.joblib")
    assert np.array_equal(joblib.load(tmp_path / "m.joblib").predict(df), reg.predict(df))


def test_classifier_on_a_table_saves_and_loads(tmp_path):
    df, y = _table(seed=1)
    labels = np.where(y > 1, "high", "low")
    clf = TorchClassifier(**FAST).fit(df, labels)
    clf.save(tmp_path / "clf.skt")
    loaded = TorchClassifier.load(tmp_path / "clf.skt")
    assert np.array_equal(loaded.predict_proba(df), clf.predict_proba(df))
    assert clf.score(df, labels) > 0.8


def test_warm_start_keeps_the_fitted_categories():
    df, y = _table()
    reg = TorchRegressor(**FAST, warm_start=True).fit(df, y)
    categories = reg.categories_
    more = df.assign(colour=df["colour"].replace("red", "crimson"))
    reg.fit(more, y)
    assert reg.categories_ == categories  # crimson is unknown, not a new code


def test_clone_and_pipelines_and_cross_validation():
    df, y = _table()
    reg = TorchRegressor(**FAST, categorical_features=["colour"], standardize="standard")
    copy = clone(reg)
    assert copy.get_params()["categorical_features"] == ["colour"]
    assert not hasattr(copy, "encoder_")
    scores = cross_val_score(make_pipeline(TorchRegressor(**FAST)), df, y, cv=3)
    assert np.all(np.isfinite(scores))


# ----------------------------------------------------------- user networks
class CodesNet(torch.nn.Module):
    def __init__(self, n_features_in, n_outputs, cardinalities):
        super().__init__()
        self.embeddings = torch.nn.ModuleList(torch.nn.Embedding(c, 3) for c in cardinalities)
        self.out = torch.nn.Linear(n_features_in + 3 * len(cardinalities), n_outputs)
        self.seen = []

    def forward(self, x, codes):
        self.seen.append(codes.dtype)
        parts = [x] + [e(codes[:, j]) for j, e in enumerate(self.embeddings)]
        return self.out(torch.cat(parts, dim=1))


def make_codes_net(n_features_in, n_outputs, cardinalities):
    return CodesNet(n_features_in, n_outputs, cardinalities)


def make_plain_net(n_features_in, n_outputs):
    return torch.nn.Sequential(torch.nn.Linear(n_features_in, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, n_outputs))


def test_a_builder_with_cardinalities_gets_the_numeric_matrix_and_the_codes():
    df, y = _table()
    reg = TorchRegressor(make_codes_net, **FAST).fit(df, y)
    inner = reg.net_.net
    assert isinstance(inner, CodesNet)
    assert [e.num_embeddings for e in inner.embeddings] == reg.encoder_.cardinalities
    assert set(inner.seen) == {torch.int64}  # codes arrive as integers, never as floats
    assert np.isfinite(reg.predict(df)).all()


def test_a_builder_without_cardinalities_gets_one_hot_columns():
    df, y = _table()
    reg = TorchRegressor(make_plain_net, **FAST).fit(df, y)
    wrapper = reg.net_.net
    assert isinstance(wrapper, CategoricalInput) and wrapper.embedding is None
    width = reg.encoder_.n_numeric + sum(reg.encoder_.cardinalities)
    assert wrapper.net[0].in_features == width


def test_a_builder_of_the_wrong_width_is_told_what_its_network_receives():
    df, y = _table()
    reg = TorchRegressor(lambda: torch.nn.Linear(df.shape[1], 1), **FAST)
    with pytest.raises(ValueError, match="shapes cannot be multiplied") as info:
        reg.fit(df, y)
    assert "n_features_in" in str(info.value)
    encoder = TorchRegressor(make_plain_net, **FAST).fit(df, y).encoder_
    width = encoder.n_numeric + sum(encoder.cardinalities)
    assert f"receives {width} float inputs per row" in str(info.value)
    assert not hasattr(reg, "net_")  # nothing half-fitted

    def failing(n_features_in, n_outputs):
        class Broken(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.zeros(1))

            def forward(self, x):
                raise RuntimeError("my own bug")
        return Broken()

    with pytest.raises(RuntimeError, match="my own bug"):  # other errors pass unchanged
        TorchRegressor(failing, **FAST).fit(df, y)

    def deep(n_features_in, n_outputs):  # right input width, wrong second layer
        return torch.nn.Sequential(torch.nn.Linear(n_features_in, 8),
                                   torch.nn.Linear(16, n_outputs))

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied") as info:
        TorchRegressor(deep, **FAST).fit(df, y)
    assert "n_features_in" not in str(info.value)  # not blamed on the inputs


# --------------------------------------------------------------- heavy tails
def test_one_extreme_value_does_not_wreck_the_scaling_of_its_column():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(400, 2))
    y = X[:, 0] * 3 + X[:, 1]
    spoiled = X.copy()
    spoiled[0, 0] = 1e9  # one absurd income
    robust = TorchRegressor(**FAST).fit(spoiled, y)
    assert isinstance(robust.net_, InputScaled) and robust.net_.fences
    assert robust.net_.scale[0].item() == pytest.approx(1.0, rel=0.1)
    assert robust.net_.mean[0].item() == pytest.approx(0.0, abs=0.15)
    standard = TorchRegressor(**FAST, standardize="standard").fit(spoiled, y)
    assert standard.net_.scale[0].item() > 1e6  # what plain standardisation does
    test = rng.normal(size=(200, 2))
    assert robust.score(test, test[:, 0] * 3 + test[:, 1]) > 0.9


# ------------------------------------------------------------------------ polars
def test_polars_dataframes_with_text_and_gaps():
    pl = pytest.importorskip("polars")
    df, y = _table(n=160)
    frame = pl.DataFrame({
        "x": df["x"].to_numpy(),
        "colour": df["colour"].tolist(),
        "size": pl.Series(df["size"].astype(object).where(df["size"].notna(), None)
                          .tolist()).cast(pl.Categorical),
        "flag": [None if v is None or v != v else bool(v) for v in df["flag"]],
        "count": pl.Series(df["count"].astype(object).where(df["count"].notna(), None)
                           .tolist(), dtype=pl.Int64),
    })
    reg = TorchRegressor(**FAST).fit(frame, y)
    assert reg.is_categorical_.tolist() == [False, True, True, True, False]
    assert list(reg.feature_names_in_) == frame.columns
    pred = reg.predict(frame)
    assert np.isfinite(pred).all()
    with pytest.raises(ValueError, match="Column 'when' holds nested"):
        TorchRegressor(**FAST).fit(frame.with_columns(when=pl.lit([1, 2])), y)


def test_robust_statistics_are_plain_standardisation_without_outliers():
    rng = np.random.default_rng(9)
    X = np.column_stack([rng.normal(3, 2, size=2000), rng.uniform(0, 10, size=2000)])
    mean, scale, low, high = robust_statistics(X, np.arange(2000))
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(scale, X.std(axis=0), rtol=1e-3)
    assert np.all(low < X.min(axis=0)) and np.all(high > X.max(axis=0))  # nothing clipped


def test_robust_statistics_ignore_an_outlier_weight_like_rows_and_see_sparse_zeros():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(300, 2))
    spoiled = X.copy()
    spoiled[5, 0] = 1e12
    clean, dirty = robust_statistics(X, np.arange(300)), robust_statistics(spoiled,
                                                                            np.arange(300))
    np.testing.assert_allclose(dirty[0], clean[0], atol=0.02)
    np.testing.assert_allclose(dirty[1], clean[1], rtol=0.05)  # it counts as a fence value
    weight = rng.integers(0, 4, size=300).astype(float)
    repeated = robust_statistics(X.repeat(weight.astype(int), axis=0),
                                 np.arange(int(weight.sum())))
    for a, b in zip(robust_statistics(X, np.arange(300), weight), repeated):
        np.testing.assert_allclose(a, b)
    import scipy.sparse as sp

    S = sp.random(200, 4, density=0.3, random_state=1, format="csr") * 5
    for a, b in zip(robust_statistics(S, np.arange(150)),
                    robust_statistics(S.toarray(), np.arange(150))):
        np.testing.assert_allclose(a, b)


def _one_sided_columns(rng, n):
    """A rare 0/1 indicator, a count that is mostly 0, a 0/1 column that is mostly 1, a
    balanced 0/1 column and a column whose mode lies inside its range."""
    rare = np.zeros(n)
    rare[rng.choice(n, 5, replace=False)] = 1.0
    count = np.where(rng.random(n) < 0.85, 0.0, 1.0 + rng.poisson(3.0, n))
    mostly_one = (rng.random(n) < 0.9).astype(float)
    balanced = (rng.random(n) < 0.5).astype(float)
    inner = rng.choice([1.0, 2.0, 3.0, 4.0], size=n, p=[0.2, 0.6, 0.15, 0.05])
    return np.column_stack([rare, count, mostly_one, balanced, inner])


def test_robust_statistics_keep_rare_indicators_and_mostly_zero_counts_near_one():
    rng = np.random.default_rng(11)
    X = _one_sided_columns(rng, 2000)
    mean, scale, low, high = robust_statistics(X, np.arange(2000))
    # Centred on the value most rows hold, scaled by the typical distance of the others
    # from it: standardising would put the rare indicator's ones at ~20.
    np.testing.assert_allclose(mean[:3], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(scale[:3], [1.0, np.median(X[X[:, 1] > 0, 1]), 1.0])
    assert (X[:, 0].max() - mean[0]) / scale[0] == 1.0
    # A balanced 0/1 column and a mode inside the range: the clipped moments as before.
    np.testing.assert_allclose(mean[3:], X[:, 3:].mean(axis=0))
    np.testing.assert_allclose(scale[3:], X[:, 3:].std(axis=0))
    # Weights count like repeated rows; sparse and dense data give the same statistics.
    weight = rng.integers(0, 4, size=2000).astype(float)
    repeated = robust_statistics(X.repeat(weight.astype(int), axis=0),
                                 np.arange(int(weight.sum())))
    for a, b in zip(robust_statistics(X, np.arange(2000), weight), repeated):
        np.testing.assert_allclose(a, b)
    import scipy.sparse as sp

    for a, b in zip(robust_statistics(sp.csr_matrix(X[:, :3]), np.arange(1500)),
                    robust_statistics(X[:, :3], np.arange(1500))):
        np.testing.assert_allclose(a, b)


def test_many_rare_indicator_columns_do_not_drown_the_signal():
    # 400 indicator columns, each set in 0.5% of the rows and unrelated to the target:
    # standardised, a row's few ones would be inputs of ~14 and the network learns them
    # by heart (ROC AUC 0.65-0.77 before); kept at 0/1 they leave the signal visible.
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    signal = rng.normal(size=(800, 2))
    noise = (rng.random((800, 400)) < 0.005).astype(float)
    X = np.hstack([signal, noise])
    y = (signal.sum(axis=1) + 0.5 * rng.normal(size=800) > 0).astype(int)
    model = TorchClassifier(device="cpu", random_state=0).fit(X[:600], y[:600])
    assert roc_auc_score(y[600:], model.predict_proba(X[600:])[:, 1]) > 0.9
    scale = model.net_.scale[2:]
    # The indicators enter as 0/1; those never set in the training part are ignored.
    assert set(scale.tolist()) <= {1.0, float("inf")} and (scale == 1.0).sum() > 300


def test_tails_beyond_the_fences_are_compressed_not_cut():
    z = np.array([-1e9, -5.0, -2.0, 0.0, 2.0, 3.0, 4.0, 1e9])
    out = compress_tails(z, -2.0, 3.0)
    assert np.all(np.diff(out) > 0)  # still in order
    np.testing.assert_array_equal(out[2:6], z[2:6])  # within the fences: unchanged
    assert out[-1] == pytest.approx(3.0 + np.log1p(1e9 - 3.0)) and out[-1] < 25
    t = compress_tails(torch.as_tensor(z), torch.tensor(-2.0, dtype=torch.float64),
                       torch.tensor(3.0, dtype=torch.float64))
    np.testing.assert_allclose(t.numpy(), out)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_categorical_networks_get_hand_written_gradients_equal_to_autograd(activation):
    from sktorch_auto.core.criterion import MixedCriterion
    from sktorch_auto.core.manual import manual_step
    from sktorch_auto.estimators.nets import build_categorical_mlp

    torch.manual_seed(0)
    cards = [4, 30, 6, 50]  # two one-hot columns, two embedded ones
    net = build_categorical_mlp(3, 2, cards, (16, 8), activation).double()
    x = torch.randn(40, 3, dtype=torch.float64)
    codes = torch.stack([torch.randint(0, c, (40,)) for c in cards], dim=1)
    target = torch.randn(40, 2, dtype=torch.float64)
    criterion = MixedCriterion(None, [1, 1], ([0.5, -1.0], [2.0, 1.0]))
    step = manual_step(net, criterion)
    assert step is not None
    loss = step([x, codes], target, None)
    manual = {name: p.grad.clone() for name, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    reference = criterion(net(x, codes), target)
    reference.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
    for name, p in net.named_parameters():
        torch.testing.assert_close(manual[name], p.grad, rtol=1e-10, atol=1e-12)


def test_the_estimators_train_categorical_networks_with_hand_written_gradients(fitted_table):
    from sktorch_auto.core.manual import manual_step

    reg, _, _ = fitted_table
    assert manual_step(reg.net_.net, reg.criterion_) is not None


def test_sample_weights_count_like_repeated_rows_in_the_medians():
    rng = np.random.default_rng(11)
    df = pd.DataFrame({"x": rng.normal(size=50), "c": rng.choice(["u", "v"], size=50)})
    df.loc[::6, "x"] = np.nan
    weight = rng.integers(0, 4, size=50).astype(float)
    encoder = TableEncoder().fit(df, sample_weight=weight)
    repeated = TableEncoder().fit(df.loc[df.index.repeat(weight.astype(int))])
    assert encoder.medians_ == pytest.approx(repeated.medians_)
    reg = TorchRegressor(**FAST).fit(df, df["x"].fillna(0), sample_weight=weight)
    assert np.isfinite(reg.predict(df)).all()


def test_grid_search_over_categorical_features_on_a_dataframe():
    from sklearn.model_selection import GridSearchCV

    df, y = _table(n=120)
    search = GridSearchCV(TorchRegressor(**FAST),
                          {"categorical_features": ["auto", ["colour", "size", "label",
                                                             "flag", "maybe"]]}, cv=2)
    search.fit(df, y)
    assert np.isfinite(search.best_score_)


# ------------------------------------------------------ found in review (fixed)
def test_a_model_fitted_on_a_sparse_matrix_saves_and_loads(tmp_path):
    import scipy.sparse as sp

    X = sp.random(80, 4, density=0.4, format="csr", random_state=0)
    reg = TorchRegressor(**FAST).fit(X, np.arange(80.0))
    reg.save(tmp_path / "sparse.skt")
    assert np.array_equal(TorchRegressor.load(tmp_path / "sparse.skt").predict(X),
                          reg.predict(X))


def test_declaring_categorical_columns_of_a_sparse_matrix_is_a_clear_error():
    import scipy.sparse as sp

    X = sp.random(40, 3, density=0.5, format="csr", random_state=0)
    with pytest.raises(ValueError, match="cannot declare columns of a sparse matrix"):
        TorchRegressor(**FAST, categorical_features=[0]).fit(X, np.arange(40.0))


def test_a_text_column_read_as_numbers_at_predict_keeps_its_codes():
    df = pd.DataFrame({"code": ["7", "10001", "A"] * 20, "x": np.arange(60.0)})
    encoder = TableEncoder().fit(df)
    as_text = encoder.transform(pd.DataFrame({"code": ["7", "10001"], "x": [0.0, 1.0]}))[1]
    as_numbers = encoder.transform(pd.DataFrame({"code": [7, 10001], "x": [0.0, 1.0]}))[1]
    assert as_text[:, 0].tolist() == as_numbers[:, 0].tolist() != [1, 1]


def test_an_all_null_polars_column_at_predict_is_all_gaps():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"a": [1.0, 2.0, 3.0] * 10, "b": ["x", "y", None] * 10,
                          "c": [1, 2, 3] * 10})
    reg = TorchRegressor(**FAST).fit(frame, np.arange(30.0))
    gaps = pl.DataFrame({"a": [None, 1.0], "b": [None, "x"], "c": [None, None]})
    assert gaps.schema["c"] == pl.Null
    assert np.isfinite(reg.predict(gaps)).all()


def test_warm_start_with_a_dataframe_after_an_array_fit():
    df, y = _table()
    numbers = df[["x", "income"]].fillna(0.0)
    reg = TorchRegressor(**FAST, warm_start=True).fit(numbers.to_numpy(), y)
    with pytest.warns(UserWarning, match="fitted without feature names"):
        reg.fit(numbers, y)
        assert np.isfinite(reg.predict(numbers)).all()


def test_object_columns_of_numbers_such_as_decimals_are_numeric():
    from decimal import Decimal

    prices = np.round(np.linspace(-2, 2, 120), 2)
    df = pd.DataFrame({"price": [Decimal(f"{p:.2f}") for p in prices]})
    reg = TorchRegressor(**FAST).fit(df, 3 * prices)
    assert reg.is_categorical_.tolist() == [False]
    assert reg.score(df, 3 * prices) > 0.9


def test_models_pickled_before_tables_were_supported_still_predict():
    X = np.random.default_rng(12).normal(size=(60, 3))
    reg = TorchRegressor(**FAST, standardize=True).fit(X, X.sum(axis=1))
    state = reg.__getstate__()
    for key in ("encoder_", "categorical_features"):  # what an old pickle lacks
        state.pop(key)
    del state["net_"].__dict__["fences"]
    old = TorchRegressor.__new__(TorchRegressor)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert np.array_equal(old.predict(X), reg.predict(X))
    assert old.get_params()["categorical_features"] == "auto"
    with pytest.raises(ValueError, match="NaN"):  # no medians: gaps are refused as before
        old.predict(np.where(X > 1, np.nan, X))


def test_files_saved_before_tables_were_supported_load_and_warm_start(tmp_path):
    from sktorch_auto.core.checkpoint import load_checkpoint, save_checkpoint

    X = np.random.default_rng(13).normal(size=(60, 3))
    reg = TorchRegressor(**FAST, standardize=True).fit(X, X.sum(axis=1))
    reg.save(tmp_path / "m.skt")
    content = load_checkpoint(tmp_path / "m.skt")
    del content["fitted"]["encoder_"]
    del content["params"]["categorical_features"]
    save_checkpoint(tmp_path / "old.skt", content)
    old = TorchRegressor.load(tmp_path / "old.skt")
    assert np.array_equal(old.predict(X), reg.predict(X))
    old.set_params(warm_start=True).fit(X, X.sum(axis=1))
    assert old.categories_ == []


@pytest.mark.parametrize("change", [{"categorical_features": None},
                                    {"standardize": "standard"}, {"standardize": False}])
def test_warm_start_refuses_to_ignore_a_changed_encoding_or_scaling(change):
    df, y = _table(n=100)
    reg = TorchRegressor(**FAST, warm_start=True).fit(df.drop(columns="colour"), y)
    reg.set_params(**change)
    before = reg.predict(df.drop(columns="colour"))
    with pytest.raises(ValueError, match="fit with warm_start=False to apply them"):
        reg.fit(df.drop(columns="colour"), y)
    assert np.array_equal(reg.predict(df.drop(columns="colour")), before)  # untouched


def test_verbose_says_what_the_inputs_became_and_the_rate_chosen(capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    x[::7] = np.nan
    frame = pd.DataFrame({"x": x, "colour": rng.choice(["red", "blue"], size=200),
                          "when": pd.date_range("2020-01-01", periods=200)})
    TorchRegressor(**dict(FAST, n_epochs=2), verbose=True).fit(frame, rng.normal(size=200))
    out = capsys.readouterr().out
    assert ("inputs: 1 numeric, 1 categorical, 1 date (time, month, day, weekday), 1 "
            "missing-value indicator; periodic embeddings on 4 of 6 numeric inputs") in out
    assert re.search(r"learning rate [0-9.e-]+ \(range test\)", out)
    wide = rng.normal(size=(100, 70))
    TorchRegressor(**dict(FAST, n_epochs=2), verbose=True).fit(wide, rng.normal(size=100))
    out = capsys.readouterr().out
    assert ("inputs: 70 numeric; periodic embeddings on 0 of 70 numeric inputs "
            "(numeric_embedding='auto' embeds at most 64") in out
    TorchRegressor(**dict(FAST, n_epochs=2), learning_rate=0.01, verbose=True).fit(
        wide[:, :3], rng.normal(size=100))
    out = capsys.readouterr().out
    assert "inputs: 3 numeric; periodic embeddings on 3 of 3" in out
    assert "range test" not in out
