"""Grid search on parallel workers: loky processes and a local dask cluster (issue 6)."""

import os
import pickle
import threading

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_validate

from sktorch_auto import TorchRegressor

FAST = dict(n_epochs=5, device="cpu", random_state=0)


def pid_net(n_features_in, n_outputs, width=8, folder=None):
    """A builder that records which process built it."""
    if folder is not None:
        open(os.path.join(folder, f"{os.getpid()}"), "w").close()
    return torch.nn.Sequential(torch.nn.Linear(n_features_in, width), torch.nn.ReLU(),
                               torch.nn.Linear(width, n_outputs))


def _data(n=120):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    return X, X @ [1.0, -1.0, 2.0]


def test_grid_search_runs_on_a_local_dask_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    X, y = _data()
    est = TorchRegressor(pid_net, {"folder": str(tmp_path)}, **FAST)
    search = GridSearchCV(est, {"net_builder_kwargs__width": [4, 8]}, cv=2, n_jobs=-1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, processes=True) as cluster, \
            distributed.Client(cluster) as client:
        workers = set(client.run(os.getpid).values())
        with joblib.parallel_config(backend="dask"):
            search.fit(X, y)
    builders = {int(name) for name in os.listdir(tmp_path)}
    assert builders & workers  # the candidates were trained on the cluster's workers
    assert search.best_params_["net_builder_kwargs__width"] in (4, 8)
    assert search.predict(X).shape == (len(X),)


def test_randomized_search_and_cross_validate_on_loky_workers(tmp_path):
    X, y = _data()
    est = TorchRegressor(pid_net, {"folder": str(tmp_path)}, **FAST)
    search = RandomizedSearchCV(est, {"learning_rate": [1e-3, 1e-2, 3e-2]}, n_iter=2, cv=2,
                                n_jobs=2, random_state=0).fit(X, y)
    result = cross_validate(TorchRegressor(**FAST), X, y, cv=3, n_jobs=2)
    assert np.isfinite(result["test_score"]).all()
    assert search.best_params_["learning_rate"] in (1e-3, 1e-2, 3e-2)
    builders = {int(name) for name in os.listdir(tmp_path)}
    assert builders - {os.getpid()}  # candidates were built in worker processes


def test_a_lambda_builder_is_pickled_by_value():
    X, y = _data()
    est = TorchRegressor(lambda n_features_in, n_outputs: torch.nn.Linear(n_features_in,
                                                                          n_outputs), **FAST)
    est.fit(X, y)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))
    assert clone.net_builder(3, 1).in_features == 3


def test_an_unpicklable_builder_names_the_fix():
    lock = threading.Lock()

    def builder(n_features_in, n_outputs):
        with lock:
            return torch.nn.Linear(n_features_in, n_outputs)

    est = TorchRegressor(builder, **FAST)
    with pytest.raises(pickle.PicklingError, match="module level"):
        pickle.dumps(est)
    with pytest.raises(pickle.PicklingError) as info:  # loky wraps ours: in the chain
        GridSearchCV(est, {"learning_rate": [1e-3, 1e-2]}, cv=2, n_jobs=2).fit(*_data())
    chain, exc = [], info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert any("module level" in message for message in chain)
