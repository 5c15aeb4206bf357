"""Persistence: save/load, joblib and pickle round trips (E1, E4)."""

import pickle

import joblib
import numpy as np
import pytest
import torch

from sktorch_auto import TorchClassifier, TorchRegressor

FAST = dict(n_epochs=15, learning_rate=1e-2, device="cpu", random_state=0)


def make_net(n_features_in, n_outputs, width=8):
    """A user's builder, importable from this module, not registered with the library."""
    return torch.nn.Sequential(
        torch.nn.Linear(n_features_in, width), torch.nn.Tanh(), torch.nn.Linear(width, n_outputs)
    )


def _data(n=80, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 3))
    return X, 100.0 + X @ [1.0, -2.0, 0.5]


@pytest.fixture(scope="module")
def regressor():
    X, y = _data()
    return TorchRegressor(**FAST).fit(X, y), X


@pytest.fixture(scope="module")
def classifier():
    X, y = _data()
    labels = np.array(["low", "mid", "high"])[np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))]
    return TorchClassifier(**FAST).fit(X, labels), X


def test_save_load_regressor_gives_identical_predictions(regressor, tmp_path):
    reg, X = regressor
    reg.save(tmp_path / "reg.skt")
    loaded = TorchRegressor.load(tmp_path / "reg.skt")
    assert type(loaded) is TorchRegressor
    assert np.array_equal(loaded.predict(X), reg.predict(X))
    assert loaded.get_params() == reg.get_params()
    assert loaded.n_features_in_ == reg.n_features_in_
    assert loaded.n_iter_ == reg.n_iter_
    assert loaded.history_ == reg.history_


def test_save_load_accepts_str_path(regressor, tmp_path):
    reg, X = regressor
    reg.save(str(tmp_path / "reg.skt"))
    assert np.array_equal(TorchRegressor.load(str(tmp_path / "reg.skt")).predict(X),
                          reg.predict(X))


def test_save_load_classifier_with_string_classes(classifier, tmp_path):
    clf, X = classifier
    clf.save(tmp_path / "clf.skt")
    loaded = TorchClassifier.load(tmp_path / "clf.skt")
    assert loaded.classes_.tolist() == ["high", "low", "mid"]
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert np.array_equal(loaded.predict(X), clf.predict(X))
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_save_load_multilabel_classifier(tmp_path):
    X, y = _data()
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    clf = TorchClassifier(**FAST).fit(X, Y)
    clf.save(tmp_path / "ml.skt")
    loaded = TorchClassifier.load(tmp_path / "ml.skt")
    assert np.array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.predict(X).shape == Y.shape


def test_save_load_keeps_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = _data()
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    reg = TorchRegressor(**FAST).fit(df, y)
    reg.save(tmp_path / "df.skt")
    loaded = TorchRegressor.load(tmp_path / "df.skt")
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    assert np.array_equal(loaded.predict(df), reg.predict(df))


def test_save_load_mixed_target_regressor(tmp_path):
    X, y = _data()
    Y = np.column_stack([y, (X[:, 0] > 0).astype(float)])
    reg = TorchRegressor(**FAST).fit(X, Y)
    reg.save(tmp_path / "mixed.skt")
    loaded = TorchRegressor.load(tmp_path / "mixed.skt")
    assert np.array_equal(loaded.predict(X), reg.predict(X))


@pytest.mark.parametrize("fixture", ["regressor", "classifier"])
def test_joblib_round_trip_gives_identical_predictions(fixture, request, tmp_path):
    est, X = request.getfixturevalue(fixture)
    joblib.dump(est, tmp_path / "est.joblib")
    loaded = joblib.load(tmp_path / "est.joblib")
    assert np.array_equal(loaded.predict(X), est.predict(X))


@pytest.mark.parametrize("fixture", ["regressor", "classifier"])
def test_pickle_round_trip_gives_identical_predictions(fixture, request):
    est, X = request.getfixturevalue(fixture)
    loaded = pickle.loads(pickle.dumps(est))
    assert np.array_equal(loaded.predict(X), est.predict(X))
    if fixture == "classifier":
        assert np.array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_pickling_does_not_move_or_alter_the_original(regressor):
    reg, X = regressor
    before = reg.predict(X)
    device = reg.device_
    pickle.dumps(reg)
    assert reg.device_ == device
    assert isinstance(reg.device_, torch.device)
    assert np.array_equal(reg.predict(X), before)


def test_load_classifier_file_as_regressor_raises(classifier, tmp_path):
    clf, _ = classifier
    clf.save(tmp_path / "clf.skt")
    with pytest.raises(ValueError, match="TorchClassifier"):
        TorchRegressor.load(tmp_path / "clf.skt")


def test_load_regressor_file_as_classifier_raises(regressor, tmp_path):
    reg, _ = regressor
    reg.save(tmp_path / "reg.skt")
    with pytest.raises(ValueError, match="TorchRegressor"):
        TorchClassifier.load(tmp_path / "reg.skt")


def test_save_unfitted_raises(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TorchRegressor().save(tmp_path / "x.skt")


def test_user_builder_load_without_builder_raises(tmp_path):
    X, y = _data()
    reg = TorchRegressor(make_net, {"width": 5}, **FAST).fit(X, y)
    reg.save(tmp_path / "user.skt")
    with pytest.raises(ValueError, match="net_builder"):
        TorchRegressor.load(tmp_path / "user.skt")


def test_user_builder_load_with_builder_works(tmp_path):
    X, y = _data()
    reg = TorchRegressor(make_net, {"width": 5}, **FAST).fit(X, y)
    reg.save(tmp_path / "user.skt")
    loaded = TorchRegressor.load(tmp_path / "user.skt", net_builder=make_net)
    assert loaded.net_builder is make_net
    assert loaded.net_builder_kwargs == {"width": 5}
    assert loaded.net_.net[0].out_features == 5
    assert np.array_equal(loaded.predict(X), reg.predict(X))


def test_user_builder_load_with_trust_builder_imports_it(tmp_path):
    X, y = _data()
    reg = TorchRegressor(make_net, {"width": 5}, **FAST).fit(X, y)
    reg.save(tmp_path / "user.skt")
    loaded = TorchRegressor.load(tmp_path / "user.skt", trust_builder=True)
    assert np.array_equal(loaded.predict(X), reg.predict(X))


def test_pickled_cuda_device_unpickles_on_cpu(regressor):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    reg, X = regressor
    expected = reg.predict(X)
    fake = pickle.loads(pickle.dumps(reg))
    fake.device_ = torch.device("cuda")  # as if fitted on a GPU machine
    loaded = pickle.loads(pickle.dumps(fake))
    assert isinstance(loaded.device_, torch.device)
    assert loaded.device_.type == "cpu"
    assert np.array_equal(loaded.predict(X), expected)


def test_load_onto_explicit_device(regressor, tmp_path):
    reg, X = regressor
    reg.save(tmp_path / "reg.skt")
    loaded = TorchRegressor.load(tmp_path / "reg.skt", device="cpu")
    assert loaded.device_.type == "cpu"
    assert np.array_equal(loaded.predict(X), reg.predict(X))


def test_loaded_estimator_can_be_refitted(regressor, tmp_path):
    reg, X = regressor
    reg.save(tmp_path / "reg.skt")
    loaded = TorchRegressor.load(tmp_path / "reg.skt")
    _, y = _data()
    refit = loaded.fit(X, y)
    assert np.array_equal(refit.predict(X), reg.predict(X))


def test_user_builder_without_importable_name_load_without_builder_raises(tmp_path):
    def local_net(n_features_in, n_outputs, width=8):  # "<locals>" in its name: not recordable
        return make_net(n_features_in, n_outputs, width)

    X, y = _data()
    reg = TorchRegressor(local_net, {"width": 5}, **FAST).fit(X, y)
    reg.save(tmp_path / "local.skt")
    with pytest.raises(ValueError, match="net_builder"):
        TorchRegressor.load(tmp_path / "local.skt")
    loaded = TorchRegressor.load(tmp_path / "local.skt", net_builder=local_net)
    assert np.array_equal(loaded.predict(X), reg.predict(X))


def test_save_load_with_pathlike_checkpoint_parameter(tmp_path):
    X, y = _data()
    reg = TorchRegressor(**{**FAST, "checkpoint": tmp_path / "run"}).fit(X, y)
    reg.save(tmp_path / "reg.skt")
    loaded = TorchRegressor.load(tmp_path / "reg.skt")
    assert np.array_equal(loaded.predict(X), reg.predict(X))
    assert str(loaded.checkpoint) == str(tmp_path / "run")


def test_save_load_with_random_state_instance(tmp_path):
    X, y = _data()
    reg = TorchRegressor(**{**FAST, "random_state": np.random.RandomState(0)}).fit(X, y)
    reg.save(tmp_path / "reg.skt")
    loaded = TorchRegressor.load(tmp_path / "reg.skt")
    assert np.array_equal(loaded.predict(X), reg.predict(X))


def test_save_load_class_weight_with_numpy_integer_keys(tmp_path):
    X, y = _data()
    labels = (y > 100).astype(int)
    weights = dict(zip(np.unique(labels), [1.0, 2.0]))  # keys are numpy integers
    clf = TorchClassifier(**FAST, class_weight=weights).fit(X, labels)
    clf.save(tmp_path / "clf.skt")
    loaded = TorchClassifier.load(tmp_path / "clf.skt")
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.class_weight == {0: 1.0, 1: 2.0}


def _net_with_activation(n_features_in, n_outputs, activation=torch.nn.ReLU):
    return torch.nn.Sequential(torch.nn.Linear(n_features_in, 4), activation(),
                               torch.nn.Linear(4, n_outputs))


def test_save_with_non_plain_builder_argument_raises_value_error(tmp_path):
    """Like a custom criterion, a builder argument that is not plain data cannot go in the
    safe format: save says so (and points to joblib) instead of failing inside JSON."""
    X, y = _data()
    reg = TorchRegressor(_net_with_activation, {"activation": torch.nn.Tanh}, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="joblib"):
        reg.save(tmp_path / "reg.skt")
    assert not (tmp_path / "reg.skt").exists()
    # joblib keeps it.
    joblib.dump(reg, tmp_path / "reg.joblib")
    assert np.array_equal(joblib.load(tmp_path / "reg.joblib").predict(X), reg.predict(X))


def _net_with_sizes(n_features_in, n_outputs, sizes=(4,), names=(), nested=None):
    layers, width = [], n_features_in
    for size in sizes:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, n_outputs))


def test_save_load_keeps_tuples_and_lists_in_parameters(tmp_path):
    """Builder arguments come back with their own types: a tuple as a tuple (so that the
    loaded estimator's parameters equal the saved one's), a list as a list."""
    X, y = _data()
    kwargs = {"sizes": (6, 5), "names": ["a", "b"], "nested": {"pair": (1, 2)}}
    reg = TorchRegressor(_net_with_sizes, kwargs, **FAST).fit(X, y)
    reg.save(tmp_path / "reg.skt")
    loaded = TorchRegressor.load(tmp_path / "reg.skt", net_builder=_net_with_sizes)
    assert loaded.net_builder_kwargs == kwargs
    assert type(loaded.net_builder_kwargs["sizes"]) is tuple
    assert type(loaded.net_builder_kwargs["names"]) is list
    assert type(loaded.net_builder_kwargs["nested"]["pair"]) is tuple
    assert type(loaded.hidden_layer_sizes) is tuple
    assert np.array_equal(loaded.predict(X), reg.predict(X))


@pytest.mark.parametrize("changed", [
    {"activation": "relu"}, {"hidden_layer_sizes": (8,)}, {"dropout": 0.5},
    {"numeric_embedding": None}, {"standardize": False}, {"numeric_embedding": "periodic"},
])
def test_save_after_set_params_loads_the_network_that_was_fitted(changed, tmp_path):
    # set_params after fit changes the parameters, not the fitted network: the file
    # keeps both, as a pickle does (it used to rebuild the network from the changed
    # parameters: other predictions, or a state_dict error).
    X, y = _data(n=120)
    reg = TorchRegressor(n_epochs=3, device="cpu", random_state=0).fit(X, y)
    expected = reg.predict(X)
    reg.set_params(**changed)
    np.testing.assert_array_equal(reg.predict(X), expected)
    reg.save(tmp_path / "m.skt")
    loaded = TorchRegressor.load(tmp_path / "m.skt")
    np.testing.assert_array_equal(loaded.predict(X), expected)
    (name, value), = changed.items()
    assert loaded.get_params()[name] == value
    refit = loaded.set_params(warm_start=False).fit(X, y)  # the parameters apply on refit
    assert refit.get_params()[name] == value


def test_save_after_changing_builder_arguments_loads_the_fitted_network(tmp_path):
    X, y = _data(n=120)
    reg = TorchRegressor(make_net, {"width": 8}, **FAST).fit(X, y)
    expected = reg.predict(X)
    reg.set_params(net_builder_kwargs__width=4)
    reg.save(tmp_path / "m.skt")
    loaded = TorchRegressor.load(tmp_path / "m.skt", net_builder=make_net)
    np.testing.assert_array_equal(loaded.predict(X), expected)
    assert loaded.net_builder_kwargs == {"width": 4}


def test_files_without_the_architecture_record_still_load(regressor, tmp_path):
    # Files written before the fitted architecture was recorded: built from the params.
    from sktorch_auto.core.checkpoint import load_checkpoint, save_checkpoint

    reg, X = regressor
    reg.save(tmp_path / "m.skt")
    content = load_checkpoint(tmp_path / "m.skt")
    del content["fitted"]["architecture"]
    save_checkpoint(tmp_path / "old.skt", content)
    np.testing.assert_array_equal(TorchRegressor.load(tmp_path / "old.skt").predict(X),
                                  reg.predict(X))
