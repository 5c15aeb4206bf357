"""Metadata routing of sample_weight through Pipeline, cross_validate, GridSearchCV."""

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktorch_auto import TorchRegressor

FAST = dict(n_epochs=40, device="cpu", random_state=0, learning_rate=1e-2)


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def _contradictory(n=160):
    """Half the rows follow y = 3x, the other half y = -3x; weights pick a half."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(n, 1))
    first = np.arange(n) % 2 == 0  # interleaved, so every fold has both halves
    y = np.where(first, 3 * X[:, 0], -3 * X[:, 0])
    return X, y, first.astype(float)


def _slope(model, X):
    return np.polyfit(X[:, 0], model.predict(X), 1)[0]


def test_weights_reach_the_estimator_through_a_pipeline(routing):
    X, y, w = _contradictory()
    est = TorchRegressor(**FAST).set_fit_request(sample_weight=True)
    pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), est)
    pipe.fit(X, y, sample_weight=w)
    assert _slope(pipe, X) > 2  # follows the weighted half (y = 3x)


def test_weights_reach_the_estimator_through_cross_validate(routing):
    X, y, w = _contradictory()
    est = TorchRegressor(**FAST).set_fit_request(sample_weight=True)
    est.set_score_request(sample_weight=False)
    result = cross_validate(est, X, y, cv=2, params={"sample_weight": w},
                            return_estimator=True)
    assert all(_slope(e, X) > 2 for e in result["estimator"])


def test_weights_reach_the_estimator_through_grid_search(routing):
    X, y, w = _contradictory()
    est = TorchRegressor(**FAST).set_fit_request(sample_weight=True)
    est.set_score_request(sample_weight=True)
    search = GridSearchCV(est, {"hidden_layer_sizes": [(8,), (16,)]}, cv=2)
    search.fit(X, y, sample_weight=w)
    assert _slope(search.best_estimator_, X) > 2


def test_unrequested_weights_are_an_error_with_routing_on(routing):
    X, y, w = _contradictory()
    pipe = make_pipeline(StandardScaler(), TorchRegressor(**FAST))
    with pytest.raises(Exception, match="sample_weight"):
        pipe.fit(X, y, sample_weight=w)


def test_without_routing_grid_search_passes_fit_params():
    X, y, w = _contradictory()
    search = GridSearchCV(TorchRegressor(**FAST), {"learning_rate": [1e-2]}, cv=2)
    search.fit(X, y, sample_weight=w)
    assert _slope(search.best_estimator_, X) > 2
    unweighted = TorchRegressor(**FAST).fit(X, y)
    assert abs(_slope(unweighted, X)) < 1.5  # the halves cancel out without weights
