"""The estimators inside scikit-learn's tools: Pipeline, cross_val_score, GridSearchCV (E3, E4)."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sktorch_auto import TorchClassifier, TorchRegressor

FAST = dict(n_epochs=20, learning_rate=1e-2, device="cpu", random_state=0)


def make_net(n_features_in, n_outputs, width=8):
    """A user's builder with its own argument; module level so that joblib workers unpickle it."""
    return torch.nn.Sequential(
        torch.nn.Linear(n_features_in, width), torch.nn.Tanh(), torch.nn.Linear(width, n_outputs)
    )


def _regression(n=120, seed=0):
    rng = np.random.RandomState(seed)
    # Features on very different scales, so that the scaler in the pipeline matters.
    X = rng.normal(size=(n, 3)) * [1.0, 100.0, 0.01] + [0.0, 500.0, -3.0]
    y = X @ [1.0, 0.02, 100.0] + 10 + rng.normal(scale=0.1, size=n)
    return X, y


def _classification(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


def test_pipeline_with_scaler_fits_and_scores():
    X, y = _regression()
    pipe = Pipeline([("scale", StandardScaler()), ("reg", TorchRegressor(**FAST))])
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (len(X),)
    assert pipe.score(X, y) > 0.9
    assert pipe.named_steps["reg"].n_features_in_ == 3


def test_cross_val_score_regressor():
    X, y = _regression()
    scores = cross_val_score(TorchRegressor(**FAST), StandardScaler().fit_transform(X), y,
                             cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,)
    assert np.all(np.isfinite(scores))
    assert scores.mean() > 0.8


def test_cross_val_score_classifier():
    X, y = _classification()
    scores = cross_val_score(TorchClassifier(**FAST), X, y,
                             cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,)
    assert scores.mean() > 0.8


def _check_search(search, grid, X):
    assert set(search.best_params_) == set(grid)
    for name, value in search.best_params_.items():
        assert value in grid[name]
    assert len(search.cv_results_["params"]) == int(np.prod([len(v) for v in grid.values()]))
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    pred = search.predict(X)
    assert pred.shape == (len(X),)
    assert np.all(np.isfinite(pred))


def test_grid_search_over_trainer_parameters_in_parallel():
    X, y = _regression()
    X = StandardScaler().fit_transform(X)
    grid = {"learning_rate": [1e-3, 1e-2], "n_best_nets": [1, 3]}
    search = GridSearchCV(TorchRegressor(n_epochs=15, device="cpu", random_state=0), grid,
                          cv=2, n_jobs=2).fit(X, y)
    _check_search(search, grid, X)
    assert search.best_estimator_.learning_rate == search.best_params_["learning_rate"]
    assert search.best_estimator_.n_best_nets == search.best_params_["n_best_nets"]


def test_grid_search_over_hidden_layer_sizes():
    X, y = _classification()
    grid = {"hidden_layer_sizes": [(), (8,), (16, 8)]}
    search = GridSearchCV(TorchClassifier(**FAST), grid, cv=2, n_jobs=2).fit(X, y)
    _check_search(search, grid, X)
    # The refit network has the chosen architecture: one Linear per hidden layer, plus output.
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in search.best_estimator_.net_.modules())
    assert n_linear == len(search.best_params_["hidden_layer_sizes"]) + 1
    assert set(search.predict(X)) <= {0, 1}


def test_grid_search_over_user_builder_argument():
    X, y = _regression()
    X = StandardScaler().fit_transform(X)
    grid = {"net_builder_kwargs__width": [4, 16]}
    est = TorchRegressor(make_net, {"width": 8}, **FAST)
    search = GridSearchCV(est, grid, cv=2, n_jobs=2).fit(X, y)
    _check_search(search, grid, X)
    width = search.best_params_["net_builder_kwargs__width"]
    best = search.best_estimator_
    assert best.net_builder_kwargs == {"width": width}
    assert best.net_.net[0].out_features == width
    # The searched estimator itself is untouched.
    assert est.net_builder_kwargs == {"width": 8}


def test_grid_search_over_user_builder_argument_inside_pipeline():
    X, y = _regression()
    pipe = make_pipeline(StandardScaler(), TorchRegressor(make_net, **FAST))
    grid = {"torchregressor__net_builder_kwargs__width": [4, 12]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    _check_search(search, grid, X)
    width = search.best_params_["torchregressor__net_builder_kwargs__width"]
    assert search.best_estimator_[-1].net_.net[0].out_features == width


def test_hidden_layer_sizes_as_an_int_is_one_layer_as_in_sklearn():
    X, y = _classification()
    net = TorchClassifier(**{**FAST, "n_epochs": 3}, hidden_layer_sizes=12).fit(X, y).net_
    widths = [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [12, 1]
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        TorchClassifier(hidden_layer_sizes=0).fit(X, y)
