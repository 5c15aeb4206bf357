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
