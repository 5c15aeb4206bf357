"""The command line: ``sktorch-auto demo | fit | predict | info`` (also ``python -m sktorch_auto``).

Errors in what the user gave (files, columns, options) are one line on stderr and exit
status 2, never a traceback.
"""

import argparse
import math
import os
import sys
import warnings

import numpy as np

from .tabular import (
    TableError,
    feature_table,
    is_numeric,
    missing_rows,
    numeric_matrix,
    read_table,
    select_rows,
    write_table,
)

TASKS = ("auto", "regression", "classification", "mixed")
#: ``fit`` warns of tables with fewer rows: a validation part of a few rows is noise.
FEW_ROWS = 20


class UsageError(ValueError):
    """A problem with what the user asked for, reported in one line."""


# ----------------------------------------------------------------------------- tasks
def _is_binary(column):
    values = np.unique(np.asarray(column, dtype=np.float64))
    return len(values) <= 2 and np.isin(values, [0, 1]).all()


def choose_task(columns, targets, task="auto"):
    """The task for these target columns: regression, classification or mixed.

    One non-numeric or two-valued target is classification; numeric targets are
    regression, and several targets of which some are 0/1 are the mixed task. Integer
    class labels need ``--task classification``.
    """
    numeric = [is_numeric(columns[t]) for t in targets]
    if task != "auto":
        if task != "classification" and not all(numeric):
            raise UsageError(f"{task} needs numeric targets; "
                             f"{targets[numeric.index(False)]!r} is not")
        if task == "classification" and len(targets) > 1 and not all(
                n and _is_binary(columns[t]) for n, t in zip(numeric, targets)):
            raise UsageError("classification with several targets needs 0/1 columns "
                             "(multilabel)")
        return task
    if len(targets) == 1:
        column = columns[targets[0]]
        if not numeric[0] or len(np.unique(column)) <= 2:
            return "classification"
        return "regression"
    if not all(numeric):
        raise UsageError("several targets must all be numeric (the mixed task); "
                         f"{targets[numeric.index(False)]!r} is not")
    return "mixed" if any(_is_binary(columns[t]) for t in targets) else "regression"


def _estimator(task, args, verbose, features=None, detected=()):
    """The estimator the options ask for (``features``: the feature columns, in order,
    that ``--categorical`` names; ``detected``: the positions of those categorical
    anyway, which ``--categorical`` adds to)."""
    from .estimators import TorchClassifier, TorchRegressor

    cls = TorchClassifier if task == "classification" else TorchRegressor
    params = dict(learning_rate=args.lr, random_state=args.seed, device=args.device,
                  verbose=verbose)
    # Options left out keep the estimators' defaults.
    for name, value in (("n_epochs", args.epochs), ("batch_size", args.batch_size),
                        ("tol", args.tol), ("dropout", args.dropout),
                        ("weight_decay", args.weight_decay)):
        if value is not None:
            params[name] = value
    if args.hidden is not None:
        params["hidden_layer_sizes"] = tuple(args.hidden)
    if args.numeric_embedding is not None:
        params["numeric_embedding"] = _NONE.get(args.numeric_embedding,
                                                args.numeric_embedding)
    if args.standardize is not None:
        params["standardize"] = _NONE.get(args.standardize, args.standardize)
    if args.categorical:
        features = list(features or [])
        unknown = [c for c in args.categorical if c not in features]
        if unknown:
            raise UsageError(f"--categorical names {', '.join(map(repr, unknown))}, not a "
                             f"feature column (features: {', '.join(features)})")
        # Positions, not names: without pandas the table has no column names.
        params["categorical_features"] = sorted(
            {features.index(c) for c in args.categorical} | set(detected))
    return cls(**params)


#: What ``none`` stands for in the options that take it.
_NONE = {"none": None}


def _targets(columns, targets, task):
    if task == "classification" and len(targets) == 1:
        return np.asarray(columns[targets[0]])
    y = numeric_matrix(columns, targets, "target")
    return y.ravel() if len(targets) == 1 else y


def _plot(estimator, path):
    try:
        from .plotting import TrainingCurveDisplay
    except ImportError as exc:  # matplotlib missing
        raise UsageError(f"--plot needs matplotlib ({exc}); pip install matplotlib") from exc
    import matplotlib

    matplotlib.use("Agg")
    display = TrainingCurveDisplay.from_estimator(estimator)
    display.figure_.savefig(path, dpi=100, bbox_inches="tight")
    print(f"learning curve written to {path}")


def _score_text(score):
    """The validation score in four decimals; R^2 of a single validation row is
    undefined (NaN), and said so rather than printed as "nan"."""
    return f"{score:.4f}" if np.isfinite(score) else "undefined (too few validation rows)"


def _report(estimator, task):
    metric = "accuracy" if task == "classification" else "R^2"
    chosen = " (range test)" if estimator.learning_rate == "auto" else ""
    score = _score_text(estimator.validation_score_)
    print(f"{estimator.n_iter_} epochs (best {estimator.best_epoch_}, stopped by "
          f"{estimator.stop_reason_}); learning rate {estimator.learning_rate_:.3g}{chosen}; "
          f"validation {metric} {score}")
    embedding = _embedding(estimator)
    if embedding:
        print(f"numeric embeddings: {embedding}")


def _embedding(estimator):
    """Which numeric inputs got periodic embeddings, and why none when none did."""
    columns, encoder = estimator.periodic_columns_, estimator.encoder_
    if columns is None:
        return ""
    if columns:
        return f"periodic, on {len(columns)} of {encoder.n_numeric} numeric inputs"
    from .estimators.nets import PERIODIC_AUTO_MAX_COLUMNS as most

    if estimator._too_wide_to_embed(encoder):
        return (f"none: more than {most} numeric inputs vary (--numeric-embedding periodic "
                "embeds them anyway, at several times the time per epoch)")
    return "none: no numeric input has more than two values"


# -------------------------------------------------------------------------- commands
def _check_writable(path, option, replaced=False):
    """Refuse, before any training, an output path that could not be written.

    ``replaced``: the file is written beside the path and renamed over it (the model
    files), so its folder must be writable; otherwise an existing file (``/dev/null``
    included) only needs to be writable itself.
    """
    path = os.fspath(path)
    if not path:
        raise UsageError(f"{option}: an empty path")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{option} {path!r} is a folder; give a file name")
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise UsageError(f"{option} {path!r}: {folder!r} {what}")
    if os.path.exists(path) and not replaced:
        if not os.access(path, os.W_OK):
            raise UsageError(f"{option} {path!r} is not writable")
    elif not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path!r}: the folder {folder!r} is not writable")


def cmd_fit(args):
    _check_writable(args.out, "--out", replaced=True)
    if args.plot:
        _check_writable(args.plot, "--plot")
    columns = read_table(args.csv)
    targets = list(dict.fromkeys(args.target))
    missing = [t for t in targets if t not in columns]
    if missing:
        raise UsageError(f"target column(s) not in {args.csv}: {', '.join(missing)} "
                         f"(columns: {', '.join(columns)})")
    features = [c for c in columns if c not in targets]
    if not features:
        raise UsageError("no feature columns left besides the targets")
    unlabelled = missing_rows(columns, targets)
    if unlabelled.all():
        raise UsageError(f"every row of {args.csv} has an empty target")
    if unlabelled.any():  # nothing to learn from; the features may have gaps
        print(f"{int(unlabelled.sum())} row(s) without a target left out")
        columns = select_rows(columns, ~unlabelled)
    X = feature_table(columns, features)
    task = choose_task(columns, targets, args.task)
    y = _targets(columns, targets, task)
    print(f"task: {task}; {len(y)} rows, {len(features)} features, "
          f"target(s): {', '.join(targets)}")
    if len(y) < FEW_ROWS:
        warnings.warn(f"only {len(y)} rows: early stopping watches a validation part of a "
                      "few of them, so expect a rough model and a noisy validation score",
                      stacklevel=2)
    detected = _detected_categorical(X) if args.categorical else ()
    estimator = _estimator(task, args, not args.quiet, features, detected).fit(X, y)
    _report(estimator, task)
    categorical = _categorical(estimator, features)
    if categorical:
        print(f"categorical: {categorical}")
    dated = _dates(estimator, features)
    if dated:
        print(f"dates: {dated}")
    estimator.save(args.out, metadata={"task": task, "features": features,
                                       "targets": targets, "source": os.fspath(args.csv)})
    print(f"model written to {args.out}")
    if args.plot:
        _plot(estimator, args.plot)


def _detected_categorical(X):
    """Positions of the columns categorical without being named (text, booleans)."""
    from .estimators.table import TableEncoder

    return [j for j, c in enumerate(TableEncoder().fit(X).is_categorical_) if c]


def _categorical(estimator, features):
    """'name (k categories), ...' for the columns the model treats as categorical."""
    encoder = getattr(estimator, "encoder_", None)
    if encoder is None:
        return ""
    from .estimators.table import MIN_FREQUENCY

    names = [f for f, c in zip(features, encoder.is_categorical_) if c]
    rare = f"every value in < {MIN_FREQUENCY} rows: pooled"
    def kept(c):
        return "1 category" if len(c) == 1 else f"{len(c)} categories"

    return ", ".join(f"{n} ({kept(c)})" if c else f"{n} ({rare})"
                     for n, c in zip(names, encoder.categories_))


def _dates(estimator, features):
    """'name (time, month, ...), ...' for the columns the model reads as dates."""
    encoder = getattr(estimator, "encoder_", None)
    if encoder is None or not encoder.table_:
        return ""
    names = [f for f, k in zip(features, encoder.kinds_) if k == "datetime"]
    return ", ".join(f"{n} ({', '.join(p)})" for n, p in zip(names, encoder.dateparts_))


def _load(path):
    from .estimators import load_estimator, load_metadata

    try:
        return load_estimator(path), load_metadata(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def cmd_predict(args):
    _check_writable(args.out, "--out")
    estimator, meta = _load(args.model)
    columns = read_table(args.csv)
    X = feature_table(columns, meta.get("features", []))
    n_rows = len(X)
    targets = meta.get("targets", ["prediction"])
    if args.proba and not hasattr(estimator, "predict_proba"):
        raise UsageError("--proba needs a classification model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.proba:
            proba = estimator.predict_proba(X)
            out = {f"proba_{c}": proba[:, i] for i, c in enumerate(estimator.classes_)}
        else:
            pred = estimator.predict(X).reshape(n_rows, -1)
            out = {name: pred[:, i] for i, name in enumerate(targets)}
    for warning in caught:
        _rewarn(warning, args.csv, meta.get("features", []))
    write_table(args.out, out)
    print(f"{n_rows} predictions written to {args.out}")


def _rewarn(warning, csv, features):
    """A warning of ``predict`` again, gaps in the CSV's words and by column name."""
    from .estimators import UnseenGapsWarning

    message = warning.message
    if isinstance(message, UnseenGapsWarning) and len(features) > max(message.gaps, default=0):
        listed = ", ".join(f"{features[j]} ({n} of {message.n_rows} rows)"
                           for j, n in sorted(message.gaps.items()))
        message = (f"{csv} has empty cells in column(s) that had none in training: "
                   f"{listed}; they were read as the training median, so predictions for "
                   "those rows may be poor")
    warnings.warn(message, warning.category, stacklevel=2)


def cmd_info(args):
    estimator, meta = _load(args.model)
    task = meta.get("task", type(estimator).__name__)
    metric = "accuracy" if task == "classification" else "R^2"
    print(f"model: {type(estimator).__name__} ({task})")
    features = meta.get("features", [])
    print(f"features ({estimator.n_features_in_}): {', '.join(features)}")
    categorical = _categorical(estimator, features)
    print(f"categorical columns: {categorical or 'none'}")
    dated = _dates(estimator, features)
    if dated:
        print(f"date columns: {dated}")
    print(f"targets: {', '.join(meta.get('targets', []))}")
    if hasattr(estimator, "classes_") and task == "classification":
        names = [str(c) for c in estimator.classes_]
        # Quoted when a name holds the separator ('Fog, Rain'), else as they are.
        quoted = any("," in n for n in names)
        print(f"classes: {', '.join(map(repr, names) if quoted else names)}")
    print(f"epochs: {estimator.n_iter_} (best {estimator.best_epoch_}, stopped by "
          f"{estimator.stop_reason_})")
    print(f"validation {metric}: {_score_text(estimator.validation_score_)}")


def cmd_demo(args):
    from sklearn.datasets import load_diabetes
    from sklearn.dummy import DummyRegressor
    from sklearn.model_selection import KFold, cross_val_score, train_test_split

    from .estimators import TorchRegressor

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    print(f"demo: diabetes progression (scikit-learn's bundled data), {len(X_train)} rows "
          f"to train on, {len(X_test)} held out")
    model = TorchRegressor(random_state=0, device=args.device, verbose=True)
    model.fit(X_train, y_train)
    _report(model, "regression")
    baseline = DummyRegressor().fit(X_train, y_train)
    print(f"held-out R^2 (one split of {len(X_test)} rows, noisy): sktorch_auto "
          f"{model.score(X_test, y_test):.3f}, baseline (predict the mean) "
          f"{baseline.score(X_test, y_test):.3f}")
    # One split of 111 rows is noisy (0.15-0.38 over five seeds of the model on this
    # split, 0.37 for RidgeCV): cross-validation tells more.
    folds = KFold(5, shuffle=True, random_state=0)
    ours = cross_val_score(TorchRegressor(random_state=0, device=args.device), X, y, cv=folds)
    mean = cross_val_score(DummyRegressor(), X, y, cv=folds)
    print(f"5-fold cross-validated R^2 (all {len(X)} rows): sktorch_auto {ours.mean():.3f} "
          f"+- {ours.std():.3f}, baseline {mean.mean():.3f}")
    if args.plot:
        try:
            _plot(model, args.plot)
        except UsageError as exc:
            print(f"(no learning curve: {exc})")


# ---------------------------------------------------------------------------- parser
def _learning_rate(text):
    """``--lr``: 'auto' or a positive number."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'auto', got {text!r}")
    return value


def _bounded(kind, low, high=math.inf):
    """An argparse type: a number of ``kind`` (int or float) from ``low`` to below
    ``high``, so that a bad value fails before the CSV is read."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not low <= value < high:  # NaN fails too
            where = f"at least {low}" + (f" and below {high}" if high < math.inf else "")
            raise argparse.ArgumentTypeError(f"expected a value {where}, got {text!r}")
        return value

    return parse


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, like the command's other errors (``--help`` shows the
    usage); exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser():
    parser = _OneLineParser(
        prog="sktorch-auto",
        description="Train PyTorch networks on tables with all the automation.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train on a bundled dataset and compare with a baseline")
    demo.add_argument("--plot", default="sktorch_auto_demo_curve.png",
                      help="learning-curve PNG (needs matplotlib; '' for none)")
    demo.add_argument("--device", default="auto")
    demo.set_defaults(func=cmd_demo)

    fit = sub.add_parser("fit", help="train on a CSV file and save the model")
    fit.add_argument("csv")
    fit.add_argument("--target", action="append", required=True,
                     help="target column (repeat for several)")
    fit.add_argument("--out", required=True, help="model file to write")
    fit.add_argument("--task", choices=TASKS, default="auto")
    fit.add_argument("--epochs", type=_bounded(int, 1), default=None,
                     help="at most (default 100)")
    fit.add_argument("--batch-size", type=_bounded(int, 1), default=None,
                     help="default: chosen from the number of rows")
    fit.add_argument("--lr", type=_learning_rate, default="auto",
                     help="initial learning rate, or 'auto' (default: a range test)")
    fit.add_argument("--tol", type=_bounded(float, 0), default=None,
                     help="least relative gain that early stopping counts (default 1e-3)")
    fit.add_argument("--hidden", type=_bounded(int, 1), nargs="+", default=None,
                     help="hidden layer sizes, e.g. --hidden 64 64")
    fit.add_argument("--dropout", type=_bounded(float, 0, 1), default=None, help="default 0")
    fit.add_argument("--weight-decay", type=_bounded(float, 0), default=None,
                     help="default 0")
    fit.add_argument("--numeric-embedding", choices=("auto", "periodic", "none"),
                     default=None, help="periodic embeddings of the numeric inputs "
                     "(default auto: on tables of at most 64 numeric columns)")
    fit.add_argument("--standardize", choices=("robust", "standard", "none"), default=None,
                     help="scaling of the numeric inputs (default robust)")
    fit.add_argument("--categorical", action="append", default=[], metavar="COLUMN",
                     help="a feature column to treat as categorical, such as integer "
                     "codes (repeat for several; text columns are categorical anyway)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--device", default="auto")
    fit.add_argument("--plot", default=None, help="write the learning curve to this PNG")
    fit.add_argument("--quiet", action="store_true", help="no progress bars")
    fit.set_defaults(func=cmd_fit)

    predict = sub.add_parser("predict", help="apply a saved model to a CSV file")
    predict.add_argument("model")
    predict.add_argument("csv")
    predict.add_argument("--out", required=True, help="CSV file to write")
    predict.add_argument("--proba", action="store_true", help="class probabilities")
    predict.set_defaults(func=cmd_predict)

    info = sub.add_parser("info", help="describe a saved model")
    info.add_argument("model")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    """Run the command line; return the exit status (0, or 2 for a usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)

    def show(message, category, *_, **__):  # one line, as the errors, not a traceback
        print(f"sktorch-auto {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            args.func(args)
    except (UsageError, TableError, ValueError, TypeError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"sktorch-auto {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
