"""Raw DataFrames against a hand-written preprocessing pipeline, on real messy tables.

For every table of ``benchmarks/tables.py`` (text/categorical columns, gaps) and for
``--splits`` random train/test splits (seeds 0, 1, ...; 25% test, stratified for
classification) this fits three contenders:

- ``raw``: ``TorchRegressor()`` / ``TorchClassifier()`` with defaults
  (``random_state`` = split seed) on the DataFrame as it comes (text columns, NaN). A
  version of the library that cannot take such a frame fails here; the failure is
  caught and reported as ``failed: <message>``.
- ``pipeline``: the same estimator behind a ``ColumnTransformer``: numeric columns ->
  ``SimpleImputer(strategy='median', add_indicator=True)``; categorical columns
  (object/str/category/bool) -> cast to strings (missing kept as NaN, so that mixed
  types do not trip the encoder) -> ``SimpleImputer(strategy='constant',
  fill_value='missing')`` -> ``OneHotEncoder(handle_unknown='ignore')``; dense output.
- ``hgb``: ``HistGradientBoostingRegressor/Classifier(categorical_features='from_dtype')``
  (reference) with object/str/bool columns cast to pandas ``category`` first (on the
  whole table, so train and test share the categories); a categorical column with more
  than 255 categories (HGB's limit) is given as its category codes instead (numeric,
  NaN kept).

Metrics: R^2 (regression), ROC AUC from ``predict_proba[:, 1]`` (binary), accuracy
(multiclass); plus fit seconds (one untimed warm-up fit of each torch estimator first).
The table gives mean +- standard error over the splits. At the end: on how many tables
``raw`` >= ``pipeline`` (and ``hgb`` against ``pipeline``, for scale), where a paired
difference within one standard error of the difference counts as a tie and a failure
counts as a loss.

Run ``python benchmarks/raw_vs_pipeline.py`` (``--tables carseats,penguins``,
``--splits N``, ``--max-rows N``, ``--only raw|pipeline|hgb`` (comma-separated list
allowed), ``--json out.json``, ``--threads N`` to cap torch and OpenMP/BLAS threads,
default as they are). Not a test: nothing here asserts scores. Note: on a busy machine
(another process using the cores) HistGradientBoosting's OpenMP threads can slow down
tenfold or more; ``--threads 1`` avoids that.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import sktorch_auto
from sktorch_auto import TorchClassifier, TorchRegressor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tables import TABLE_NAMES, is_categorical, load_tables  # noqa: E402

CONTENDERS = ("raw", "pipeline", "hgb")
METRICS = {"regression": "R^2", "binary": "ROC AUC", "multiclass": "accuracy"}
HGB_MAX_CATEGORIES = 255


#: Estimator parameters of the torch contenders (``--set``).
PARAMS = {}


def _value(text):
    """A ``--set``/``--patch`` value: a Python literal, else the string itself."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:  # inf, float('inf'), float("nan")
        return float(text.removeprefix("float(").removesuffix(")").strip("'\""))
    except ValueError:
        return text


def _patch(assignment):
    """``module.NAME=value`` (e.g. ``nets.EMBEDDING_DIM=16``, ``core.lr_range.STEPS=50``):
    set a constant of ``sktorch_auto.estimators.<module>`` (or of
    ``sktorch_auto.<module>``) for this run, to measure another default."""
    import importlib

    target, text = assignment.split("=", 1)
    module, name = target.rsplit(".", 1)
    prefix = "sktorch_auto." if module.startswith("core.") else "sktorch_auto.estimators."
    module = importlib.import_module(prefix + module)
    if not hasattr(module, name):
        raise SystemExit(f"--patch: {module.__name__} has no {name}")
    setattr(module, name, _value(text))


# ----------------------------------------------------------------------------- models
def _torch_estimator(task, seed):
    if task == "regression":
        return TorchRegressor(random_state=seed, **PARAMS)
    return TorchClassifier(random_state=seed, **PARAMS)


def _as_strings(X):
    """Categorical block -> object array of strings, missing values as NaN."""
    arr = np.asarray(X, dtype=object)
    missing = pd.isna(arr)
    out = arr.astype(str).astype(object)
    out[missing] = np.nan
    return out


def preprocessor(X, scale=False):
    """The hand-written preprocessing: numeric columns -> median imputation with missing
    indicators (then ``StandardScaler`` when ``scale``); the others -> strings ->
    constant imputation -> one-hot (dense)."""
    cat = [c for c in X.columns if is_categorical(X[c])]
    num = [c for c in X.columns if c not in cat]
    categorical = make_pipeline(
        FunctionTransformer(_as_strings),
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    numeric = SimpleImputer(strategy="median", add_indicator=True)
    if scale:
        numeric = make_pipeline(numeric, StandardScaler())
    return ColumnTransformer([("num", numeric, num), ("cat", categorical, cat)],
                             sparse_threshold=0.0)


def _pipeline(task, X, seed):
    return make_pipeline(preprocessor(X), _torch_estimator(task, seed))


def _hgb_frame(X):
    """Object/str/bool columns -> category; over-large categoricals -> numeric codes."""
    out = X.copy()
    for c in X.columns:
        if not is_categorical(X[c]):
            continue
        col = X[c] if isinstance(X[c].dtype, pd.CategoricalDtype) else X[c].astype("category")
        if len(col.cat.categories) > HGB_MAX_CATEGORIES:
            col = col.cat.codes.astype(np.float64).where(col.notna())
        out[c] = col
    return out


def _hgb(task, seed):
    cls = HistGradientBoostingRegressor if task == "regression" else \
        HistGradientBoostingClassifier
    return cls(categorical_features="from_dtype", random_state=seed)


def _score(task, model, X_test, y_test):
    if task == "regression":
        return float(r2_score(y_test, model.predict(X_test)))
    if task == "binary":
        proba = model.predict_proba(X_test)[:, 1]
        return float(roc_auc_score(y_test == model.classes_[1], proba))
    return float(accuracy_score(y_test, model.predict(X_test)))


def _warm_up():
    """One untimed fit of each torch estimator, so one-off costs hit no table."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        TorchRegressor(random_state=0).fit(X, X[:, 0])
        TorchClassifier(random_state=0).fit(X, (X[:, 0] > 0).astype(int))


# -------------------------------------------------------------------------- benchmark
def _run_table(table, contenders, n_splits):
    stratify = table.y if table.task != "regression" else None
    X_hgb = _hgb_frame(table.X) if "hgb" in contenders else None
    res = {c: {"scores": [], "fit_s": [], "errors": []} for c in contenders}
    for seed in range(n_splits):
        idx_train, idx_test = train_test_split(
            np.arange(len(table.y)), test_size=0.25, random_state=seed, stratify=stratify)
        y_train, y_test = table.y[idx_train], table.y[idx_test]
        for name in contenders:
            if name == "hgb":
                X, model = X_hgb, _hgb(table.task, seed)
            elif name == "pipeline":
                X, model = table.X, _pipeline(table.task, table.X, seed)
            else:
                X, model = table.X, _torch_estimator(table.task, seed)
            X_train, X_test = X.iloc[idx_train], X.iloc[idx_test]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    start = time.perf_counter()
                    model.fit(X_train, y_train)
                    elapsed = time.perf_counter() - start
                    score = _score(table.task, model, X_test, y_test)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                msg = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}" \
                    if str(exc).strip() else type(exc).__name__
                res[name]["errors"].append(msg)
                continue
            res[name]["scores"].append(score)
            res[name]["fit_s"].append(elapsed)
    return res


def _mean_se(values):
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def _cell(r, n_splits, max_len=60):
    if r["errors"]:
        text = f"failed: {r['errors'][0]}" if not r["scores"] else \
            f"failed {len(r['errors'])}/{n_splits}: {r['errors'][0]}"
        return text if len(text) <= max_len else text[:max_len - 3] + "..."
    m, se = _mean_se(r["scores"])
    return f"{m:.3f} +- {se:.3f} ({np.mean(r['fit_s']):.1f}s)"


def _compare(res_a, res_b):
    """'win' | 'tie' | 'loss' | 'failed' for a against b (paired over splits)."""
    if res_a["errors"]:
        return "failed"
    if res_b["errors"]:
        return "win"
    d = np.asarray(res_a["scores"]) - np.asarray(res_b["scores"])
    mean, se = _mean_se(d)
    if abs(mean) <= se:
        return "tie"
    return "win" if mean > 0 else "loss"


def _summary_line(label, outcomes):
    n = len(outcomes)
    counts = {k: outcomes.count(k) for k in ("win", "tie", "loss", "failed")}
    return (f"{label}: >= on {counts['win'] + counts['tie']} of {n} tables "
            f"({counts['win']} better, {counts['tie']} tied within 1 SE, "
            f"{counts['loss']} worse, {counts['failed']} failed)")


def _against(results, path, contender="raw"):
    """This run's scores of ``contender`` against an earlier run's, table by table
    (paired over the same splits; tables without complete, error-free results in both
    are left out)."""
    with open(path) as f:
        earlier = {r["table"]: r["contenders"].get(contender)
                   for r in json.load(f)["results"]}
    outcomes, diffs = [], []
    print(f"\n{contender} against {path} (this run minus that one, mean +- SE over splits)")
    for r in results:
        now, before = r["contenders"][contender], earlier.get(r["table"])
        if before is None or before["errors"] or now["errors"] or \
                len(before["scores"]) != len(now["scores"]):
            continue
        outcome = _compare(now, before)
        mean, se = _mean_se(np.asarray(now["scores"]) - np.asarray(before["scores"]))
        outcomes.append(outcome)
        diffs.append(mean)
        print(f"  {r['table']:13} {mean:+.4f} +- {se:.4f}  {outcome}  time "
              f"{np.mean(now['fit_s']):.2f}s vs {np.mean(before['fit_s']):.2f}s")
    if outcomes:
        print(_summary_line("this run vs that one", outcomes) +
              f"; mean difference {np.mean(diffs):+.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default=None,
                        help=f"comma-separated subset of {','.join(TABLE_NAMES)}")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=None,
                        help="subsample larger tables (default 5000; 0: all rows)")
    parser.add_argument("--only", default=",".join(CONTENDERS),
                        help="comma-separated subset of raw,pipeline,hgb")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--threads", type=int, default=None,
                        help="cap torch and OpenMP/BLAS threads (default: leave as is)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="an estimator parameter of the torch contenders, e.g. "
                             "standardize=standard (repeatable)")
    parser.add_argument("--patch", action="append", default=[], metavar="MODULE.NAME=VALUE",
                        help="a constant of sktorch_auto.estimators, e.g. "
                             "nets.EMBEDDING_DIM=16 (repeatable)")
    parser.add_argument("--against", default=None, metavar="FILE.json",
                        help="compare raw with the raw results of an earlier --json run "
                             "(paired over the same splits)")
    args = parser.parse_args()
    for assignment in args.set:
        name, text = assignment.split("=", 1)
        PARAMS[name] = _value(text)
    for assignment in args.patch:
        _patch(assignment)
    if args.threads:
        from threadpoolctl import threadpool_limits
        torch.set_num_threads(args.threads)
        _limits = threadpool_limits(args.threads)  # noqa: F841 - held for the whole run

    contenders = [c.strip() for c in args.only.split(",") if c.strip()]
    bad = [c for c in contenders if c not in CONTENDERS]
    if bad:
        parser.error(f"--only: unknown contender(s) {bad}; choose from {CONTENDERS}")
    contenders = [c for c in CONTENDERS if c in contenders]  # fixed order

    print(f"sktorch_auto {sktorch_auto.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), scikit-learn {sklearn.__version__}, "
          f"pandas {pd.__version__}, {platform.machine()}, {os.cpu_count()} CPUs")
    t_start = time.perf_counter()
    tables = load_tables(args.tables, args.max_rows)
    if not tables:
        print("no tables to run")
        return
    if "raw" in contenders or "pipeline" in contenders:
        _warm_up()

    results = []
    for table in tables:
        t0 = time.perf_counter()
        res = _run_table(table, contenders, args.splits)
        results.append({"table": table.name, "task": table.task, "source": table.source,
                        "metric": METRICS[table.task], "n_rows": len(table.y),
                        "n_cols": table.X.shape[1], "contenders": res})
        cells = "  ".join(f"{c}: {_cell(res[c], args.splits, 200)}" for c in contenders)
        print(f"[{time.perf_counter() - t0:5.1f}s] {table.name:13} {cells}", flush=True)

    width = {c: max(len(c), *(len(_cell(r["contenders"][c], args.splits)) for r in results))
             for c in contenders}
    head = f"{'table':13} {'task':10} {'rows':>5} {'cols':>4} {'metric':8}  " + "  ".join(
        f"{c:{width[c]}}" for c in contenders)
    print(f"\nmean +- standard error over {args.splits} split(s) (mean fit seconds)")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['table']:13} {r['task']:10} {r['n_rows']:5d} {r['n_cols']:4d} "
              f"{r['metric']:8}  " + "  ".join(
                  f"{_cell(r['contenders'][c], args.splits):{width[c]}}"
                  for c in contenders))

    summary = {}
    for a, b in (("raw", "pipeline"), ("hgb", "pipeline")):
        if a in contenders and b in contenders:
            outcomes = [_compare(r["contenders"][a], r["contenders"][b]) for r in results]
            summary[f"{a}_vs_{b}"] = dict(zip([r["table"] for r in results], outcomes))
            print(_summary_line(f"{a} vs {b}", outcomes))
    if args.against and "raw" in contenders:
        _against(results, args.against)
    total = time.perf_counter() - t_start
    print(f"total time {total:.0f}s")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": {"splits": args.splits, "max_rows": args.max_rows,
                                  "contenders": contenders, "set": args.set,
                                  "patch": args.patch,
                                  "versions": {"sktorch_auto": sktorch_auto.__version__,
                                               "torch": torch.__version__,
                                               "sklearn": sklearn.__version__,
                                               "pandas": pd.__version__}},
                       "results": results, "summary": summary, "total_s": total},
                      f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
