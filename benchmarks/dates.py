"""Date columns: forecasting dates to come, and filling in dates between (not a test).

A synthetic daily table (five years; a trend, a weekend bump, a yearly season, one plain
numeric column and noise) with its date as a datetime column. Two ways to split it:
``forecast`` trains on the first four years and tests on the fifth, ``random`` tests on a
random fifth. Variants of ``TorchRegressor()``'s defaults:

- ``defaults``: the date's parts as they are chosen (the trend not embedded);
- ``trend embedded``: the periodic embeddings on the trend too (what 'auto' did first);
- ``no embeddings``: ``numeric_embedding=None``;
- ``HistGradientBoosting`` on the same parts (days since 1970, month, day, weekday),
  for reference: trees cannot extrapolate a trend.

Usage: ``python benchmarks/dates.py [--seeds 3] [--rows 3000]``. R^2 on the test part,
mean +- standard error over seeds.
"""

import argparse
from unittest import mock

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score

from sktorch_auto import TorchRegressor
from sktorch_auto.estimators.table import TableEncoder

START = pd.Timestamp("2019-01-01")


def table(seed, rows):
    rng = np.random.default_rng(seed)
    when = pd.Series(START + pd.to_timedelta(rng.integers(0, 5 * 365, rows), unit="D"))
    x = rng.normal(size=rows)
    years = (when - START).dt.days.to_numpy() / 365.0
    y = (years + 1.5 * (when.dt.day_of_week >= 5).to_numpy()
         + np.sin(2 * np.pi * when.dt.month.to_numpy() / 12) + x
         + 0.5 * rng.normal(size=rows))
    return pd.DataFrame({"when": when, "x": x}), y


def splits(X, seed):
    forecast = (X["when"] < START + pd.DateOffset(years=4)).to_numpy()
    rng = np.random.default_rng(seed)
    random = rng.random(len(X)) < 0.8
    return {"forecast": forecast, "random": random}


def fit_score(name, X, y, train, seed):
    test = ~train
    if name == "HistGradientBoosting":
        encoder = TableEncoder().fit(X, np.flatnonzero(train))
        numeric, _ = encoder.transform(X)
        model = HistGradientBoostingRegressor(random_state=seed).fit(numeric[train], y[train])
        return r2_score(y[test], model.predict(numeric[test]))
    params = {"numeric_embedding": None} if name == "no embeddings" else {}
    model = TorchRegressor(random_state=seed, **params)
    if name == "trend embedded":
        with mock.patch.object(TableEncoder, "trend_columns", property(lambda self: [])):
            model.fit(X[train], y[train])
    else:
        model.fit(X[train], y[train])
    return r2_score(y[test], model.predict(X[test]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args()
    names = ["defaults", "trend embedded", "no embeddings", "HistGradientBoosting"]
    scores = {}
    for seed in range(args.seeds):
        X, y = table(seed, args.rows)
        for split, train in splits(X, seed).items():
            for name in names:
                scores.setdefault((split, name), []).append(fit_score(name, X, y, train, seed))
    print(f"R^2 on the test part, {args.seeds} seeds, {args.rows} rows")
    for (split, name), values in scores.items():
        values = np.asarray(values)
        se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
        print(f"  {split:9s} {name:22s} {values.mean():.3f} +- {se:.3f}  "
              f"({', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
