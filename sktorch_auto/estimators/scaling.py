"""Statistics for the built-in input standardisation, from the training rows only."""

import numpy as np
import scipy.sparse as sp

#: Elements per chunk: the statistics never hold more than this many values at once.
CHUNK_ELEMENTS = 1 << 20


def _chunks(X, train_mask, weight):
    """Dense float64 blocks of the training rows of ``X`` and their weights, a few MB at
    a time."""
    rows = max(1, CHUNK_ELEMENTS // max(1, X.shape[1]))
    for start in range(0, X.shape[0], rows):
        mask = train_mask[start:start + rows]
        block = X[start:start + rows][mask]
        block = np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float64)
        yield block, weight[start:start + rows][mask][:, None]


def input_statistics(X, train_rows, sample_weight=None):
    """Weighted mean and standard deviation of each column over ``train_rows``.

    Weights count like repeated rows. Two passes over the data, in chunks, so no copy
    of ``X`` is made. Constant columns get a scale of 1 (centred, not scaled).
    """
    mask = np.zeros(X.shape[0], dtype=bool)
    mask[train_rows] = True
    weight = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight,
                                                                          dtype=np.float64)
    total = weight[mask].sum()
    if not total > 0:  # every training row has weight zero: fall back to plain counts
        weight, total = np.ones(X.shape[0]), mask.sum()
    mean = sum((w * b).sum(axis=0) for b, w in _chunks(X, mask, weight)) / total
    var = sum((w * (b - mean) ** 2).sum(axis=0) for b, w in _chunks(X, mask, weight)) / total
    scale = np.sqrt(var)
    scale[~(scale > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0
    return mean, scale


#: Robust statistics are computed on at most this many training rows (every k-th one):
#: quantiles of 100,000 values are within a fraction of a percent of the full ones. Wide
#: data samples fewer rows (at least MIN_QUANTILE_ROWS), at most QUANTILE_ELEMENTS values.
QUANTILE_ROWS, MIN_QUANTILE_ROWS, QUANTILE_ELEMENTS = 100_000, 10_000, 10_000_000
#: Tukey's "far out" fences: values more than FENCE interquartile ranges beyond the
#: quartiles are outliers.
FENCE = 3.0
_QUANTILES = (0.0, 0.01, 0.25, 0.75, 0.99, 1.0)


def quantile_rows(train_rows, n_features):
    """Every k-th training row: the sample that quantiles are computed on."""
    rows = np.asarray(train_rows)
    budget = min(QUANTILE_ROWS, max(MIN_QUANTILE_ROWS, QUANTILE_ELEMENTS // max(1, n_features)))
    return rows[::max(1, -(-len(rows) // budget))]


def _fences(q00, q01, q25, q75, q99, q100):
    """Tukey's far-out fences; the 1st and 99th percentiles where the quartiles coincide;
    the least and the greatest value where those do too (an almost or wholly constant
    column: a value never seen in training still enters within a few units of them).
    Arrays, one entry per column."""
    iqr, spread = q75 - q25, q99 - q01
    wide = iqr > 1e-12 * np.maximum(1.0, np.abs(q25))
    some = spread > 1e-12 * np.maximum(1.0, np.abs(q01))
    low = np.where(wide, q25 - FENCE * iqr, np.where(some, q01, q00))
    high = np.where(wide, q75 + FENCE * iqr, np.where(some, q99, q100))
    return low, high


def _one_sided(q00, q01, q25, q75, q99, q100):
    """Columns most of whose rows hold one value at an end of their range (zero-inflated
    counts, rare 0/1 indicators): quartiles equal, and equal to the 1st or the 99th
    percentile."""
    return (q25 == q75) & ((q01 == q25) | (q75 == q99))


def _off_mode_scale(values, weight, mode):
    """The (weighted) median distance from ``mode`` of the values off it; None when
    every value is the mode."""
    from .table import column_quantiles

    distance = np.abs(values - mode)
    off = distance > 1e-12 * max(1.0, abs(mode))
    if not off.any():
        return None
    (scale,) = column_quantiles(distance[off], None if weight is None else weight[off], (0.5,))
    return scale


def _clipped_moments(values, weight, low, high):
    """Weighted mean and standard deviation (1 when ~0) of ``values`` (rows x columns)
    clipped to ``[low, high]``."""
    clipped = np.clip(values, low, high)
    mean = np.average(clipped, axis=0, weights=weight)
    std = np.sqrt(np.average((clipped - mean) ** 2, axis=0, weights=weight))
    return mean, np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)


def robust_statistics(X, train_rows, sample_weight=None):
    """Outlier-proof standardisation of each column over ``train_rows``.

    Returns ``(mean, scale, low, high)``: ``low`` and ``high`` are Tukey's far-out
    fences (``FENCE`` interquartile ranges beyond the quartiles; the 1st and 99th
    percentiles for a column whose quartiles coincide; the least and the greatest value
    for an almost or wholly constant column), and ``mean`` and ``scale`` the mean and
    standard deviation of the values clipped to them. For data without outliers (normal,
    uniform) that is plain standardisation; one extreme value counts as a value at the
    fence, whatever its size (1e12 among 300 normal values: 3% more scale, instead of
    10^9 times).
    A one-sided column, whose quartiles coincide with its 1st or 99th percentile (at
    least three quarters of the rows hold its lowest or highest value: a rare 0/1
    indicator, a count that is mostly 0), is centred on that value instead and scaled
    by the median distance from it of the other values: its usual non-zero value lands
    near 1, where standardising puts a 0/1 indicator set in 0.1% of the rows at 30 and
    lets a network learn those rows by heart. A constant column gets an infinite scale:
    it enters as 0, whatever value it takes later.
    Quantiles are those of weighted repeated rows (numpy's 'averaged_inverted_cdf');
    sparse columns count their implicit zeros (no densified copy). Columns are taken a
    few at a time: no copy of the training rows.
    """
    from .table import column_quantiles

    rows = quantile_rows(train_rows, X.shape[1])
    weight = None if sample_weight is None else np.asarray(sample_weight,
                                                           dtype=np.float64)[rows]
    if weight is not None and not weight.sum() > 0:
        weight = None
    out = np.empty((4, X.shape[1]))
    if sp.issparse(X):
        sample = sp.csc_matrix(X[rows])
        ones = np.ones(len(rows)) if weight is None else weight
        for j in range(X.shape[1]):
            values, counts = _column_sample(sample, j, ones)
            qs = np.array(column_quantiles(values, counts, _QUANTILES))
            low, high = _fences(*qs)
            out[:, j] = (*_clipped_moments(values, counts, low, high), low, high)
            if _one_sided(*qs):
                _centre_on_mode(out, j, values, counts, qs[2])
        return _constant_ignored(out)
    width = max(1, CHUNK_ELEMENTS // max(1, len(rows)))
    for start in range(0, X.shape[1], width):
        block = np.asarray(X[rows, start:start + width], dtype=np.float64)
        if weight is None:
            qs = np.quantile(block, _QUANTILES, axis=0, method="averaged_inverted_cdf")
        else:
            qs = np.array([column_quantiles(block[:, j], weight, _QUANTILES)
                           for j in range(block.shape[1])]).T
        low, high = _fences(*qs)
        out[:, start:start + width] = (*_clipped_moments(block, weight, low, high), low, high)
        for j in np.flatnonzero(_one_sided(*qs)):
            _centre_on_mode(out, start + j, block[:, j], weight, qs[2, j])
    return _constant_ignored(out)


def _constant_ignored(out):
    """``(mean, scale, low, high)`` of ``out``, columns constant in the training rows
    (fences equal) scaled by infinity: they enter the network as 0 whatever their value,
    as a column that told nothing in training should (trees never split on it)."""
    mean, scale, low, high = out
    scale[low == high] = np.inf
    return mean, scale, low, high


def _centre_on_mode(out, j, values, weight, mode):
    """Column ``j`` of ``out`` (mean, scale, low, high) for a one-sided column: centred on
    its mode and scaled by the median distance from it of the other values, so a rare
    0/1 indicator stays 0/1 and a count that is mostly 0 keeps its typical non-zero
    value near 1 (standardising would blow a value seen in 0.1% of the rows up to 30)."""
    scale = _off_mode_scale(values, weight, mode)
    if scale is not None and scale > 0:
        out[0, j], out[1, j] = mode, scale

def _column_sample(sample, j, weight):
    """Column ``j`` of ``sample`` as ``(values, weights)``; a sparse column's implicit
    zeros are one value carrying their rows' total weight."""
    if not sp.issparse(sample):
        return np.asarray(sample[:, j], dtype=np.float64), weight
    start, stop = sample.indptr[j], sample.indptr[j + 1]
    rows = sample.indices[start:stop]
    zeros = weight.sum() - weight[rows].sum()
    return (np.append(np.asarray(sample.data[start:stop], dtype=np.float64), 0.0),
            np.append(weight[rows], max(zeros, 0.0)))
