"""Dates and times as numbers: what :class:`~.table.TableEncoder` makes of them.

A date or time column becomes a few numeric inputs, its *parts* (those that vary in
the training part, in this order):

``time``
    days since 1970-01-01, with the time of day as a fraction (the trend);
``month``, ``day``, ``weekday``
    the month (1-12), the day of the month (1-31) and the day of the week (0 is
    Monday): the seasons and the weekly rhythm a trend cannot show;
``hour``
    the time of day in hours (13.5 for 13:30).

Times are taken as written on the clock: a time-zone suffix or a ``tzinfo`` is dropped,
so 09:00 in Paris and 09:00 in New York are both nine in the morning. A time of day
alone (``13:30``) is a time on 1970-01-01: its only part is ``hour``.

Text counts as dates when every value reads as ISO 8601 -- ``2024-05-17``,
``2024-05-17 13:30``, ``2024-05-17T13:30:05.25Z``, ``2024-05-17T13:30+02:00``, a month
``2024-05`` (its first day; what pandas writes for a monthly Period) -- or as a
time of day ``13:30`` / ``13:30:05`` (all dates or all times: a mix of both is
neither); texts that stand for a gap (``''``, ``'NaT'``, ``'nan'``, ``'None'``, ...) are
gaps. Anything else (``05/17/2024``, ``May 2024``) stays text, a categorical column. The
choice is made on the training part: at predict time a text of such a column that reads
as no date is an error (as a text in a numeric column is), not a gap.
"""

import datetime
import re
import sys

import numpy as np

#: The parts a date column can give, in the order of the numeric inputs.
PARTS = ("time", "month", "day", "weekday", "hour")

_DAY = 86400.0
_EPOCH = datetime.date(1970, 1, 1).toordinal()
_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2})"
                   r"(?:[T ](\d{2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?)?"
                   r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?")


def _text_seconds(text):
    """Seconds since 1970-01-01 of one ISO date / time text, or None when it is none."""
    text = text.strip()
    match = _DATE.fullmatch(text)
    if match is not None:
        year, month, day, hour, minute, second = match.groups()
        try:
            days = datetime.date(int(year), int(month), int(day or 1)).toordinal() - _EPOCH
        except ValueError:  # 2024-02-30
            return None
        clock = _clock_seconds(hour or 0, minute or 0, second or 0)
        return None if clock is None else days * _DAY + clock
    match = _CLOCK.fullmatch(text)
    return None if match is None else _clock_seconds(*(g or 0 for g in match.groups()))


def _clock_seconds(hour, minute, second):
    hour, minute, second = int(hour), int(minute), float(second)
    if hour > 23 or minute > 59 or second >= 61:  # 61: a leap second
        return None
    return hour * 3600.0 + minute * 60.0 + second


def _object_seconds(value):
    """Seconds since 1970-01-01 of one date-like object, or None when it is none."""
    if isinstance(value, str):
        return _text_seconds(value)
    if isinstance(value, np.datetime64):
        return float(value.astype("datetime64[us]").astype(np.int64)) / 1e6
    if type(value).__name__ == "Period":  # pandas' Period: its start
        value = value.start_time
    if isinstance(value, datetime.datetime):  # pandas' Timestamp too
        clock = value.hour * 3600.0 + value.minute * 60.0 + value.second \
            + value.microsecond / 1e6 + getattr(value, "nanosecond", 0) / 1e9
        return (value.toordinal() - _EPOCH) * _DAY + clock
    if isinstance(value, datetime.date):
        return (value.toordinal() - _EPOCH) * _DAY
    if isinstance(value, datetime.time):
        return value.hour * 3600.0 + value.minute * 60.0 + value.second \
            + value.microsecond / 1e6
    return None


#: Texts that stand for a missing date ('' and 'NaT' as pandas writes them, ...).
_GAPS = frozenset({"", "nat", "nan", "na", "n/a", "none", "null"})


def is_gap_text(value):
    return isinstance(value, str) and value.strip().lower() in _GAPS


def looks_like_dates(texts):
    """Whether the values of ``texts`` (an object array, none missing) are all texts that
    read as ISO dates, or all as times of day (:func:`_text_seconds`); texts that stand
    for a gap (``''``, ``'NaT'``, ...) are left aside. A column without any date does not."""
    distinct = [t for t in _distinct(texts[:100]) if not is_gap_text(t)]
    if not distinct or not _same_kind(distinct):
        return False
    distinct = [t for t in _distinct(texts) if not is_gap_text(t)]
    return _same_kind(distinct)


def _same_kind(texts):
    """All dates, or all times of day (a mix of both is neither)."""
    if not all(isinstance(t, str) and _text_seconds(t) is not None for t in texts):
        return False
    clocks = sum(_DATE.fullmatch(t.strip()) is None for t in texts)
    return clocks in (0, len(texts))


def _distinct(values):
    pd = sys.modules.get("pandas")
    if pd is not None:
        return pd.unique(pd.Series(values, dtype=object)).tolist()
    return list(set(values.tolist()))


def datetime64_seconds(values):
    """Seconds (NaN for NaT) of a numpy ``datetime64`` array (since 1970-01-01) or
    ``timedelta64`` array (a duration), whatever its unit."""
    micro = values.astype("datetime64[us]" if values.dtype.kind == "M" else "timedelta64[us]")
    out = micro.astype(np.int64).astype(np.float64) / 1e6
    out[np.isnat(micro)] = np.nan
    return out


def seconds(values, missing):
    """Seconds since 1970-01-01, float64 with NaN where ``missing`` (and for texts that
    stand for a gap, such as ``''`` and ``'NaT'``), of an array of dates: ``datetime64``,
    date / time objects, ISO texts.

    Raises
    ------
    ValueError
        For a value that is no date (its message gives the value).
    """
    if values.dtype.kind == "f":  # already seconds (a datetime column of a DataFrame)
        return np.where(missing, np.nan, values)
    if values.dtype.kind == "M":
        return datetime64_seconds(values)
    out = np.full(len(values), np.nan)
    present = values[~missing]
    pd = sys.modules.get("pandas")
    if pd is not None:  # each distinct value once (pandas hashes them in C)
        codes, distinct = pd.factorize(pd.Series(present, dtype=object))
        out[~missing] = np.array([_one_seconds(v) for v in distinct], dtype=np.float64)[codes]
        return out
    lookup = {}
    for i, value in zip(np.flatnonzero(~missing), present):
        key = value if isinstance(value, str) else None
        found = lookup.get(key) if key is not None else None
        if found is None:
            found = _one_seconds(value)
            if key is not None:
                lookup[key] = found
        out[i] = found
    return out


def _one_seconds(value):
    """:func:`_object_seconds`, NaN for a text that stands for a gap; a ValueError for
    anything else that is no date."""
    found = _object_seconds(value)
    if found is None:
        if is_gap_text(value):
            return np.nan
        raise ValueError(f"{value!r} is not a date or a time")
    return found


def iso_texts(values, missing):
    """ISO 8601 texts of ``values`` (seconds since 1970-01-01; '' where ``missing``), each
    to the unit it needs: ``2024-05-17`` at midnight, else to the second or finer."""
    out = np.full(len(values), "", dtype=object)
    micro = np.where(missing, 0.0, values * 1e6).round().astype(np.int64)
    seconds = micro % 1_000_000 == 0
    midnight = micro % 86_400_000_000 == 0
    for unit, rows in (("D", midnight), ("s", seconds & ~midnight), ("us", ~seconds)):
        rows = rows & ~missing
        if rows.any():
            stamps = micro[rows].astype("datetime64[us]")
            out[rows] = np.datetime_as_string(stamps, unit=unit).astype(object)
    return out


def parts_of(values):
    """The parts (:data:`PARTS`) that vary among ``values`` (seconds, NaN for gaps);
    ``['time']`` when none does."""
    present = values[~np.isnan(values)]
    if not len(present):
        return ["time"]
    kept = []
    days_vary = np.ptp(np.floor(present / _DAY)) > 0
    for part in PARTS:
        if part == "time":
            if days_vary:
                kept.append(part)
            continue
        column = part_values(present, part)
        if np.ptp(column) > 0:
            kept.append(part)
    return kept or ["time"]


def part_values(values, part):
    """One part (:data:`PARTS`) of ``values`` (seconds since 1970-01-01; NaN stays NaN)."""
    if part == "time":
        return values / _DAY
    gaps = np.isnan(values)
    days = np.floor(np.where(gaps, 0.0, values) / _DAY)
    if part == "hour":
        out = (np.where(gaps, 0.0, values) - days * _DAY) / 3600.0
    elif part == "weekday":
        out = (days + 3) % 7  # 1970-01-01 was a Thursday
    else:
        dates = days.astype(np.int64).astype("datetime64[D]")
        months = dates.astype("datetime64[M]")
        if part == "month":
            out = (months.astype(np.int64) % 12 + 1).astype(np.float64)
        elif part == "day":
            out = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1.0
        else:
            raise ValueError(f"unknown date part {part!r}")
    out[gaps] = np.nan
    return out
