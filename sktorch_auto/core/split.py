"""Reproducible train/validation split (S3).

The split depends only on the number of samples, ``train_prop``, ``shuffle`` and
the seed, never on the global random state: training again on the same dataset
gives the same indices, so a retrained model never validates on what it trained on.
"""

import numpy as np

#: The seed used when none is given: the seed's split is fixed for a dataset.
DEFAULT_SPLIT_SEED = 0


def _n_valid(n, train_prop):
    if not 0.0 < train_prop <= 1.0:
        raise ValueError(f"train_prop must be in (0, 1]; got {train_prop!r}.")
    if train_prop == 1.0 or n < 2:
        return 0
    return int(min(max(round(n * (1.0 - train_prop)), 1), n - 1))


def _stratified_valid(labels, n_valid, rng):
    """Pick ``n_valid`` indices with each label in proportion to its frequency."""
    classes, codes = np.unique(labels, return_inverse=True)
    counts = np.bincount(codes)
    quota = np.floor(counts * n_valid / len(labels)).astype(int)
    # Hand out the remaining places to the largest remainders, classes chosen at random on ties.
    remainder = counts * n_valid / len(labels) - quota
    order = np.lexsort((rng.random(len(classes)), -remainder))
    quota[order[: n_valid - quota.sum()]] += 1
    quota = np.minimum(quota, counts - 1).clip(min=0)  # every class keeps one training sample
    chosen = [rng.permutation(np.flatnonzero(codes == c))[:q] for c, q in enumerate(quota)]
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=int)


def train_valid_split(n, train_prop=0.9, shuffle=True, seed=None, stratify=None):
    """Indices of the training and validation parts of ``n`` samples.

    Parameters
    ----------
    n : int
        Number of samples.
    train_prop : float in (0, 1], default=0.9
        Share of the samples used for training. With 1.0, or with fewer than two
        samples, there is no separate validation part and the training part is
        used for validation too.
    shuffle : bool, default=True
        Draw the validation samples at random (reproducibly); else the last ones.
    seed : int, optional
        Seed of the split; by default a fixed one, so the split is the same every time.
    stratify : array-like of shape (n,), optional
        Labels whose proportions the validation part keeps (when shuffling).

    Returns
    -------
    train_idx, valid_idx : ndarray of int64
    """
    all_idx = np.arange(n, dtype=np.int64)
    n_valid = _n_valid(n, train_prop)
    if n_valid == 0:
        return all_idx, all_idx.copy()
    if not shuffle:
        return all_idx[: n - n_valid], all_idx[n - n_valid :]
    rng = np.random.default_rng(DEFAULT_SPLIT_SEED if seed is None else seed)
    if stratify is not None:
        valid = _stratified_valid(np.asarray(stratify), n_valid, rng)
    else:
        valid = np.sort(rng.permutation(n)[:n_valid])
    train = np.setdiff1d(all_idx, valid, assume_unique=True)
    if len(valid) == 0:  # stratification left nothing to validate on
        return all_idx, all_idx.copy()
    return train, valid.astype(np.int64)
