"""Speed-related behaviour of the estimators: no data copies, threads, GPU switches."""

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from sktorch_auto import TorchClassifier, TorchRegressor


def make_net(n_features_in, n_outputs):
    return torch.nn.Linear(n_features_in, n_outputs)


def _data(n=120, d=4):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=np.float32)
    return X, X @ np.arange(1.0, d + 1)


def test_float32_data_is_shared_not_copied():
    X, y = _data()
    dataset = TorchRegressor._dataset(X, y.reshape(-1, 1))
    assert dataset.inputs[0].data_ptr() == X.ctypes.data
    assert dataset.inputs[0].dtype == torch.float32


def test_float64_data_is_converted_to_float32_once():
    X, y = _data()
    dataset = TorchRegressor._dataset(X.astype(np.float64), y.reshape(-1, 1))
    assert dataset.inputs[0].dtype == torch.float32
    assert dataset.target.dtype == torch.float32


def test_small_builtin_mlp_trains_on_one_thread_and_threads_are_restored():
    X, y = _data()
    reg = TorchRegressor(device="cpu", hidden_layer_sizes=(8,))
    net = reg._build_net(4, 1)
    assert reg._fit_threads(net, 16, torch.device("cpu")) == 1
    before = torch.get_num_threads()
    reg.set_params(n_epochs=2).fit(X, y)
    assert torch.get_num_threads() == before


def test_large_steps_and_user_networks_keep_torch_threads():
    reg = TorchRegressor(device="cpu", hidden_layer_sizes=(1024, 1024))
    big = reg._build_net(512, 1)
    assert reg._fit_threads(big, 1024, torch.device("cpu")) == torch.get_num_threads()
    user = TorchRegressor(make_net, device="cpu")
    assert user._fit_threads(make_net(4, 1), 16, torch.device("cpu")) == torch.get_num_threads()


def test_thread_limits_of_joblib_workers_are_respected():
    user = TorchRegressor(make_net, device="cpu")
    with threadpool_limits(1):
        assert user._fit_threads(make_net(4, 1), 4096, torch.device("cpu")) == 1


def test_amp_and_compile_switches_reach_the_trainer():
    X, y = _data()
    labels = (y > 0).astype(int)
    clf = TorchClassifier(n_epochs=3, device="cpu", random_state=0, amp=True,
                          compile="eager").fit(X, labels)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    assert np.allclose(proba.sum(axis=1), 1)
    assert clf.get_params()["amp"] is True
