"""Grid search on all cores: GridSearchCV(n_jobs=2) against n_jobs=1.

Run ``python benchmarks/bench_search.py``. 4 candidates x 3 folds of TorchRegressor on
20,000 x 32 rows; the worker pool is started (and a first fit run in each worker)
before timing.
Not a test: nothing here asserts timings.
"""

import os
import time

import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import GridSearchCV

from sktorch_auto import TorchRegressor


def _warm_up():
    """Import what a search needs in a worker and fit once, before the timing starts."""
    TorchRegressor(n_epochs=1, device="cpu").fit(np.zeros((32, 2)), np.zeros(32))
    return os.getpid()


def search(X, y, n_jobs):
    grid = GridSearchCV(
        TorchRegressor(n_epochs=20, device="cpu", random_state=0),
        {"learning_rate": [1e-3, 3e-3], "hidden_layer_sizes": [(64, 64), (32, 32)]},
        cv=3, n_jobs=n_jobs,
    )
    start = time.perf_counter()
    grid.fit(X, y)
    return time.perf_counter() - start


def main():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 32), dtype=np.float32)
    y = 2 * X[:, 0] + np.sin(X[:, 1])
    workers = set(Parallel(n_jobs=2)(delayed(_warm_up)() for _ in range(8)))
    print(f"{os.cpu_count()} CPUs; worker pool started ({len(workers)} workers)")
    serial = search(X, y, n_jobs=1)
    parallel = search(X, y, n_jobs=2)
    print(f"GridSearchCV 4 candidates x 3 folds: n_jobs=1 {serial:.1f} s, "
          f"n_jobs=2 {parallel:.1f} s -> speed-up {serial / parallel:.2f}x")


if __name__ == "__main__":
    main()
