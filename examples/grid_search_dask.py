"""Grid search on a dask cluster, through joblib's dask backend.

Here the cluster is a LocalCluster on this machine (127.0.0.1); on a real cluster,
connect the client to the scheduler instead: ``Client("tcp://scheduler-host:8786")``.
Ray users can do the same with ``ray.util.joblib.register_ray()`` and
``parallel_config(backend="ray")``. Needs ``pip install "dask[distributed]"``.
"""

import joblib
from dask.distributed import Client, LocalCluster
from sklearn.datasets import make_regression
from sklearn.model_selection import GridSearchCV

from sktorch_auto import TorchRegressor


def main():
    X, y = make_regression(n_samples=400, n_features=8, noise=5.0, random_state=0)
    grid = GridSearchCV(
        TorchRegressor(n_epochs=20, device="cpu", random_state=0),
        {"hidden_layer_sizes": [(32,), (64, 64)], "learning_rate": [1e-3, 1e-2]},
        cv=3, n_jobs=-1,
    )
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, processes=True) as cluster, Client(cluster):
        with joblib.parallel_config(backend="dask"):
            grid.fit(X, y)
    print(f"best parameters {grid.best_params_}, cross-validated R^2 {grid.best_score_:.3f}")


if __name__ == "__main__":
    main()
