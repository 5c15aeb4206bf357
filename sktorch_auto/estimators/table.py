"""Tables as they come: numeric columns imputed, categorical columns coded, dates split
into their parts (:mod:`~.dates`).

:class:`TableEncoder` turns ``X`` -- a pandas or polars DataFrame, or an array -- into
what the network takes: a float matrix of the numeric columns (gaps filled with the
training part's median, plus a 0/1 missing-indicator column for each numeric column
that had gaps there) and an integer matrix of category codes. Its fitted state is
plain data (lists, numbers, strings), so it travels in the safe file format.

Codes of a categorical column: ``0`` missing, ``1`` rare or unknown (categories seen
fewer than :data:`MIN_FREQUENCY` times in the training part and those never seen
share it: the network learns it from the rare ones, so a category that turns up only
at predict time gets what rare categories get), ``2 + i`` the ``i``-th kept category.

Everything is vectorised over rows: strings are looked up in pandas' hash tables when
pandas is installed (else by binary search), numbers by binary search.
scikit-learn's ``OrdinalEncoder`` maps strings with one Python dictionary lookup per
row (``sklearn.utils._encode._map_to_integer``), which is what this module avoids.
"""

import datetime
import sys
from numbers import Integral, Number

import numpy as np
import scipy.sparse as sp

from . import dates

#: A category needs this many rows of the training part to get a code of its own;
#: rarer ones share the "rare or unknown" code.
MIN_FREQUENCY = 5
MISSING, UNKNOWN, FIRST = 0, 1, 2

_ADVICE = {
    "timedelta": "give it a timedelta dtype (then it counts in seconds) or drop it",
    "complex": "split it into its real and imaginary parts or drop it",
    "nested": "flatten it into columns of numbers or strings, or drop it",
}
_NESTED = (list, tuple, dict, set, frozenset, np.ndarray, bytearray)


class UnseenGapsWarning(UserWarning):
    """Data to predict has gaps in a numeric or date column that had none in training.

    Such a gap gets the training median and no missing-value indicator (the column had
    none), so the network sees an ordinary median value: the prediction ignores that
    the value is unknown. Filter it with ``warnings.simplefilter('ignore',
    UnseenGapsWarning)`` when that is what you want.

    Attributes
    ----------
    gaps : dict
        ``{column position: number of gaps}`` of the columns warned of.
    n_rows : int
        Rows of the data predicted.
    """

    def __init__(self, message, gaps=None, n_rows=None):
        super().__init__(message)
        self.gaps, self.n_rows = dict(gaps or {}), n_rows


def frame_library(X):
    """'pandas' or 'polars' when ``X`` is a DataFrame of that library, else None."""
    for name in ("pandas", "polars"):
        module = sys.modules.get(name)
        if module is not None and isinstance(X, module.DataFrame):
            return name
    return None


def _unusable(name, what, dtype):
    return ValueError(
        f"Column {name!r} holds {what} values (dtype {dtype}), which the estimators cannot "
        f"use: {_ADVICE[what]}.")


class _Column:
    """One input column: ``values`` a numpy array (float64 with NaN for numeric dtypes,
    seconds since 1970 for date and time dtypes, else objects), ``hint`` 'numeric',
    'datetime' (a date or time dtype), 'categorical' (a categorical, string or boolean
    dtype) or 'object' (decided from the values)."""

    def __init__(self, name, hint, values, dtype):
        self.name, self.hint, self.values, self.dtype = name, hint, values, dtype


def _pandas_column(series, name):
    import pandas as pd

    series = _arrow_temporal(series)
    types, dtype = pd.api.types, series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if types.is_numeric_dtype(dtype.categories.dtype):
            return _Column(name, "categorical",
                           series.to_numpy(dtype=np.float64, na_value=np.nan), dtype)
        return _Column(name, "categorical", series.to_numpy(dtype=object), dtype)
    if types.is_bool_dtype(dtype):
        return _Column(name, "categorical", series.to_numpy(dtype=object), dtype)
    if isinstance(dtype, pd.PeriodDtype):
        series = series.dt.to_timestamp()
    if types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dt, "tz", None) is not None:  # the clock time as written
            series = series.dt.tz_localize(None)
        return _Column(name, "datetime",
                       dates.datetime64_seconds(series.to_numpy(dtype="datetime64[us]")), dtype)
    if types.is_timedelta64_dtype(series.dtype):  # a duration: its seconds
        return _Column(name, "numeric", series.dt.total_seconds().to_numpy(
            dtype=np.float64, na_value=np.nan), dtype)
    if types.is_complex_dtype(dtype):
        raise _unusable(name, "complex", dtype)
    if types.is_numeric_dtype(dtype):
        return _Column(name, "numeric", series.to_numpy(dtype=np.float64, na_value=np.nan),
                       dtype)
    if types.is_object_dtype(dtype):
        return _Column(name, "object", series.to_numpy(dtype=object), dtype)
    if types.is_string_dtype(dtype):
        return _Column(name, "categorical", series.to_numpy(dtype=object), dtype)
    raise _unusable(name, "nested", dtype)  # intervals and other extension types


def _arrow_temporal(series):
    """A pyarrow-backed duration column (``dtype_backend='pyarrow'``) as a timedelta
    series, a date or time one as Python date / time objects; any other one as it is."""
    import pandas as pd

    if not isinstance(series.dtype, getattr(pd, "ArrowDtype", ())):
        return series
    import pyarrow as pa

    kind = series.dtype.pyarrow_dtype
    if pa.types.is_duration(kind):
        return series.astype("timedelta64[us]")
    if pa.types.is_date(kind) or pa.types.is_time(kind):
        return series.astype(object)
    return series


def _polars_column(series, name):
    import polars as pl

    dtype = series.dtype
    if dtype == pl.Null:  # every value missing: whatever the column was, all gaps
        return _Column(name, "object", np.full(len(series), None, dtype=object), dtype)
    if dtype.is_numeric():
        return _Column(name, "numeric", _polars_floats(series), dtype)
    if dtype == pl.Boolean or dtype == pl.String or isinstance(dtype, (pl.Categorical,
                                                                          pl.Enum)):
        values = series.cast(pl.String) if dtype != pl.Boolean else series
        return _Column(name, "categorical", values.to_numpy().astype(object), dtype)
    if dtype == pl.Duration:  # a duration: its seconds
        micro = series.dt.total_microseconds()
        return _Column(name, "numeric", _polars_floats(micro) / 1e6, dtype)
    if dtype == pl.Time:  # nanoseconds since midnight
        return _Column(name, "datetime", _polars_floats(series.cast(pl.Int64)) / 1e9, dtype)
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        if getattr(dtype, "time_zone", None) is not None:  # the clock time as written
            series = series.dt.replace_time_zone(None)
        return _Column(name, "datetime", _polars_floats(series.dt.epoch("us")) / 1e6, dtype)
    raise _unusable(name, "nested", dtype)  # lists, structs, arrays, objects, binary


def _polars_floats(series):
    import polars as pl

    return np.asarray(series.cast(pl.Float64).fill_null(float("nan")).to_numpy(),
                      dtype=np.float64)


def table_columns(X):
    """The columns of ``X`` (a DataFrame or a 2-D array) as :class:`_Column` objects,
    converted one at a time as they are asked for (a generator: no copy of the whole
    table at once)."""
    library = frame_library(X)
    if library == "pandas":
        return (_pandas_column(X.iloc[:, j], name) for j, name in enumerate(X.columns))
    if library == "polars":
        return (_polars_column(X.to_series(j), name) for j, name in enumerate(X.columns))
    X = _as_2d(X)
    kind = X.dtype.kind
    if kind in "biuf":
        return (_Column(j, "numeric", X[:, j].astype(np.float64), X.dtype)
                for j in range(X.shape[1]))
    if kind in "OUS":
        return (_Column(j, "object", X[:, j].astype(object), X.dtype) for j in range(X.shape[1]))
    if kind == "M":
        return (_Column(j, "datetime", dates.datetime64_seconds(X[:, j]), X.dtype)
                for j in range(X.shape[1]))
    if kind == "m":
        return (_Column(j, "numeric", dates.datetime64_seconds(X[:, j]), X.dtype)
                for j in range(X.shape[1]))
    what = {"c": "complex"}.get(kind, "nested")
    raise _unusable("(every column)", what, X.dtype)


def _as_2d(X):
    # Lists of rows as objects: numpy would turn the numbers of a row that also holds
    # text into strings.
    X = X if isinstance(X, np.ndarray) else np.asarray(X, dtype=object)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D table, got an array of shape {X.shape}.")
    return X


def _n_columns(X):
    return len(X.columns) if frame_library(X) is not None else _as_2d(X).shape[1]


def isna(values):
    """Missing entries of an array: NaN, and for objects None, pandas' NA and NaT."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    pd = sys.modules.get("pandas")
    if pd is not None:
        return np.asarray(pd.isna(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray((values == None) | (values != values), dtype=bool)  # noqa: E711


def _content(column, missing):
    """'number', 'date' or 'string': what the present values of an object column are
    ('date' when any is a date or time object).

    Values the estimators cannot use (durations as objects, complex numbers, lists and
    other containers) raise a ValueError naming the column.
    """
    if column.values.dtype.kind == "f":
        return "number"
    types = set(map(type, column.values[~missing]))
    if any(map(_is_date_type, types)):
        return "date"
    for t in types:
        if issubclass(t, (datetime.timedelta, np.timedelta64)):
            raise _unusable(column.name, "timedelta", column.dtype)
        if issubclass(t, (complex, np.complexfloating)):
            raise _unusable(column.name, "complex", column.dtype)
        if issubclass(t, _NESTED):
            raise _unusable(column.name, "nested", column.dtype)
    return "number" if all(issubclass(t, (Number, np.bool_)) for t in types) else "string"


def _has_bools(column):
    present = column.values[~isna(column.values)]
    return present.dtype == object and any(
        issubclass(t, (bool, np.bool_)) for t in set(map(type, present)))


def _as_floats(values, missing):
    """float64 copy of an object column (NaN where missing; +inf for what is no number)."""
    out = np.full(len(values), np.nan)
    present = values[~missing]
    try:
        out[~missing] = present.astype(np.float64)
    except (TypeError, ValueError):  # a string in a column of numbers: never a category
        out[~missing] = [_float_or_inf(v) for v in present]
    return out


def _parsed_numbers(column):
    """``(values, missing)`` of a text column whose values must all read as numbers (a
    numeric column of the fit, given as text); a ValueError names one that does not."""
    values = column.values
    missing = isna(values)
    out = _as_floats(values, missing)  # +inf for what is no number
    bad = np.flatnonzero(np.isinf(out))
    if len(bad):
        value = values[bad[0]]
        try:
            float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"Column {column.name!r} was numeric in fit but now holds {column.dtype} "
                f"values that are not numbers (e.g. {value!r}).") from None
        raise ValueError(f"Column {column.name!r} holds infinite values (e.g. {value!r}).")
    return out, missing | np.isnan(out)  # "nan" written out is a gap, as NaN is


def _float_or_inf(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.inf


def _number_objects(values, missing):
    """float64 values as Python numbers, whole ones as ints (7.0 -> 7, written "7")."""
    out = values.astype(object)
    whole = ~missing & np.isfinite(values) & (values == np.round(values))
    out[whole] = values[whole].astype(np.int64).tolist() if whole.any() else []
    return out


def _as_strings(values, missing):
    """Object array of ``str`` ('' where missing)."""
    out = values.astype(object)  # a copy
    out[missing] = ""
    if set(map(type, out)) != {str}:
        out = np.array(list(map(str, out)), dtype=object)
    return out


def _lookup(values, categories):
    """Position of each value in the sorted ``categories`` (-1 when absent), vectorised."""
    if not len(categories):
        return np.full(len(values), -1, dtype=np.int64)
    pd = sys.modules.get("pandas")
    if values.dtype == object and pd is not None:  # hash table lookups, in C
        return pd.Index(categories, dtype=object).get_indexer(values).astype(np.int64)
    categories = np.asarray(categories, dtype=values.dtype)
    pos = np.searchsorted(categories, values).clip(0, len(categories) - 1)
    return np.where(categories[pos] == values, pos, -1).astype(np.int64)


def _counts(values):
    """Sorted distinct values and how often each occurs."""
    pd = sys.modules.get("pandas")
    if values.dtype == object and pd is not None:  # hashing beats sorting Python strings
        counts = pd.Series(values, dtype=object).value_counts(sort=False)
        uniques = counts.index.to_numpy(dtype=object)
        order = np.argsort(uniques)
        return uniques[order], counts.to_numpy()[order]
    return np.unique(values, return_counts=True)


def _declared(spec, names, n_features):
    """Boolean mask of the columns that ``categorical_features`` (a list or a mask) names."""
    spec = np.asarray(spec)
    if spec.dtype.kind == "b":
        if spec.shape != (n_features,):
            raise ValueError(f"categorical_features as a boolean mask must have one entry per "
                             f"feature ({n_features}); got shape {spec.shape}.")
        return spec.astype(bool)
    mask = np.zeros(n_features, dtype=bool)
    for item in spec.ravel().tolist():
        if isinstance(item, str):
            if names is None:
                raise ValueError(f"categorical_features names the column {item!r}, but X has "
                                 "no column names; give column indices instead.")
            if item not in names:
                raise ValueError(f"categorical_features names {item!r}, which is not a column "
                                 f"of X (columns: {', '.join(names)}).")
            mask[names.index(item)] = True
        elif isinstance(item, Integral) and not isinstance(item, bool):
            if not -n_features <= item < n_features:
                raise ValueError(f"categorical_features index {item} is out of range for "
                                 f"{n_features} features.")
            mask[item] = True
        else:
            raise ValueError("categorical_features must be 'auto', None, column names, column "
                             f"indices or a boolean mask; got an entry {item!r}.")
    return mask


def is_auto(spec):
    return isinstance(spec, str) and spec == "auto"


def column_quantiles(values, weight=None, qs=(0.25, 0.5, 0.75)):
    """Quantiles ``qs`` of one column over its non-missing values (NaN when none).

    With ``weight`` each value counts as that many repeated rows.
    """
    keep = ~np.isnan(values)
    if weight is not None:
        keep &= weight > 0
    values = values[keep]
    if not len(values):
        return [np.nan] * len(qs)
    if weight is None:
        return [float(v) for v in np.quantile(values, qs)]
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(weight[keep][order])
    out = []
    for q in qs:
        # The value where the cumulative weight reaches q of the total, averaged with the
        # next one where it reaches it exactly (the usual median of an even count).
        target = q * cum[-1]
        lo = min(int(np.searchsorted(cum, target, side="left")), len(cum) - 1)
        hi = min(int(np.searchsorted(cum, target * (1 + 1e-12), side="right")), len(cum) - 1)
        out.append(float(0.5 * (values[lo] + values[hi])))
    return out


class TableEncoder:
    """Numeric and categorical columns of a table, encoded for the network.

    Parameters
    ----------
    categorical_features : 'auto', None, array-like of str or int, or bool mask
        'auto': categorical, string, boolean and object columns of a DataFrame are
        categorical, except object columns holding numbers only (Decimals, Python
        numbers), which are numeric; in an object or string array, the columns holding
        anything but numbers. None: every column is numeric. Names, indices or a mask list the
        categorical columns (e.g. integer-coded categories in an array); the other
        columns must then be numeric. Whatever the setting, date and time columns and
        text that reads as ISO dates (:mod:`~.dates`) give numeric inputs, unless listed
        as categorical.

    Attributes
    ----------
    kinds_ : list of str
        Per input column: 'numeric', 'datetime', or categorical 'number' (values
        compared as numbers) or 'string' (compared as strings).
    categories_ : list of list
        The kept categories of each categorical column, in code order (code 2 on).
    dateparts_ : list of list of str
        The parts (:data:`~.dates.PARTS`) each 'datetime' column gives, in order: one
        numeric input each, in the column's place among the numeric inputs.
    medians_ : list of float
        The training part's median of each numeric input (what a gap becomes).
    constant_inputs_ : list of int
        Positions, among the numeric inputs, of those holding a single value in the
        training part (a gap there at predict time changes nothing: not warned of).
    indicator_columns_ : list of int
        Positions, among the numeric inputs, of those that had gaps in the training
        part (and some values): each gets a 0/1 missing-indicator input after the
        numeric inputs (a date column: one, for its first part). A column with no value
        there stays a constant input.
    """

    def __init__(self, categorical_features="auto"):
        self.categorical_features = categorical_features

    def _declared(self, X, frame):
        """Mask of the declared categorical columns, or None ('auto' or None)."""
        spec = self.categorical_features
        if spec is None or is_auto(spec):
            return None
        names = [str(c) for c in X.columns] if frame else None
        return _declared(spec, names, _n_columns(X))

    def _kind(self, column, frame, declared):
        """'numeric', 'number' or 'string' for one column (``declared``: its entry of the
        declared mask, or None)."""
        spec = self.categorical_features
        if column.hint in ("numeric", "datetime"):
            kind = column.hint
        else:
            missing = isna(column.values)
            content = _content(column, missing)
            # An object column of numbers only (Decimals from a database, Python ints and
            # floats) is numeric; booleans, text and a column without any value (nothing
            # to tell; any value at predict time is then "unknown") are categorical.
            numeric = (column.hint == "object" and content == "number" and not missing.all()
                       and not _has_bools(column))
            kind = "numeric" if numeric else ("string" if missing.all() else content)
            if kind == "date" or (kind == "string" and not declared
                                  and dates.looks_like_dates(column.values[~missing])):
                kind = "datetime"  # date objects, or text that reads as ISO dates
        if declared:  # listed as categorical: compared as numbers, or as text (dates too)
            return "number" if kind == "numeric" else ("string" if kind == "datetime" else kind)
        if kind not in ("numeric", "datetime") and (declared is not None or spec is None):
            raise ValueError(
                f"Column {column.name!r} (dtype {column.dtype}) is not numeric, but "
                f"categorical_features={_plain_spec(spec)!r} makes it a numeric input; "
                "a list names every categorical column: add it, or use "
                "categorical_features='auto'.")
        return kind

    def fit(self, X, train_rows=None, sample_weight=None):
        """Learn the column kinds, the categories, the medians and the indicator columns.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
        train_rows : array of int, optional
            The rows to learn from (the training part); all rows by default.
        sample_weight : array of shape (n_samples,), optional
            Row weights for the medians (like repeated rows).

        Returns
        -------
        self
        """
        rows = np.arange(_n_rows(X)) if train_rows is None else np.asarray(train_rows)
        sample_weight = None if sample_weight is None else np.asarray(sample_weight,
                                                                      dtype=np.float64)
        self.categories_, self.medians_, self.indicator_columns_ = [], [], []
        self.dateparts_, self.constant_inputs_ = [], []
        spec = self.categorical_features
        if sp.issparse(X) and not (spec is None or is_auto(spec)):
            raise ValueError("categorical_features cannot declare columns of a sparse "
                             "matrix (its columns are numeric); pass a dense array or a "
                             "DataFrame, or leave categorical_features='auto'.")
        self.table_ = not (is_numeric_array(X) and (spec is None or is_auto(spec)))
        if not self.table_:
            return self._fit_array(X, rows, sample_weight)
        weight = None if sample_weight is None else sample_weight[rows]
        frame = frame_library(X) is not None
        declared = self._declared(X, frame)
        self.kinds_ = []
        for j, column in enumerate(table_columns(X)):
            kind = self._kind(column, frame, None if declared is None else bool(declared[j]))
            self.kinds_.append(kind)
            values, missing = self._values(column, kind, rows)
            if kind == "numeric":
                self._fit_numeric(values, missing, weight)
            elif kind == "datetime":
                parts = dates.parts_of(values)
                self.dateparts_.append(parts)
                for k, part in enumerate(parts):  # one indicator for the gaps of them all
                    self._fit_numeric(dates.part_values(values, part), missing & (k == 0),
                                      weight)
            else:
                uniques, counts = _counts(values[~missing])
                self.categories_.append(_plain(uniques[counts >= MIN_FREQUENCY], column))
        return self

    def _fit_numeric(self, values, missing, weight):
        """The median of one numeric input, and an indicator for it if it has gaps."""
        median = column_quantiles(values, weight, (0.5,))[0]
        # An indicator for a column with gaps in the training part; none for one with no
        # (weighted) value at all there (it stays a constant input).
        if missing.any() and not np.isnan(median):
            self.indicator_columns_.append(len(self.medians_))
        present = values[~missing]
        if len(present) and present.min() == present.max():  # a gap changes nothing there
            self.constant_inputs_.append(len(self.medians_))
        self.medians_.append(median)

    def _fit_array(self, X, rows, weight):
        """:meth:`fit` for a numeric array (or sparse matrix): medians of a sample of the
        training rows (:func:`~.scaling.quantile_rows`; ``weight`` one per row of ``X``),
        indicators for columns with gaps."""
        from .scaling import quantile_rows

        self.kinds_ = ["numeric"] * X.shape[1]
        if sp.issparse(X):  # sparse data must be finite: there is nothing to impute
            self.medians_ = None
            return self
        gaps, constant = _gap_and_constant_columns(X, rows)
        self.constant_inputs_ = np.flatnonzero(constant).tolist()
        sample = quantile_rows(rows, X.shape[1])
        if weight is None and not gaps.any():  # the usual case, in one vectorised call
            self.medians_ = np.median(X[sample], axis=0).astype(np.float64).tolist()
        else:
            self.medians_ = [column_quantiles(
                np.asarray(X[sample, j], dtype=np.float64),
                None if weight is None else weight[sample], (0.5,))[0]
                for j in range(X.shape[1])]
        self.indicator_columns_ = np.flatnonzero(gaps & ~np.isnan(self.medians_)).tolist()
        return self

    @staticmethod
    def _values(column, kind, rows=None):
        """``(values, missing)`` of the column (its ``rows``) in the form of ``kind``
        (seconds since 1970 for 'datetime')."""
        values = column.values if rows is None else column.values[rows]
        missing = isna(values)
        if kind == "datetime" or (kind == "string" and _holds_dates(column, values, missing)):
            try:
                seconds = dates.seconds(values, missing)
            except ValueError as exc:
                raise ValueError(
                    f"Column {column.name!r} holds dates, but {exc}; if it is no date column "
                    "(scores such as 21:15 read as times of day), name it in "
                    "categorical_features.") from None
            missing = np.isnan(seconds)  # texts such as '' and 'NaT' are gaps too
            if kind == "datetime":
                return seconds, missing
            # Declared categorical: each date as its ISO text, whatever the dtype.
            return dates.iso_texts(seconds, missing), missing
        if kind == "string":
            if values.dtype.kind == "f":  # read as numbers this time (a CSV of "7"s)
                values = _number_objects(values, missing)
            return _as_strings(values, missing), missing
        if values.dtype.kind != "f":
            values = _as_floats(values, missing)
        return values, missing

    @property
    def n_numeric(self):
        """Width of the numeric matrix: numeric columns, the parts of date columns and
        the indicator columns."""
        return (self.kinds_.count("numeric") + sum(map(len, self.dateparts_))
                + len(self.indicator_columns_))

    def describe(self):
        """The columns in words: '3 numeric, 1 categorical, 1 date (time, month), ...'."""
        numeric, categorical = self.kinds_.count("numeric"), len(self.categories_)
        indicators = len(self.indicator_columns_)
        words = [f"{numeric} numeric"] if numeric else []
        words += [f"{categorical} categorical"] if categorical else []
        words += [f"1 date ({', '.join(parts)})" for parts in self.dateparts_]
        if indicators:
            words.append(f"{indicators} missing-value indicator{'s' if indicators > 1 else ''}")
        return ", ".join(words) or "no columns"

    @property
    def trend_columns(self):
        """Positions, among the numeric inputs, of the 'time' parts of date columns (the
        trend, which a forecast extrapolates)."""
        out, i, d = [], 0, 0
        for kind in self.kinds_:
            if kind == "numeric":
                i += 1
            elif kind == "datetime":
                parts = self.dateparts_[d]
                out += [i + k for k, part in enumerate(parts) if part == "time"]
                i, d = i + len(parts), d + 1
        return out

    @property
    def cardinalities(self):
        """Number of codes of each categorical column (missing, rare/unknown, kept)."""
        return [FIRST + len(c) for c in self.categories_]

    @property
    def is_categorical_(self):
        return [k not in ("numeric", "datetime") for k in self.kinds_]

    def transform(self, X, unseen_gaps=None):
        """``(numeric, codes)``: float64 of shape (n, n_numeric), int64 (n, n_categorical).

        A gap in a numeric column gets the training part's median (also in a column
        that had none then); a category not seen in fit gets the "rare or unknown" code.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
        unseen_gaps : dict, optional
            Filled with ``{column position: number of gaps}`` for the numeric and date
            columns that have gaps in ``X`` but had none in the training part (and
            some values): their gaps got the median, with no indicator to tell the
            network, which never saw a gap there.
        """
        if not self.table_:
            return self._transform_array(X, unseen_gaps), None
        if _n_columns(X) != len(self.kinds_):
            raise ValueError(f"X has {_n_columns(X)} features, but the encoder was fitted "
                             f"with {len(self.kinds_)}.")
        n = _n_rows(X)
        numeric = np.empty((n, self.n_numeric), dtype=np.float64)
        codes = np.empty((n, len(self.categories_)), dtype=np.int64)
        i = c = d = 0
        for j, (column, kind) in enumerate(zip(table_columns(X), self.kinds_)):
            _check_same_kind(column, kind)
            if kind == "numeric" and column.hint != "numeric" and _content(
                    column, isna(column.values)) != "number":
                values, missing = _parsed_numbers(column)  # "140" from a CSV: a number
            else:
                values, missing = self._values(column, kind)
            if unseen_gaps is not None and (kind == "numeric" or (
                    kind == "datetime" and self.dateparts_[d])):
                self._note_unseen_gaps(unseen_gaps, j, i, int(np.count_nonzero(missing)))
            if kind == "numeric":
                self._put(numeric, i, values, missing)
                i += 1
            elif kind == "datetime":
                for part in self.dateparts_[d]:
                    self._put(numeric, i, dates.part_values(values, part), missing)
                    i += 1
                d += 1
            else:
                codes[:, c] = _codes(values, missing, self.categories_[c], kind)
                c += 1
        return numeric, codes

    def _note_unseen_gaps(self, unseen_gaps, j, i, n):
        """Note column ``j``'s ``n`` gaps when its (first) input ``i`` got no indicator in
        fit though the training part had more than one value there."""
        if n and i not in self.indicator_columns_ and i not in self.constant_inputs_ \
                and not np.isnan(self.medians_[i]):
            unseen_gaps[j] = n

    def _put(self, numeric, i, values, missing):
        """Numeric input ``i`` (and its indicator) into the numeric matrix."""
        median = self.medians_[i]
        # A column with no value in the training part stays constant: the network
        # learned nothing from its values.
        numeric[:, i] = 0.0 if np.isnan(median) else np.where(missing, median, values)
        if i in self.indicator_columns_:
            numeric[:, len(self.medians_) + self.indicator_columns_.index(i)] = missing

    def _transform_array(self, X, unseen_gaps=None):
        """A numeric array imputed (a copy), or ``X`` itself when it has no gaps and the
        fit added no indicator columns."""
        if sp.issparse(X) or self.medians_ is None:
            return X
        gaps = np.isnan(X) if not np.isfinite(np.add.reduce(X, axis=None)) else None
        if gaps is not None and unseen_gaps is not None:
            for j, n in enumerate(np.count_nonzero(gaps, axis=0).tolist()):
                self._note_unseen_gaps(unseen_gaps, j, j, n)
        if gaps is None and not self.indicator_columns_:
            return X
        out = np.empty((X.shape[0], self.n_numeric), dtype=np.float64)
        out[:, :X.shape[1]] = X
        medians = np.asarray(self.medians_)
        if gaps is not None:
            np.copyto(out[:, :X.shape[1]], np.nan_to_num(medians, nan=0.0), where=gaps)
        # A column with no value in the training part stays constant (as in transform).
        out[:, np.flatnonzero(np.isnan(medians))] = 0.0
        for k, j in enumerate(self.indicator_columns_):
            out[:, X.shape[1] + k] = gaps[:, j] if gaps is not None else 0.0
        return out

    def state(self):
        """The fitted state as plain data (for the safe file format)."""
        return {"table": self.table_,
                "categorical_features": _plain_spec(self.categorical_features),
                "kinds": list(self.kinds_), "categories": [list(c) for c in self.categories_],
                "medians": None if self.medians_ is None else list(self.medians_),
                "indicator_columns": list(self.indicator_columns_),
                "dateparts": [list(p) for p in self.dateparts_],
                "constant_inputs": list(self.constant_inputs_)}

    @classmethod
    def identity(cls, n_features):
        """The encoding of models saved before tables were supported: numeric columns
        as they are, no imputation (NaN stays an error)."""
        return cls.from_state({"table": False, "categorical_features": "auto",
                               "kinds": ["numeric"] * n_features, "categories": [],
                               "medians": None, "indicator_columns": []})

    @classmethod
    def from_state(cls, state):
        """The encoder whose fitted state is ``state`` (from :meth:`state`)."""
        encoder = cls(state["categorical_features"])
        encoder.table_ = bool(state["table"])
        encoder.kinds_ = list(state["kinds"])
        encoder.categories_ = [list(c) for c in state["categories"]]
        medians = state["medians"]
        encoder.medians_ = None if medians is None else [float(m) for m in medians]
        encoder.indicator_columns_ = [int(i) for i in state["indicator_columns"]]
        # Files written before constants were noted: none known (gaps there warn).
        encoder.constant_inputs_ = [int(i) for i in state.get("constant_inputs", [])]
        # Files written before date columns were taken have none.
        encoder.dateparts_ = [[str(p) for p in parts] for parts in state.get("dateparts", [])]
        unknown = {p for parts in encoder.dateparts_ for p in parts} - set(dates.PARTS)
        if unknown or len(encoder.dateparts_) != encoder.kinds_.count("datetime"):
            raise ValueError("the encoder's date parts do not match its columns "
                             f"({sorted(unknown) or encoder.dateparts_}).")
        return encoder


def _holds_dates(column, values, missing):
    """Whether the column holds dates as a dtype or as objects (not as text)."""
    if column.hint == "datetime":
        return True
    return values.dtype == object and column.hint != "numeric" and any(
        map(_is_date_type, set(map(type, values[~missing]))))


def _is_date_type(t):
    """Dates, times, datetimes (pandas' Timestamp too) and pandas' Period."""
    return issubclass(t, (datetime.date, datetime.time, np.datetime64)) or \
        t.__name__ in ("Timestamp", "Period")


def _check_same_kind(column, kind):
    """A date column where fit had numbers, or numbers where it had dates: refused."""
    if column.hint == "datetime" and kind == "numeric":
        raise ValueError(f"Column {column.name!r} was numeric in fit but now holds dates "
                         f"(dtype {column.dtype}).")
    if kind == "datetime" and column.values.dtype.kind == "f" and column.hint != "datetime" \
            and not np.isnan(column.values).all():  # all gaps (an empty CSV column): fine
        raise ValueError(f"Column {column.name!r} held dates in fit but now holds numbers "
                         f"(dtype {column.dtype}).")


def _codes(values, missing, categories, kind):
    keys = np.asarray(categories, dtype=object if kind == "string" else np.float64)
    if kind != "string":
        values = np.where(missing, np.inf, values)  # looked up, then overridden
    pos = _lookup(values, keys)
    return np.where(missing, MISSING, np.where(pos < 0, UNKNOWN, pos + FIRST))


def _plain(kept, column):
    """Kept categories as plain Python values (bool, int, float or str)."""
    if kept.dtype == object:
        return [str(v) for v in kept]
    present = column.values[~isna(column.values)]
    if len(present) and present.dtype == object and all(
            isinstance(v, (bool, np.bool_)) for v in present[:100]):
        return [bool(v) for v in kept]
    if all(float(v).is_integer() for v in kept):
        return [int(v) for v in kept]
    return [float(v) for v in kept]


def _plain_spec(spec):
    if spec is None or isinstance(spec, str):
        return spec
    return np.asarray(spec).tolist()


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)  # DataFrames, arrays, lists


def is_numeric_array(X):
    """A sparse matrix or a numeric numpy array (no DataFrame)."""
    return sp.issparse(X) or (isinstance(X, np.ndarray) and X.dtype.kind in "biuf")


def _gap_and_constant_columns(X, rows, chunk=1 << 16):
    """Which columns of ``X`` have NaN in ``rows``, and which hold a single value there
    (NaN aside), in chunks (no copy of the rows)."""
    gaps = np.zeros(X.shape[1], dtype=bool)
    low, high = np.full(X.shape[1], np.inf), np.full(X.shape[1], -np.inf)
    mask = np.zeros(X.shape[0], dtype=bool)
    mask[rows] = True
    finite = np.isfinite(np.add.reduce(X, axis=None))
    with np.errstate(invalid="ignore"):
        for start in range(0, X.shape[0], chunk):
            block = X[start:start + chunk][mask[start:start + chunk]]
            if not len(block):
                continue
            if not finite:
                gaps |= np.isnan(block).any(axis=0)
            np.fmin(low, np.fmin.reduce(block, axis=0), out=low)
            np.fmax(high, np.fmax.reduce(block, axis=0), out=high)
    return gaps, low == high


def needs_table(X, categorical_features):
    """Whether ``X`` must go through :class:`TableEncoder` (a DataFrame, an object or
    string array, declared categorical columns) rather than plain numeric validation."""
    if sp.issparse(X):
        return False
    if frame_library(X) is not None or not (categorical_features is None
                                            or is_auto(categorical_features)):
        return True
    dtype = getattr(X, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(X).dtype
        except (ValueError, TypeError):
            return True
    return dtype.kind in "OUSMm"  # objects, text, dates and durations
