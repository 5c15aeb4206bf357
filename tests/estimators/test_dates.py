"""Date and time columns: read as their parts (trend, month, day, weekday, hour)."""

import datetime
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from sktorch_auto import TorchClassifier, TorchRegressor
from sktorch_auto.estimators import dates, load_estimator
from sktorch_auto.estimators.table import TableEncoder

FAST = dict(n_epochs=15, hidden_layer_sizes=(32,), device="cpu", random_state=0)


def _stamps(n, seed=0, start="2019-01-01", days=900):
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, days * 24 * 60, size=n)  # whole minutes
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(offsets, unit="min"))


# ------------------------------------------------------------------------ parts
def test_parts_agree_with_pandas_calendar():
    when = _stamps(500, seed=1, start="1950-03-01", days=40000)  # before and after 1970
    seconds = dates.datetime64_seconds(when.to_numpy(dtype="datetime64[us]"))
    assert np.array_equal(dates.part_values(seconds, "month"), when.dt.month)
    assert np.array_equal(dates.part_values(seconds, "day"), when.dt.day)
    assert np.array_equal(dates.part_values(seconds, "weekday"), when.dt.day_of_week)
    assert np.allclose(dates.part_values(seconds, "hour"), when.dt.hour + when.dt.minute / 60)
    days = (when - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    assert np.allclose(dates.part_values(seconds, "time"), days)


def test_parts_that_do_not_vary_are_left_out():
    assert dates.parts_of(np.array([0.0, 86400.0 * 7, np.nan])) == ["time", "day"]
    midnight_days = dates.datetime64_seconds(
        np.array(["2020-01-05", "2020-03-02", "2020-03-03"], dtype="datetime64[s]"))
    assert dates.parts_of(midnight_days) == ["time", "month", "day", "weekday"]
    clock = np.array([3600.0 * 9, 3600.0 * 13.5])  # a time of day alone: on 1970-01-01
    assert dates.parts_of(clock) == ["hour"]
    assert dates.parts_of(np.array([5.0, 5.0])) == ["time"]
    assert dates.parts_of(np.array([np.nan])) == ["time"]


@pytest.mark.parametrize("texts", [
    ["2024-05-17", "2023-12-31"],
    ["2024-05-17 13:30", "2024-05-17T08:00:05.25"],
    ["2024-05-17T13:30:00Z", "2024-05-17T13:30+02:00", "2024-05-17 13:30:00-0500"],
    ["13:30", "9:05", "23:59:59"],
    ["2024-05", "2024-06"],  # months, as pandas writes a monthly Period
])
def test_iso_texts_read_as_dates(texts):
    assert dates.looks_like_dates(np.array(texts, dtype=object))


@pytest.mark.parametrize("texts", [
    ["05/17/2024", "2024-05-17"],  # not ISO
    ["2024-02-30"],  # no such day
    ["2024-13-01"],
    ["25:00"],  # no such hour
    ["2024-05-17", "soon"],
    ["2024-05", "2024-13"],  # no such month
    ["2019-20", "2020-21"],  # seasons
    ["2024-05-17", "13:30"],  # dates and times of day mixed: neither
    ["", "NaT"],  # gaps only
    [],
])
def test_other_texts_do_not(texts):
    assert not dates.looks_like_dates(np.array(texts, dtype=object))


def test_a_month_is_its_first_day():
    months = dates.seconds(np.array(["2024-05", "2024-05-01"], dtype=object),
                           np.zeros(2, dtype=bool))
    assert months[0] == months[1]
    frame = pd.DataFrame({"month": pd.period_range("2023-11", periods=4, freq="M")})
    written = pd.DataFrame({"month": frame["month"].astype(str)})  # as in a CSV
    assert written["month"].tolist()[:2] == ["2023-11", "2023-12"]
    encoder = TableEncoder().fit(written)
    assert np.array_equal(encoder.transform(written)[0], encoder.transform(frame)[0])


def test_clock_time_as_written_time_zones_dropped():
    got = [dates.seconds(np.array([t], dtype=object), np.array([False]))[0]
           for t in ["2024-05-17T13:30:00Z", "2024-05-17T13:30+02:00", "2024-05-17 13:30"]]
    assert got[0] == got[1] == got[2]
    frame = pd.DataFrame({"when": pd.to_datetime(["2024-05-17 09:00", "2024-05-18 21:30"])
                          .tz_localize("America/New_York")})
    numeric, _ = TableEncoder().fit(frame).transform(frame)
    assert TableEncoder().fit(frame).dateparts_ == [["time", "day", "weekday", "hour"]]
    assert numeric[:, 3].tolist() == [9.0, 21.5]


# ---------------------------------------------------------------------- encoder
def test_every_kind_of_date_column_gives_the_same_inputs():
    when = _stamps(60, seed=2)
    when[[3, 17]] = pd.NaT
    as_objects = when.astype(object).where(when.notna(), None)
    iso = when.dt.strftime("%Y-%m-%d %H:%M").astype(object).where(when.notna(), None)
    variants = {
        "datetime64": when,
        "objects": as_objects,
        "iso text": iso,
        "numpy": when.to_numpy(dtype="datetime64[s]"),
    }
    encoded = {}
    for name, column in variants.items():
        X = pd.DataFrame({"when": column}) if name != "numpy" else column.reshape(-1, 1)
        encoder = TableEncoder().fit(X)
        assert encoder.kinds_ == ["datetime"], name
        assert encoder.is_categorical_ == [False]
        encoded[name] = encoder.transform(X)[0]
    reference = encoded.pop("datetime64")
    # time, month, day, weekday, hour; then one missing-value indicator for them all
    assert reference.shape == (60, 6)
    assert reference[:, 5].tolist() == when.isna().astype(float).tolist()
    for name, numeric in encoded.items():
        assert np.allclose(numeric, reference), name


def test_polars_dates_times_and_durations():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({
        "day": [datetime.date(2020, 1, 5), None, datetime.date(2020, 2, 9)],
        "clock": [datetime.time(13, 30), datetime.time(9), None],
        "took": [datetime.timedelta(hours=1), None, datetime.timedelta(seconds=30)],
    })
    encoder = TableEncoder().fit(frame)
    assert encoder.kinds_ == ["datetime", "datetime", "numeric"]
    assert encoder.dateparts_ == [["time", "month", "day"], ["hour"]]
    numeric, _ = encoder.transform(frame)
    assert numeric[0, :5].tolist() == [18266.0, 1.0, 5.0, 13.5, 3600.0]


def test_pandas_periods_and_timedeltas():
    frame = pd.DataFrame({"month": pd.period_range("2020-01", periods=4, freq="M"),
                          "took": pd.to_timedelta([1.5, 2, None, 3], unit="h")})
    encoder = TableEncoder().fit(frame)
    assert encoder.dateparts_ == [["time", "month", "weekday"]]  # each month's first day
    numeric, _ = encoder.transform(frame)
    assert numeric[:, 1].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert numeric[[0, 1, 3], 3].tolist() == [5400.0, 7200.0, 10800.0]


def test_pyarrow_backed_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    (tmp_path / "t.csv").write_text("when,day,note\n2024-01-05 10:00,2024-01-05,a\n"
                                    "2024-02-07 11:30,,b\n,2024-03-09,a\n")
    frame = pd.read_csv(tmp_path / "t.csv", dtype_backend="pyarrow")
    frame["clock"] = pd.Series(pa.array([3600 * 10**6, None, 5400 * 10**6], pa.time64("us")),
                               dtype=pd.ArrowDtype(pa.time64("us")))
    frame["took"] = pd.Series([90, None, 30], dtype=pd.ArrowDtype(pa.duration("s")))
    frame["on"] = frame["day"].astype("timestamp[us][pyarrow]").dt.date.astype(
        pd.ArrowDtype(pa.date32()))
    encoder = TableEncoder().fit(frame)
    assert encoder.kinds_ == ["datetime", "datetime", "string", "datetime", "numeric",
                              "datetime"]
    numeric, _ = encoder.transform(frame)
    plain = TableEncoder().fit(pd.read_csv(tmp_path / "t.csv"))
    assert np.allclose(numeric[:, :9], plain.transform(pd.read_csv(tmp_path / "t.csv"))[0][:, :9])
    assert numeric[[0, 2], 9].tolist() == [1.0, 1.5]  # the clock, in hours
    assert numeric[[0, 2], 10].tolist() == [90.0, 30.0]  # the duration, in seconds
    assert np.allclose(numeric[:, 11:14], numeric[:, 5:8])  # the same dates as dates


def test_declared_categorical_dates_are_categories_of_their_iso_text():
    texts = pd.DataFrame({"when": ["2020-01-01", "2020-01-02", "2020-01-03T10:30:00"] * 10})
    stamps = pd.DataFrame({"when": pd.to_datetime(texts["when"], format="ISO8601")})
    assert TableEncoder().fit(texts).kinds_ == ["datetime"]
    for fitted_on in (texts, stamps):
        encoder = TableEncoder(categorical_features=["when"]).fit(fitted_on)
        assert encoder.kinds_ == ["string"]
        assert encoder.categories_ == [["2020-01-01", "2020-01-02", "2020-01-03T10:30:00"]]
        # the same codes whether the dates come as text or as datetimes
        assert np.array_equal(encoder.transform(texts)[1], encoder.transform(stamps)[1])
        assert (encoder.transform(texts)[1] >= 2).all()


def test_gap_texts_are_gaps_at_fit_and_predict():
    frame = pd.DataFrame({"when": ["2024-01-01", "", "NaT", "2024-02-01", None] * 4})
    encoder = TableEncoder().fit(frame)
    assert encoder.kinds_ == ["datetime"] and encoder.indicator_columns_ == [0]
    numeric, _ = encoder.transform(pd.DataFrame({"when": ["nan", " ", "2024-01-08"]}))
    assert numeric[:, -1].tolist() == [1.0, 1.0, 0.0]  # the missing-value indicator
    assert numeric[0, :-1].tolist() == encoder.medians_


def test_numpy_date_and_duration_arrays_go_to_the_table_encoder():
    rng = np.random.default_rng(0)
    days = pd.Series(pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 730, 300),
                                                                      unit="D"))
    y = 2.0 * (days.dt.day_of_week >= 5).to_numpy()
    X = days.to_numpy().reshape(-1, 1)
    reg = TorchRegressor(**FAST).fit(X, y)
    assert reg.encoder_.kinds_ == ["datetime"]
    pred = reg.predict(X)
    # the unit of the array does not matter (as raw numbers it would)
    assert np.allclose(reg.predict(X.astype("datetime64[D]")), pred, atol=1e-5)
    assert np.allclose(reg.predict(pd.DataFrame({"d": days}).to_numpy()), pred, atol=1e-5)
    lags = (X - np.datetime64("2022-01-01")).astype("timedelta64[h]")
    reg = TorchRegressor(**FAST).fit(lags, y)
    assert reg.encoder_.kinds_ == ["numeric"]
    assert np.array_equal(reg.encoder_.transform(lags)[0][:, 0],
                          lags.astype(np.int64).ravel() * 3600.0)  # in seconds
    assert np.allclose(reg.predict(lags.astype("timedelta64[s]")), reg.predict(lags),
                       atol=1e-5)


# -------------------------------------------------------------------- estimators
def _weekly(n, seed, start):
    """Sales with a trend, a weekend bump and a summer season, by date."""
    when = _stamps(n, seed=seed, start=start, days=700)
    y = ((when - pd.Timestamp("2019-01-01")).dt.days / 365.0
         + 3.0 * (when.dt.day_of_week >= 5) + 2.0 * np.isin(when.dt.month, [6, 7, 8]))
    return pd.DataFrame({"when": when.dt.strftime("%Y-%m-%d")}), y.to_numpy()


def test_learns_from_dates_it_never_saw():
    X, y = _weekly(1500, seed=0, start="2019-01-01")
    X_new, y_new = _weekly(400, seed=1, start="2019-01-01")
    seen = set(X["when"])
    new = ~X_new["when"].isin(seen).to_numpy()
    assert new.sum() > 30
    reg = TorchRegressor(device="cpu", random_state=0, n_epochs=60).fit(X, y)
    assert reg.encoder_.dateparts_ == [["time", "month", "day", "weekday"]]
    # As categories, a date never seen would be "unknown": nothing learned about it.
    assert r2_score(y_new[new], reg.predict(X_new[new])) > 0.8


def test_the_trend_is_never_embedded_the_seasons_are():
    X, y = _weekly(300, seed=0, start="2020-01-01")
    X = X.assign(x=np.arange(300.0), when_too=X["when"])
    reg = TorchRegressor(**FAST).fit(X, y)
    encoder = reg.encoder_
    assert encoder.kinds_ == ["datetime", "numeric", "datetime"]
    assert encoder.trend_columns == [0, 5]  # time, month, day, weekday | x | time, ...
    assert reg.periodic_columns_ == [1, 2, 3, 4, 6, 7, 8]
    periodic = TorchRegressor(**FAST, numeric_embedding="periodic").fit(X, y)
    assert periodic.periodic_columns_ == [1, 2, 3, 4, 6, 7, 8]
    plain = TorchRegressor(**FAST, numeric_embedding="periodic").fit(X[["x"]], y)
    assert plain.periodic_columns_ == [0]


def test_classifier_and_persistence_keep_the_date_encoding(tmp_path):
    X, y = _weekly(300, seed=0, start="2020-01-01")
    labels = np.where(y > np.median(y), "high", "low")
    clf = TorchClassifier(**FAST).fit(X, labels)
    proba = clf.predict_proba(X)
    clf.save(tmp_path / "dates.skt")
    loaded = load_estimator(tmp_path / "dates.skt")
    assert loaded.encoder_.dateparts_ == clf.encoder_.dateparts_
    assert np.allclose(loaded.predict_proba(X), proba, atol=1e-6)
    assert np.allclose(pickle.loads(pickle.dumps(clf)).predict_proba(X), proba)


def test_files_without_date_parts_still_load():
    state = TableEncoder().fit(pd.DataFrame({"x": [1.0, 2.0]})).state()
    del state["dateparts"]  # written before date columns were taken
    assert TableEncoder.from_state(state).dateparts_ == []
    bad = dict(state, kinds=["datetime"], dateparts=[["fortnight"]])
    with pytest.raises(ValueError, match="date parts"):
        TableEncoder.from_state(bad)


def test_predict_refuses_dates_where_numbers_were_and_back():
    X, y = _weekly(200, seed=0, start="2020-01-01")
    reg = TorchRegressor(**FAST).fit(X.assign(x=np.arange(200.0)), y)
    with pytest.raises(ValueError, match="'when' held dates in fit but now holds numbers"):
        reg.predict(X.assign(when=np.arange(200.0), x=np.arange(200.0)))
    with pytest.raises(ValueError, match="'x' was numeric in fit but now holds dates"):
        reg.predict(X.assign(x=pd.Timestamp("2020-01-01")))
    with pytest.raises(ValueError, match="Column 'when' holds dates, but 'soon' is not a "
                       "date.*name it in categorical_features"):
        reg.predict(X.assign(x=0.0, when=["soon"] + X["when"].tolist()[1:]))
    gaps = reg.predict(X.assign(x=1.0, when=np.nan))  # an empty column: every date a gap
    assert np.isfinite(gaps).all() and np.ptp(gaps) < 1e-4
