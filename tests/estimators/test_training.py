"""What fit does with the trainer core: early stopping, history, seeds, warm start, files."""

import os

import numpy as np
import pytest
import torch

from sktorch_auto import TorchClassifier, TorchRegressor

FAST = dict(n_epochs=20, learning_rate=1e-2, device="cpu", random_state=0)


def _linear(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=n)


def _noise(n=200, seed=0):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(n, 4)), rng.normal(size=n)


def test_early_stopping_on_pure_noise():
    X, y = _noise()
    reg = TorchRegressor(n_epochs=100, learning_rate=1e-2, device="cpu", random_state=0)
    reg.fit(X, y)
    assert reg.stop_reason_ == "early_stopping"
    assert reg.n_iter_ < 60


def test_tol_stops_a_separable_fit_whose_loss_keeps_halving():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    y = np.where(X[:, 0] > 0, "a", "b")
    fits = {tol: TorchClassifier(n_epochs=60, tol=tol, learning_rate=1e-2, device="cpu",
                                 random_state=0).fit(X, y) for tol in (0.0, 0.01)}
    assert fits[0.0].get_params()["tol"] == 0.0
    assert fits[0.01].stop_reason_ == "early_stopping"
    assert fits[0.01].n_iter_ < fits[0.0].n_iter_
    assert fits[0.01].score(X, y) > 0.97


def test_history_has_one_entry_per_epoch_with_losses_and_learning_rate():
    X, y = _linear()
    reg = TorchRegressor(**FAST).fit(X, y)
    assert 1 <= reg.n_iter_ <= FAST["n_epochs"]
    assert len(reg.history_) == reg.n_iter_
    for entry in reg.history_:
        assert {"train_loss", "valid_loss", "learning_rate"} <= set(entry)
        assert np.isfinite(entry["train_loss"]) and np.isfinite(entry["valid_loss"])
        assert entry["learning_rate"] > 0
    assert reg.history_[0]["learning_rate"] == pytest.approx(FAST["learning_rate"])


def test_best_epoch_is_the_epoch_of_the_lowest_validation_loss():
    X, y = _noise()
    reg = TorchRegressor(n_epochs=100, learning_rate=1e-2, device="cpu", random_state=0)
    reg.fit(X, y)
    assert 1 <= reg.best_epoch_ <= reg.n_iter_
    losses = [entry["valid_loss"] for entry in reg.history_]
    assert reg.best_loss_ == pytest.approx(min(losses))
    assert losses[reg.best_epoch_ - 1] == pytest.approx(reg.best_loss_)


def test_n_best_nets_averages_several_epochs():
    X, y = _linear()
    reg = TorchRegressor(**{**FAST, "n_best_nets": 3}).fit(X, y)
    assert 1 <= len(reg.averaged_epochs_) <= 3
    assert reg.best_epoch_ in reg.averaged_epochs_
    assert all(1 <= e <= reg.n_iter_ for e in reg.averaged_epochs_)


def test_training_improves_on_the_first_epoch():
    X, y = _linear()
    reg = TorchRegressor(**FAST).fit(X, y)
    assert reg.best_loss_ < 0.5 * reg.history_[0]["valid_loss"]


@pytest.mark.parametrize("cls", [TorchRegressor, TorchClassifier])
def test_same_random_state_gives_identical_predictions(cls):
    X, y = _linear()
    if cls is TorchClassifier:
        y = (y > 0).astype(int)
    method = "predict" if cls is TorchRegressor else "predict_proba"
    first = getattr(cls(**FAST).fit(X, y), method)(X)
    second = getattr(cls(**FAST).fit(X, y), method)(X)
    assert np.array_equal(first, second)


def test_same_random_state_instance_seed_gives_identical_predictions():
    X, y = _linear()
    first = TorchRegressor(**{**FAST, "random_state": np.random.RandomState(5)}).fit(X, y)
    second = TorchRegressor(**{**FAST, "random_state": np.random.RandomState(5)}).fit(X, y)
    assert np.array_equal(first.predict(X), second.predict(X))


def test_different_random_state_gives_different_predictions():
    X, y = _linear()
    first = TorchRegressor(**FAST).fit(X, y).predict(X)
    second = TorchRegressor(**{**FAST, "random_state": 1}).fit(X, y).predict(X)
    assert not np.array_equal(first, second)


def test_random_state_none_gives_different_predictions():
    X, y = _linear()
    params = {**FAST, "random_state": None}
    first = TorchRegressor(**params).fit(X, y).predict(X)
    second = TorchRegressor(**params).fit(X, y).predict(X)
    assert not np.array_equal(first, second)


def test_refit_of_same_estimator_is_reproducible():
    X, y = _linear()
    reg = TorchRegressor(**FAST)
    first = reg.fit(X, y).predict(X)
    second = reg.fit(X, y).predict(X)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("cls", [TorchRegressor, TorchClassifier])
def test_fit_leaves_global_torch_rng_state_unchanged(cls):
    X, y = _linear()
    if cls is TorchClassifier:
        y = (y > 0).astype(int)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    cls(**FAST).fit(X, y)
    after = torch.random.get_rng_state()
    assert torch.equal(before, after)


def test_fit_with_random_state_none_leaves_global_torch_rng_state_unchanged():
    X, y = _linear()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    TorchRegressor(**{**FAST, "random_state": None}).fit(X, y)
    assert torch.equal(before, torch.random.get_rng_state())


def test_fit_with_fixed_random_state_leaves_global_numpy_rng_state_unchanged():
    X, y = _linear()
    np.random.seed(123)
    before = np.random.get_state()
    TorchRegressor(**FAST).fit(X, y)
    after = np.random.get_state()
    assert before[0] == after[0]
    assert np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


def test_warm_start_continues_from_fitted_weights():
    X, y = _linear()
    reg = TorchRegressor(**{**FAST, "warm_start": True}).fit(X, y)
    net = reg.net_
    first_start = reg.history_[0]["valid_loss"]
    first_best = reg.best_loss_
    reg.fit(X, y)
    assert reg.net_ is net
    second_start = reg.history_[0]["valid_loss"]
    # The first warm epoch starts near the fitted loss (a fresh optimizer may bump it a
    # little), far below the first epoch of a fit from scratch.
    assert second_start < 0.05 * first_start
    assert second_start < 5 * first_best


def test_warm_start_false_refits_from_scratch():
    X, y = _linear()
    reg = TorchRegressor(**FAST).fit(X, y)
    net = reg.net_
    first_history = [entry["valid_loss"] for entry in reg.history_]
    reg.fit(X, y)
    assert reg.net_ is not net
    # Same random_state, fresh weights: the same run again, from the same first epoch.
    assert reg.history_[0]["valid_loss"] == first_history[0]


def test_warm_start_classifier_with_new_classes_raises():
    X, y = _linear()
    clf = TorchClassifier(**{**FAST, "warm_start": True}).fit(X, (y > 0).astype(int))
    with pytest.raises(ValueError):
        clf.fit(X, np.where(y > 0, 2, 5))


def test_fit_writes_no_files_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = _linear()
    TorchRegressor(**{**FAST, "n_best_nets": 3}).fit(X, y)
    TorchClassifier(**FAST).fit(X, (y > 0).astype(int))
    assert os.listdir(tmp_path) == []


def test_checkpoint_writes_best_network_file(tmp_path):
    X, y = _linear()
    TorchRegressor(**{**FAST, "n_best_nets": 1, "checkpoint": str(tmp_path / "run")}).fit(X, y)
    assert (tmp_path / "run.pt").is_file()
    assert not (tmp_path / "run_avg.pt").exists()


def test_checkpoint_with_averaging_writes_averaged_file(tmp_path):
    X, y = _linear()
    TorchRegressor(**{**FAST, "n_best_nets": 3, "checkpoint": tmp_path / "run"}).fit(X, y)
    assert (tmp_path / "run.pt").is_file()
    assert (tmp_path / "run_avg.pt").is_file()



def test_warm_start_with_other_number_of_outputs_raises_warm_start_error():
    X, y = _linear()
    reg = TorchRegressor(**{**FAST, "warm_start": True}).fit(X, y)
    with pytest.raises(ValueError, match="warm_start"):
        reg.fit(X, np.column_stack([y, y]))


def test_failed_warm_start_fit_keeps_fitted_regressor_usable():
    X, y = _linear()
    reg = TorchRegressor(**{**FAST, "warm_start": True}).fit(X, y)
    before = reg.predict(X)
    with pytest.raises(ValueError):
        reg.fit(X, np.column_stack([y, y]))
    assert reg.n_outputs_ == 1
    after = reg.predict(X)
    assert after.shape == before.shape
    assert np.array_equal(after, before)


def test_failed_warm_start_fit_keeps_fitted_classifier_usable():
    X, y = _linear()
    labels = (y > 0).astype(int)
    clf = TorchClassifier(**{**FAST, "warm_start": True}).fit(X, labels)
    before = clf.predict(X)
    with pytest.raises(ValueError):  # binary network, multilabel y with 3 labels
        clf.fit(X, np.column_stack([labels, 1 - labels, labels]))
    assert clf.classes_.tolist() == [0, 1]
    assert np.array_equal(clf.predict(X), before)


def test_warm_start_multiclass_to_multilabel_does_not_keep_softmax():
    """Same number of network outputs, other target type: the warm fit must either refuse
    (ValueError) or train with the multilabel criterion, not the old softmax one."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 3))
    Y = (X > 0).astype(int)  # three independent labels
    clf = TorchClassifier(**{**FAST, "n_epochs": 30, "warm_start": True})
    clf.fit(X, rng.randint(0, 3, size=len(X)))
    try:
        clf.fit(X, Y)
    except ValueError:
        return
    assert np.mean(clf.predict(X) == Y) > 0.9


def test_auto_activation_is_gelu_for_regression_and_relu_for_classification():
    X, y = _linear()
    reg = TorchRegressor(**{**FAST, "n_epochs": 1}).fit(X, y)
    clf = TorchClassifier(**{**FAST, "n_epochs": 1}).fit(X, y > np.median(y))
    tanh = TorchRegressor(**{**FAST, "n_epochs": 1}, activation="tanh").fit(X, y)
    kinds = [{type(m).__name__ for m in est.net_.modules()} for est in (reg, clf, tanh)]
    assert "GELU" in kinds[0] and "ReLU" not in kinds[0]
    assert "ReLU" in kinds[1] and "GELU" not in kinds[1]
    assert "Tanh" in kinds[2] and "GELU" not in kinds[2]
    assert reg.get_params()["activation"] == "auto"  # the parameter itself is untouched


@pytest.mark.parametrize("n", [2, 5, 16, 40, 60, 99, 100, 150, 1000, 12345])
def test_auto_train_prop_validates_at_least_ten_rows_within_a_fifth(n):
    from sktorch_auto.core.split import train_valid_split
    from sktorch_auto.estimators.base import auto_train_prop

    train, valid = train_valid_split(n, auto_train_prop(n), seed=0)
    assert len(train) + len(valid) == n
    if n >= 100:  # the seed's 0.9, exactly
        assert auto_train_prop(n) == 0.9
    else:
        assert len(valid) == max(1, min(10, round(0.2 * n)))


def test_train_prop_auto_is_the_resolved_share_and_enlarges_small_validation_parts():
    from sktorch_auto.estimators.base import auto_train_prop

    assert TorchRegressor().get_params()["train_prop"] == "auto"
    for n in (60, 150):
        X, y = _linear(n)
        fits = {tp: TorchRegressor(train_prop=tp, **FAST).fit(X, y)
                for tp in ("auto", auto_train_prop(n), 0.9)}
        np.testing.assert_array_equal(fits["auto"].predict(X), fits[auto_train_prop(n)].predict(X))
        same_as_seed = np.array_equal(fits["auto"].predict(X), fits[0.9].predict(X))
        assert same_as_seed == (n >= 100)  # 60 rows: 10 validate instead of 6


def test_classifier_train_prop_auto_is_the_seeds_share():
    X, y = _linear(60)
    labels = y > np.median(y)
    fits = [TorchClassifier(train_prop=tp, **FAST).fit(X, labels) for tp in ("auto", 0.9)]
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))
