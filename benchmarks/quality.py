"""Out-of-the-box quality: sktorch_auto's defaults against scikit-learn's MLP, gradient
boosting and a carefully set-up skorch, with 5-fold cross-validation.

Run ``python benchmarks/quality.py`` (``--only diabetes iris`` for some datasets,
``--folds``, ``--no-skorch``, ``--ours-only``, ``--seed``, ``--seeds 10`` for mean +-
standard error over ten seeds and the paired wins/ties/losses; ``--held-out`` adds nine
synthetic sets that were kept out of the choice of the defaults, ``--tiny`` twelve sets of
20-80 rows; ``--set train_prop=0.9`` changes a parameter of sktorch_auto's estimators).
Regression is scored with R^2, classification with accuracy; the table gives the mean over
the folds (fixed seeds) and the mean fit time (after one untimed warm-up fit per kind of
model, so that a process's one-off costs are not charged to the first dataset). sktorch_auto
runs with no arguments and no scaler unless ``--set`` says otherwise. Not a test.
"""

import argparse
import json
import time
import warnings

import numpy as np
import torch
from sklearn import datasets
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktorch_auto import TorchClassifier, TorchRegressor

SEED = 0


# --------------------------------------------------------------------------- datasets
def _raw_units():
    X, y = datasets.make_friedman1(n_samples=1000, noise=0.5, random_state=SEED)
    rng = np.random.default_rng(SEED)
    scales = 10.0 ** rng.integers(-3, 5, size=X.shape[1])
    offsets = rng.normal(scale=1e5, size=X.shape[1])
    return X * scales + offsets, y * 1000 + 1e6


def _outliers():
    """Friedman 1 with what real columns have: two heavy-tailed (log-normal) inputs and
    data-entry errors (0.5% of two columns' cells are 999999)."""
    X, y = datasets.make_friedman1(n_samples=1000, noise=0.5, random_state=SEED)
    rng = np.random.default_rng(SEED)
    X[:, 5:7] = np.exp(3 * X[:, 5:7])  # unused by the target, as heavy as incomes
    X[:, 0:2] = np.exp(2 * X[:, 0:2])  # used by the target: a skewed view of it
    for j in (2, 3):
        X[rng.random(len(X)) < 0.005, j] = 999999.0
    return X, y


def _datasets():
    return {
        "diabetes": ("regression", lambda: datasets.load_diabetes(return_X_y=True)),
        "linnerud": ("regression", lambda: datasets.load_linnerud(return_X_y=True)),
        "friedman1 (nonlinear)": ("regression", lambda: datasets.make_friedman1(
            n_samples=1000, noise=1.0, random_state=SEED)),
        "raw units + offsets": ("regression", _raw_units),
        "skewed + outliers": ("regression", _outliers),
        "breast cancer": ("classification",
                          lambda: datasets.load_breast_cancer(return_X_y=True)),
        "wine": ("classification", lambda: datasets.load_wine(return_X_y=True)),
        "digits": ("classification", lambda: datasets.load_digits(return_X_y=True)),
        "iris": ("classification", lambda: datasets.load_iris(return_X_y=True)),
        "noisy multiclass": ("classification", lambda: datasets.make_classification(
            n_samples=1000, n_features=20, n_informative=8, n_classes=5, flip_y=0.2,
            random_state=SEED)),
    }


def _held_out_datasets():
    """Synthetic sets kept out of the choice of defaults, to check it does not overfit the
    benchmark (``--held-out``); generated with their own fixed seed."""
    s = 1

    def multi_output():
        X, y = datasets.make_regression(n_samples=300, n_features=10, n_targets=3, noise=10,
                                        random_state=s)
        return np.c_[X, X[:, :2] ** 2], y + 50 * np.tanh(X[:, :3])

    def hastie():
        X, y = datasets.make_hastie_10_2(n_samples=1500, random_state=s)
        return X, (y > 0).astype(int)

    return {
        "moons": ("classification", lambda: datasets.make_moons(
            n_samples=400, noise=0.3, random_state=s)),
        "circles": ("classification", lambda: datasets.make_circles(
            n_samples=300, noise=0.15, factor=0.5, random_state=s)),
        "hastie": ("classification", hastie),
        "binary": ("classification", lambda: datasets.make_classification(
            n_samples=600, n_features=15, n_informative=5, flip_y=0.05, class_sep=0.8,
            random_state=s)),
        "friedman2": ("regression", lambda: datasets.make_friedman2(
            n_samples=500, noise=20, random_state=s)),
        "friedman3": ("regression", lambda: datasets.make_friedman3(
            n_samples=500, noise=0.05, random_state=s)),
        "sparse linear": ("regression", lambda: datasets.make_regression(
            n_samples=200, n_features=30, n_informative=10, noise=20, random_state=s)),
        "sparse uncorrelated": ("regression", lambda: datasets.make_sparse_uncorrelated(
            n_samples=300, n_features=10, random_state=s)),
        "multi-output": ("regression", multi_output),
    }


def _tiny_datasets():
    """Twelve sets of 20-80 rows (``--tiny``; bundled sets subsampled and synthetic draws
    that follow ``--seed``), the evidence for ``train_prop='auto'``."""
    rng = np.random.default_rng(1000 + SEED)
    n_diabetes = len(datasets.load_diabetes().target)
    rows = {n: rng.choice(n_diabetes, n, replace=False) for n in (40, 80)}  # in this order

    def sample(load, n, stratified=False):
        X, y = load(return_X_y=True)
        if stratified:
            from sklearn.model_selection import train_test_split
            return train_test_split(X, y, train_size=n, stratify=y, random_state=SEED)[::2]
        return X[rows[n]], y[rows[n]]

    s = SEED
    return {
        "t:linnerud": ("regression", lambda: datasets.load_linnerud(return_X_y=True)),
        "t:diabetes 40": ("regression", lambda: sample(datasets.load_diabetes, 40)),
        "t:diabetes 80": ("regression", lambda: sample(datasets.load_diabetes, 80)),
        "t:friedman1 50": ("regression", lambda: datasets.make_friedman1(
            50, noise=1.0, random_state=s)),
        "t:linear 40": ("regression", lambda: datasets.make_regression(
            40, 10, n_informative=5, noise=20, random_state=s)),
        "t:sparse 50": ("regression", lambda: datasets.make_sparse_uncorrelated(
            50, 10, random_state=s)),
        "t:friedman3 60": ("regression", lambda: datasets.make_friedman3(
            60, noise=0.05, random_state=s)),
        "t:multi-output 30": ("regression", lambda: datasets.make_regression(
            30, 5, n_targets=3, noise=30, random_state=s)),
        "t:iris 45": ("classification", lambda: sample(datasets.load_iris, 45, True)),
        "t:wine 60": ("classification", lambda: sample(datasets.load_wine, 60, True)),
        "t:breast cancer 60": ("classification", lambda: sample(
            datasets.load_breast_cancer, 60, True)),
        "t:moons 60": ("classification", lambda: datasets.make_moons(
            60, noise=0.3, random_state=s)),
    }


# ----------------------------------------------------------------------------- models
def _skorch(task, n_outputs):  # n_outputs: number of classes for classification
    """skorch used carefully: scaled inputs (and targets), 2x64 MLP, Adam, early stopping."""
    import torch
    from skorch import NeuralNetClassifier, NeuralNetRegressor
    from skorch.callbacks import EarlyStopping

    class MLP(torch.nn.Module):
        def __init__(self, n_in=1, n_out=1):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.LazyLinear(64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                torch.nn.ReLU(), torch.nn.Linear(64, n_out))

        def forward(self, x):
            out = self.body(x.float())
            return out.squeeze(-1) if n_outputs == 1 and task == "regression" else out

    common = dict(module=MLP, module__n_out=n_outputs, optimizer=torch.optim.Adam, lr=1e-3,
                  max_epochs=200, batch_size=64, verbose=0,
                  callbacks=[EarlyStopping(patience=10)])
    if task == "classification":
        net = NeuralNetClassifier(criterion=torch.nn.CrossEntropyLoss, **common)
        return make_pipeline(StandardScaler(), _Float32(), net)
    net = NeuralNetRegressor(**common)
    return TransformedTargetRegressor(make_pipeline(StandardScaler(), _Float32(), net),
                                      transformer=StandardScaler())


class _Float32:
    """Cast inputs to float32 for skorch (a stateless transformer)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float32)

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self


def _models(task, n_outputs, with_skorch, params=None):
    params = params or {}
    if task == "regression":
        models = {
            "sktorch_auto": TorchRegressor(random_state=SEED, **params),
            "MLP pipeline": make_pipeline(StandardScaler(), MLPRegressor(
                early_stopping=True, max_iter=500, random_state=SEED)),
            "HistGradientBoosting": HistGradientBoostingRegressor(random_state=SEED)
            if n_outputs == 1 else MultiOutputRegressor(
                HistGradientBoostingRegressor(random_state=SEED)),
        }
    else:
        models = {
            "sktorch_auto": TorchClassifier(random_state=SEED, **params),
            "MLP pipeline": make_pipeline(StandardScaler(), MLPClassifier(
                early_stopping=True, max_iter=500, random_state=SEED)),
            "HistGradientBoosting": HistGradientBoostingClassifier(random_state=SEED),
        }
    if with_skorch:
        models["skorch (careful)"] = _skorch(task, n_outputs)
    return models


_WARM = set()


def _warm_up(model, X, y):
    """One untimed fit per kind of model and task: one-off costs of a process (lazy
    imports, first kernel calls) are not charged to whichever dataset comes first."""
    key = (type(model).__name__, str(getattr(model, "steps", "")), y.ndim)
    if key not in _WARM:
        _WARM.add(key)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clone(model).fit(X, y)


def evaluate(model, X, y, task, folds):
    splitter = (StratifiedKFold if task == "classification" else KFold)(
        n_splits=folds, shuffle=True, random_state=SEED)
    scores, times = [], []
    _warm_up(model, X, y)
    for train, test in splitter.split(X, y):
        est = clone(model)
        torch.manual_seed(SEED)  # skorch draws its initial weights from the global RNG
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X[train], y[train])
            times.append(time.perf_counter() - start)
            scores.append(est.score(X[test], y[test]))
    return float(np.mean(scores)), float(np.mean(times))


def main():
    global SEED
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--no-skorch", action="store_true")
    parser.add_argument("--held-out", action="store_true",
                        help="also run nine synthetic sets kept out of the choice of defaults")
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                        help="parameters of sktorch_auto's estimators (values read as JSON)")
    parser.add_argument("--tiny", action="store_true",
                        help="also run twelve sets of 20-80 rows")
    parser.add_argument("--ours-only", action="store_true",
                        help="run sktorch_auto only (to compare its settings quickly)")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="seed of the folds, the models and the benchmark's synthetic sets")
    parser.add_argument("--seeds", type=int, default=1,
                        help="run seeds --seed .. --seed + N - 1 and report mean +- standard "
                             "error over them")
    args = parser.parse_args()
    SEED = args.seed
    params = {}
    for item in args.set:
        name, _, value = item.partition("=")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value  # a bare string such as relu
    try:
        import skorch  # noqa: F401
        with_skorch = not args.no_skorch
    except ImportError:
        with_skorch = False

    seeds = range(args.seed, args.seed + args.seeds)
    per_seed = []
    for seed in seeds:
        SEED = seed
        if args.seeds > 1:
            print(f"--- seed {seed}", flush=True)
        per_seed.append(_run(args, params, with_skorch))
    if args.seeds == 1:
        _print_table(per_seed[0])
    else:
        _print_seed_table(per_seed, seeds)


def _run(args, params, with_skorch):
    """[(name, task, {model: (score, fit seconds)})] for the sets of ``args``."""
    rows = []
    sets = {**_datasets(), **(_held_out_datasets() if args.held_out else {}),
            **(_tiny_datasets() if args.tiny else {})}
    for name, (task, load) in sets.items():
        if args.only and not any(o.lower() in name.lower() for o in args.only):
            continue
        X, y = load()
        X = np.asarray(X, dtype=np.float64)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if task == "classification":
            n_outputs = len(np.unique(y))
        results = {}
        models = _models(task, n_outputs, with_skorch, params)
        if args.ours_only:
            models = {"sktorch_auto": models["sktorch_auto"]}
        for model_name, model in models.items():
            try:
                results[model_name] = evaluate(model, X, y, task, args.folds)
            except Exception as exc:  # noqa: BLE001 - report and go on
                results[model_name] = (float("nan"), float("nan"))
                print(f"  {name} / {model_name} failed: {exc}")
        rows.append((name, task, results))
        cells = "  ".join(f"{m} {s:.3f} ({t:.2f}s)" for m, (s, t) in results.items())
        print(f"{name:24s} {cells}", flush=True)
    return rows


def _print_table(rows):
    names = list(rows[0][2]) if rows else []
    print("\n| dataset | metric | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for name, task, results in rows:
        best = max(s for s, _ in results.values() if not np.isnan(s))
        cells = [f"{'**' if s == best else ''}{s:.3f}{'**' if s == best else ''} ({t:.2f} s)"
                 for s, t in results.values()]
        metric = "R^2" if task == "regression" else "accuracy"
        print(f"| {name} | {metric} | " + " | ".join(cells) + " |")


def _print_seed_table(per_seed, seeds):
    """Mean +- standard error over the seeds, and sktorch_auto against each other model
    (paired over the seeds: a difference within one standard error is a tie)."""
    rows = per_seed[0]
    names = list(rows[0][2]) if rows else []
    n = len(per_seed)
    print(f"\nmean +- standard error over {n} seeds ({seeds.start}-{seeds.stop - 1}; "
          "each a 5-fold cross-validation); mean fit seconds")
    print("\n| dataset | metric | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    outcomes = {m: [] for m in names if m != "sktorch_auto"}
    for i, (name, task, _) in enumerate(rows):
        scores = {m: np.array([run[i][2][m][0] for run in per_seed]) for m in names}
        times = {m: np.mean([run[i][2][m][1] for run in per_seed]) for m in names}
        cells = [f"{scores[m].mean():.3f} +- {scores[m].std(ddof=1) / np.sqrt(n):.3f} "
                 f"({times[m]:.2f} s)" for m in names]
        metric = "R^2" if task == "regression" else "accuracy"
        print(f"| {name} | {metric} | " + " | ".join(cells) + " |")
        for m in outcomes:
            d = scores["sktorch_auto"] - scores[m]
            se = d.std(ddof=1) / np.sqrt(n)
            outcomes[m].append("tie" if abs(d.mean()) <= se else
                               "win" if d.mean() > 0 else "loss")
    for m, out in outcomes.items():
        print(f"sktorch_auto vs {m}: better on {out.count('win')}, tied on "
              f"{out.count('tie')}, worse on {out.count('loss')} of {len(out)}")


if __name__ == "__main__":
    main()
