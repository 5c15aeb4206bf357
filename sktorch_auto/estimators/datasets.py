"""A dataset over a scipy sparse matrix, densified one batch at a time."""

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset

from .nets import compress_tails


class CSRDataset(Dataset):
    """Rows of a sparse matrix as dense float32 tensors, fetched a batch at a time.

    The trainer asks for whole batches (``get_batch``), so a wide sparse matrix (TF-IDF
    features, say) never becomes one dense array in memory.

    Parameters
    ----------
    X : scipy sparse matrix of shape (n_samples, n_features)
    target : tensor of shape (n_samples, n_outputs)
    weight : tensor, optional
        Per-sample or per-output weights.
    scaling : (mean, scale, fences), optional
        Standardise each densified batch: ``(x - mean) / scale``, then compress its
        tails beyond ``fences`` ``(low, high)`` when they are not None.
    """

    def __init__(self, X, target, weight=None, scaling=None):
        if X.dtype != np.float32 and X.nnz and np.abs(X.data).max() > np.finfo(np.float32).max:
            raise ValueError("Input X has values beyond the float32 range, which the "
                             "network computes in.")
        self.X = sp.csr_matrix(X, dtype=np.float32)
        self.target = torch.as_tensor(target)
        self.weight = weight
        self.scaling = None if scaling is None else (
            torch.as_tensor(np.asarray(scaling[0], dtype=np.float32)),
            torch.as_tensor(1.0 / np.asarray(scaling[1], dtype=np.float64), dtype=torch.float32),
            None if scaling[2] is None else tuple(
                torch.as_tensor(np.asarray(f, dtype=np.float32)) for f in scaling[2]))

    def __len__(self):
        return self.X.shape[0]

    def _rows(self, indices):
        rows = torch.from_numpy(self.X[indices].toarray())
        if self.scaling is not None:
            mean, inverse, fences = self.scaling
            rows = (rows - mean) * inverse
            if fences is not None:
                rows = compress_tails(rows, *fences)
        return rows

    def __getitem__(self, index):
        x = self._rows([int(index)])[0]
        if self.weight is None:
            return x, self.target[index]
        return x, self.weight[index], self.target[index]

    def get_batch(self, indices):
        """The samples at ``indices`` as one batch ``(input, [weight,] target)``."""
        idx = np.asarray(indices, dtype=np.int64)
        x = self._rows(idx)
        t = torch.as_tensor(idx)
        if self.weight is None:
            return x, self.target[t]
        return x, self.weight[t], self.target[t]
