"""Parameters: clone, get/set_params, user builders, fitted input attributes, validation."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from sktorch_auto import TorchClassifier, TorchRegressor

FAST = dict(n_epochs=10, learning_rate=1e-2, device="cpu", random_state=0)


def make_net(n_features_in, n_outputs, width=8):
    return torch.nn.Sequential(
        torch.nn.Linear(n_features_in, width), torch.nn.ReLU(), torch.nn.Linear(width, n_outputs)
    )


def _data(n=60, n_features=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    return X, X.sum(axis=1)


@pytest.mark.parametrize("cls", [TorchRegressor, TorchClassifier])
def test_clone_of_fitted_estimator_is_unfitted_with_equal_params(cls):
    X, y = _data()
    if cls is TorchClassifier:
        y = (y > 0).astype(int)
    est = cls(make_net, {"width": 5}, hidden_layer_sizes=(7,), **FAST).fit(X, y)
    copy = clone(est)
    assert copy is not est
    assert copy.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    assert not hasattr(copy, "net_")
    assert not hasattr(copy, "n_features_in_")


def test_get_params_set_params_round_trip():
    est = TorchRegressor()
    params = {"n_epochs": 7, "batch_size": 32, "learning_rate": 0.05, "train_prop": 0.8,
              "n_best_nets": 3, "with_restarts": False, "repeat_train": 2, "device": "cpu",
              "random_state": 3, "warm_start": True, "hidden_layer_sizes": (4, 4),
              "activation": "tanh", "dropout": 0.1, "net_builder": make_net,
              "net_builder_kwargs": {"width": 3}}
    assert est.set_params(**params) is est
    got = est.get_params()
    for name, value in params.items():
        assert got[name] == value
    other = TorchRegressor(**got)
    assert other.get_params() == got


def test_classifier_get_params_includes_class_weight():
    est = TorchClassifier(class_weight="balanced")
    assert est.get_params()["class_weight"] == "balanced"
    est.set_params(class_weight={0: 1.0, 1: 2.0})
    assert est.class_weight == {0: 1.0, 1: 2.0}


def test_set_params_nested_builder_argument_merges_without_mutating_original():
    original = {"width": 8, "depth": 2}
    est = TorchRegressor(make_net, original)
    est.set_params(net_builder_kwargs__width=16)
    assert est.net_builder_kwargs == {"width": 16, "depth": 2}
    assert original == {"width": 8, "depth": 2}
    assert est.net_builder_kwargs is not original


def test_set_params_nested_builder_argument_when_kwargs_is_none():
    est = TorchRegressor(make_net)
    est.set_params(net_builder_kwargs__width=16)
    assert est.net_builder_kwargs == {"width": 16}


def test_set_params_nested_builder_argument_together_with_the_dict():
    est = TorchRegressor(make_net, {"width": 8})
    est.set_params(net_builder_kwargs={"width": 4, "depth": 1}, net_builder_kwargs__width=16)
    assert est.net_builder_kwargs == {"width": 16, "depth": 1}


def test_nested_builder_argument_reaches_the_network():
    X, y = _data()
    est = TorchRegressor(make_net, {"width": 8}, **FAST).set_params(net_builder_kwargs__width=16)
    est.fit(X, y)
    assert est.net_.net[0].out_features == 16


def test_set_params_rejects_unknown_parameter():
    with pytest.raises(ValueError):
        TorchRegressor().set_params(no_such_param=1)


def _fixed_net():
    """A user's builder that takes no size arguments at all."""
    return torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))


def test_builder_without_size_arguments_works():
    X, y = _data()
    est = TorchRegressor(_fixed_net, **FAST).fit(X, y)
    assert est.net_.net[0].in_features == 3
    assert est.predict(X).shape == (len(X),)
    assert np.all(np.isfinite(est.predict(X)))


def test_builder_without_size_arguments_for_binary_classifier():
    X, y = _data()
    est = TorchClassifier(_fixed_net, **FAST).fit(X, (y > 0).astype(int))
    assert est.predict_proba(X).shape == (len(X), 2)


def test_builder_with_var_keyword_receives_sizes():
    seen = {}

    def builder(**kwargs):
        seen.update(kwargs)
        return torch.nn.Linear(kwargs["n_features_in"], kwargs["n_outputs"])

    X, _ = _data(n_features=4)
    Y = np.column_stack([X.sum(axis=1), X[:, 0]])
    TorchRegressor(builder, {"extra": 1}, **FAST).fit(X, Y)
    assert seen == {"n_features_in": 4, "n_outputs": 2, "extra": 1}


def test_builder_kwargs_override_sizes_only_by_its_own_names():
    seen = {}

    def builder(n_features_in, width=2):
        seen["n_features_in"], seen["width"] = n_features_in, width
        return torch.nn.Sequential(torch.nn.Linear(n_features_in, width),
                                   torch.nn.Linear(width, 1))

    X, y = _data(n_features=5)
    TorchRegressor(builder, {"width": 3}, **FAST).fit(X, y)
    assert seen == {"n_features_in": 5, "width": 3}


@pytest.mark.parametrize("builder, missing", [
    (lambda n_in, n_out: make_net(n_in, n_out), "'n_in', 'n_out'"),
    (lambda n_features_in, n_outputs, depth: make_net(n_features_in, n_outputs), "'depth'"),
    (lambda n_features_in, n_outputs, /: make_net(n_features_in, n_outputs),
     "'n_features_in', 'n_outputs'"),
])
def test_builder_parameters_left_without_value_are_named_before_the_call(builder, missing):
    X, y = _data()
    est = TorchRegressor(builder, **FAST)
    with pytest.raises(TypeError, match=f"no value for {missing}.*net_builder_kwargs"):
        est.fit(X, y)
    assert not hasattr(est, "net_")


def test_builder_with_var_keywords_or_defaults_is_called_without_complaint():
    X, y = _data()
    TorchRegressor(lambda **kw: make_net(kw["n_features_in"], kw["n_outputs"]), **FAST).fit(X, y)
    TorchRegressor(lambda n_features_in, n_outputs, width=4, *rest: make_net(
        n_features_in, n_outputs, width), **FAST).fit(X, y)


def test_builder_returning_non_module_raises_type_error():
    X, y = _data()
    with pytest.raises(TypeError, match="torch.nn.Module"):
        TorchRegressor(lambda: "not a net", **FAST).fit(X, y)


def test_n_features_in_set_for_arrays():
    X, y = _data(n_features=4)
    est = TorchRegressor(**FAST).fit(X, y)
    assert est.n_features_in_ == 4
    assert not hasattr(est, "feature_names_in_")


def test_dataframe_sets_feature_names_in():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    est = TorchRegressor(**FAST).fit(df, y)
    assert list(est.feature_names_in_) == ["a", "b", "c"]
    assert est.n_features_in_ == 3
    same = TorchRegressor(**FAST).fit(X, y)
    np.testing.assert_array_equal(est.predict(df), same.predict(X))


def test_dataframe_with_other_column_names_at_predict_raises():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    est = TorchRegressor(**FAST).fit(pd.DataFrame(X, columns=["a", "b", "c"]), y)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(pd.DataFrame(X, columns=["a", "b", "z"]))


def test_wrong_number_of_features_at_predict_raises():
    X, y = _data()
    est = TorchRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :2])


def test_device_auto_resolves_to_cpu_here():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    X, y = _data()
    est = TorchRegressor(**{**FAST, "device": "auto"}).fit(X, y)
    assert est.device == "auto"
    assert est.device_.type == "cpu"
    assert next(est.net_.parameters()).device.type == "cpu"


@pytest.mark.parametrize("cls", [TorchRegressor, TorchClassifier])
@pytest.mark.parametrize(
    "param",
    [{"n_epochs": 0}, {"batch_size": 0}, {"train_prop": 1.5}, {"train_prop": 0.0},
     {"learning_rate": 0.0}, {"n_best_nets": 0}, {"hidden_layer_sizes": (0,)},
     {"activation": "nope"}, {"dropout": 1.0}, {"device": "nope"}],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
def test_invalid_parameter_raises_at_fit_not_construction(cls, param):
    X, y = _data(n=30)
    if cls is TorchClassifier:
        y = (y > 0).astype(int)
    est = cls(**{**FAST, **param})  # construction accepts anything
    with pytest.raises(ValueError):
        est.fit(X, y)
    assert not hasattr(est, "net_")


@pytest.mark.parametrize("changed", [{"hidden_layer_sizes": (8,)}, {"activation": "tanh"},
                                     {"dropout": 0.3}])
def test_warm_start_refuses_network_parameters_changed_since_fit(changed):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 3))
    y = X.sum(axis=1)
    reg = TorchRegressor(n_epochs=2, device="cpu", random_state=0, warm_start=True).fit(X, y)
    before = reg.predict(X)
    reg.set_params(n_epochs=3).fit(X, y)  # other parameters: continues
    assert reg.n_iter_ == 3
    reg.set_params(**changed)
    with pytest.raises(ValueError, match=f"warm_start continues.*{next(iter(changed))}"):
        reg.fit(X, y)
    assert not np.array_equal(reg.predict(X), before)  # the continued fit is kept
    reg.set_params(warm_start=False).fit(X, y)  # a cold fit applies them


def test_numpy_scalar_parameters_act_as_python_numbers():
    # sklearn's validation admits numpy scalars; the trainer core used to refuse
    # float32 ones (learning_rate, train_prop).
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 3))
    y = X.sum(axis=1)
    plain = TorchRegressor(n_epochs=3, device="cpu", random_state=0, learning_rate=0.0625,
                           train_prop=0.75, batch_size=16).fit(X, y)
    numpy = TorchRegressor(n_epochs=np.int64(3), device="cpu", random_state=0,
                           learning_rate=np.float32(0.0625), train_prop=np.float32(0.75),
                           batch_size=np.int64(16), n_best_nets=np.int32(10),
                           weight_decay=np.float32(0.0)).fit(X, y)
    assert type(numpy.learning_rate_) is float and numpy.learning_rate_ == 0.0625
    np.testing.assert_array_equal(numpy.predict(X), plain.predict(X))
