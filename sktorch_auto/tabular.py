"""Reading tables for the command line: pandas when installed, else the csv module.

Feature columns go to the estimators as they are (text columns and empty cells too);
targets must be complete.
"""

import csv
import math

import numpy as np


class TableError(ValueError):
    """A table that cannot be used as asked (bad file, missing or non-numeric columns)."""


def _number(text):
    try:
        return float(text) if text.strip() != "" else math.nan
    except ValueError:
        return None


def read_table(path):
    """Columns of a CSV file as ``{name: 1-D array}`` (numeric columns as float64)."""
    try:
        import pandas as pd
    except ImportError:
        pd = None
    _check_text(path)
    try:
        if pd is not None:
            frame = pd.read_csv(path)
            columns = {str(c): frame[c].to_numpy() for c in frame.columns}
        else:
            columns = _read_csv(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise TableError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - pandas' parser errors have many types
        raise TableError(f"{path} is not a readable CSV file: {exc}") from exc
    if not columns:
        raise TableError(f"{path} has no columns")
    if not len(next(iter(columns.values()))):
        raise TableError(f"{path} has a header but no rows")
    return columns


def _check_text(path):
    """A TableError for a file that is no UTF-8 text (an image, a binary file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise TableError(f"cannot read {path}: {exc}") from exc
    if b"\x00" in head:
        raise TableError(f"{path} is not a text (CSV) file: it holds binary data")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not a character cut at the end of the block
            raise TableError(f"{path} is not a UTF-8 text (CSV) file (byte "
                             f"{head[exc.start]:#04x} at offset {exc.start})") from None


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    if any(len(row) != len(header) for row in body):
        raise TableError(f"{path}: every row must have {len(header)} fields like the header")
    columns = {}
    for j, name in enumerate(header):
        values = [row[j] for row in body]
        numbers = [_number(v) for v in values]
        columns[name] = (np.array(numbers, dtype=np.float64) if None not in numbers
                         else np.array(values, dtype=object))
    return columns


def is_numeric(column):
    return np.asarray(column).dtype.kind in "biuf"


def numeric_matrix(columns, names, what):
    """The named columns as a float64 matrix; clear errors for missing/non-numeric ones."""
    missing = [n for n in names if n not in columns]
    if missing:
        raise TableError(f"{what} column(s) not in the file: {', '.join(missing)}")
    bad = [n for n in names if not is_numeric(columns[n])]
    if bad:
        raise TableError(f"{what} column(s) must be numeric: {', '.join(bad)}")
    return np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in names])


def feature_table(columns, names):
    """The named columns as a table for the estimators: a pandas DataFrame (text columns
    and empty cells as they are) or, without pandas, an object array."""
    missing = [n for n in names if n not in columns]
    if missing:
        raise TableError(f"feature column(s) not in the file: {', '.join(missing)}")
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        return pd.DataFrame({n: columns[n] for n in names})
    table = np.empty((len(columns[names[0]]), len(names)), dtype=object)
    for j, n in enumerate(names):
        values = np.asarray(columns[n])
        if values.dtype == object:  # the csv module's empty cells are gaps
            values = np.where(values == "", None, values)
        table[:, j] = values
    return table


def missing_rows(columns, names):
    """Rows where any of the named columns is empty (NaN or an empty text)."""
    from .estimators.table import isna

    gaps = np.zeros(len(columns[names[0]]), dtype=bool)
    for n in names:
        values = np.asarray(columns[n])
        if values.dtype.kind in "fO":
            gaps |= isna(values)
        if values.dtype == object:
            gaps |= values == ""
    return gaps


def select_rows(columns, keep):
    """The columns with only the rows where ``keep`` is True."""
    return {name: np.asarray(values)[keep] for name, values in columns.items()}


def write_table(path, columns):
    """Write ``{name: 1-D array}`` as a CSV file."""
    names = list(columns)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(zip(*(np.asarray(columns[n]).tolist() for n in names)))
