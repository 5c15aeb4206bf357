"""The pure epoch-level state machine (S9-S13) on scripted loss sequences."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sktorch_auto.core.policy import (
    GOLDEN_RATIO,
    BestVersions,
    TrainingPolicy,
    patience_for,
)


def run(policy, losses):
    return [policy.update(loss) for loss in losses]


def flags(decisions, attr):
    """1-based epochs where ``attr`` of the decision is true."""
    return [i + 1 for i, d in enumerate(decisions) if getattr(d, attr)]


# ----------------------------------------------------------------------------- S9


@pytest.mark.parametrize(
    "n_epochs, expected",
    [(1, 1), (2, 1), (6, 1), (7, 2), (10, 2), (20, 3), (21, 4), (50, 8), (100, 15), (101, 16)],
)
def test_s9_countdown_is_15_percent_of_n_epochs(n_epochs, expected):
    assert patience_for(n_epochs) == expected
    assert TrainingPolicy(n_epochs, 1e-3).patience == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=100_000))
def test_s9_countdown_is_ceil_of_15_percent_at_least_one(n_epochs):
    # Exact integer arithmetic: ceil(15 * n / 100), at least 1.
    assert patience_for(n_epochs) == max(1, -(-15 * n_epochs // 100))


def test_s9_stops_when_countdown_runs_out():
    policy = TrainingPolicy(20, 1e-3, with_restarts=False)  # countdown 3
    decisions = run(policy, [1.0, 1.0, 1.0, 1.0, 1.0])
    assert flags(decisions, "stop") == [4, 5]
    assert not any(d.diverged for d in decisions)


def test_s9_progress_resets_the_countdown():
    policy = TrainingPolicy(20, 1e-3, with_restarts=False)  # countdown 3
    decisions = run(policy, [1.0, 1.0, 1.0, 0.9, 0.9, 0.9, 0.9])
    assert flags(decisions, "progress") == [1, 4]
    assert flags(decisions, "stop") == [7]


def test_s9_improvement_below_half_percent_is_new_best_but_not_progress():
    policy = TrainingPolicy(100, 1e-3)
    first, small = run(policy, [1.0, 0.996])
    assert first.progress and first.new_best
    assert small.new_best and not small.progress
    assert policy.best_loss == 0.996
    assert policy.stall == 1


def test_s9_improvement_of_half_percent_or_more_is_progress():
    policy = TrainingPolicy(100, 1e-3)
    _, big = run(policy, [1.0, 0.994])
    assert big.new_best and big.progress
    assert policy.stall == 0


def test_s9_small_improvements_add_up_to_progress():
    """Each new minimum is < 0.5% below the previous one, but the gains since the last
    progress add up: a loss that keeps falling slowly resets the countdown."""
    policy = TrainingPolicy(20, 1e-3, with_restarts=False)  # countdown 3
    decisions = run(policy, [1.0, 0.997, 0.994, 0.991, 0.989, 0.988, 0.9875, 0.9872])
    assert flags(decisions, "new_best") == [1, 2, 3, 4, 5, 6, 7, 8]
    assert flags(decisions, "progress") == [1, 3, 5]
    assert flags(decisions, "stop") == [8]  # 0.988, 0.9875, 0.9872: < 0.5% below 0.989


def test_s9_progress_threshold_uses_magnitude_for_negative_losses():
    policy = TrainingPolicy(100, 1e-3)
    _, small, big = run(policy, [-1.0, -1.004, -1.02])
    assert small.new_best and not small.progress
    assert big.new_best and big.progress


def test_s9_tol_asks_progress_to_gain_a_share_of_the_first_loss_too():
    """With ``tol``, a gain must also be ``tol`` times the first loss: a loss that keeps
    halving near zero stops making progress, while gains still add up to progress."""
    policy = TrainingPolicy(20, 1e-3, with_restarts=False, tol=0.1)  # countdown 3
    decisions = run(policy, [2.0, 1.0, 0.85, 0.79, 0.7, 0.35, 0.2, 0.1, 0.05, 0.02])
    assert flags(decisions, "new_best") == list(range(1, 11))
    # least gain 0.2: 0.85 is 15% below 1.0 but only 0.15 lower; 0.79 is 0.21 lower.
    assert flags(decisions, "progress") == [1, 2, 4, 6, 8]
    assert flags(decisions, "stop") == []
    assert run(policy, [0.01])[0].stop  # 0.1 -> 0.01: gains of 0.09 at most


def test_s9_without_tol_every_half_percent_counts():
    losses = [2.0 * 0.5 ** k for k in range(12)]
    assert flags(run(TrainingPolicy(20, 1e-3, tol=0.0), losses), "progress") == list(
        range(1, 13))
    # least gain 0.02: 2**-5 -> 2**-6 gains 0.016, not enough, but 2**-5 -> 2**-7 is.
    assert flags(run(TrainingPolicy(20, 1e-3, tol=0.01), losses), "progress") == [
        1, 2, 3, 4, 5, 6, 7, 9]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_s9_non_finite_loss_stops_and_reports_divergence(bad):
    policy = TrainingPolicy(100, 1e-3)
    policy.update(1.0)
    decision = policy.update(bad)
    assert decision.stop and decision.diverged
    assert not decision.new_best
    assert policy.best_loss == 1.0


def test_s9_non_finite_first_loss_stops():
    decision = TrainingPolicy(100, 1e-3).update(math.nan)
    assert decision.stop and decision.diverged


# ---------------------------------------------------------------------------- S10


def test_s10_decay_divides_learning_rate_by_golden_ratio():
    assert GOLDEN_RATIO == pytest.approx(1.6180339887)
    policy = TrainingPolicy(100, 1.0, with_restarts=False)  # countdown 15
    decisions = run(policy, [1.0] * 16)
    decays = flags(decisions, "decay")
    assert decays, "no decay during a 15-epoch stall"
    for k, epoch in enumerate(decays, start=1):
        assert decisions[epoch - 1].learning_rate == pytest.approx(GOLDEN_RATIO ** -k)
    # Between decays the learning rate does not change.
    assert decisions[0].learning_rate == 1.0


def test_s10_decays_come_every_decay_every_epochs_without_progress():
    policy = TrainingPolicy(100, 1.0, with_restarts=False)
    assert 1 < policy.decay_every < policy.patience  # "several" epochs, before the stop
    decisions = run(policy, [1.0] * 16)
    stalled_at_decay = [e - 1 for e in flags(decisions, "decay")]  # epoch 1 is progress
    assert stalled_at_decay == list(range(policy.decay_every, policy.patience + 1,
                                          policy.decay_every))


@pytest.mark.parametrize("n_epochs", [14, 20, 34, 50, 100, 300])
def test_s10_at_least_one_decay_before_the_countdown_runs_out(n_epochs):
    policy = TrainingPolicy(n_epochs, 1.0, with_restarts=False)
    decisions = run(policy, [1.0] * (policy.patience + 1))
    first_stop = flags(decisions, "stop")[0]
    assert flags(decisions, "decay") and flags(decisions, "decay")[0] < first_stop


def test_s10_progress_restarts_the_decay_count():
    policy = TrainingPolicy(100, 1.0, with_restarts=False)
    every = policy.decay_every
    losses = [1.0] + [1.0] * (every - 1) + [0.5] + [0.5] * every
    decisions = run(policy, losses)
    # No decay before `every` stalled epochs after the progress at epoch `every + 1`.
    assert flags(decisions, "decay") == [every + 1 + every]


# ---------------------------------------------------------------------------- S11


@pytest.mark.parametrize("n_epochs", [10, 20, 40, 100, 200])
def test_s11_restart_after_20_percent_of_the_countdown(n_epochs):
    policy = TrainingPolicy(n_epochs, 1.0)
    expected_stall = max(1, math.ceil(0.2 * policy.patience))
    decisions = run(policy, [1.0] * (policy.patience + 1))
    assert flags(decisions, "restart") == [1 + expected_stall]


def test_s11_restart_timing_for_100_epochs():
    policy = TrainingPolicy(100, 1.0)  # countdown 15 -> restart after 3 stalled epochs
    decisions = run(policy, [1.0] * 16)
    assert flags(decisions, "restart") == [4]
    assert flags(decisions, "stop") == [16]


def test_s11_single_restart_until_progress_resets_the_countdown():
    policy = TrainingPolicy(100, 1.0)
    decisions = run(policy, [1.0] * 16)
    assert len(flags(decisions, "restart")) == 1  # not one every 3 stalled epochs


def test_s11_progress_allows_a_new_restart():
    policy = TrainingPolicy(100, 1.0)
    losses = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
    decisions = run(policy, losses)
    assert flags(decisions, "restart") == [4, 8]


def test_s11_small_new_best_does_not_allow_a_new_restart():
    """A new minimum below the 0.5% threshold is not progress: still one restart."""
    policy = TrainingPolicy(100, 1.0)
    losses = [1.0, 1.0, 1.0, 1.0, 0.999, 0.999, 0.999, 0.999]
    decisions = run(policy, losses)
    assert flags(decisions, "restart") == [4]


def test_s10_s11_restart_restores_the_initial_learning_rate():
    policy = TrainingPolicy(100, 0.01)  # restart after 3, decay every 4
    losses = [1.0, 1.0, 1.0, 1.0, 1.0]  # restart at 4, decay at 5
    losses += [0.5, 0.5, 0.5, 0.5]  # progress at 6, restart at 9
    decisions = run(policy, losses)
    assert flags(decisions, "decay") == [5]
    assert decisions[4].learning_rate == pytest.approx(0.01 / GOLDEN_RATIO)
    assert decisions[5].learning_rate == pytest.approx(0.01 / GOLDEN_RATIO)  # progress keeps it
    assert flags(decisions, "restart") == [4, 9]
    assert decisions[8].learning_rate == 0.01
    assert policy.learning_rate == 0.01


def test_s11_without_restarts_never_restarts():
    policy = TrainingPolicy(100, 1.0, with_restarts=False)
    decisions = run(policy, [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    assert flags(decisions, "restart") == []


# ------------------------------------------------------------------------- S12/S13


def test_s12_new_best_on_every_new_minimum():
    decisions = run(TrainingPolicy(100, 1.0), [3.0, 2.0, 2.5, 1.999, 1.0, 1.0])
    assert flags(decisions, "new_best") == [1, 2, 4, 5]


def test_s13_best_versions_keeps_the_n_lowest():
    best = BestVersions(3)
    made = []
    for epoch, loss in enumerate([5.0, 3.0, 4.0, 1.0, 2.0, 6.0], start=1):
        best.offer(loss, epoch, lambda e=epoch: made.append(e) or f"w{e}")
    assert [e[0] for e in best.entries] == [1.0, 2.0, 3.0]
    assert [e[1] for e in best.entries] == [4, 5, 2]
    assert [e[2] for e in best.entries] == ["w4", "w5", "w2"]
    assert best.best[:2] == (1.0, 4)
    # A version that cannot enter the kept set costs nothing: no payload built for epoch 6.
    assert 6 not in made


def test_s13_best_versions_ignores_non_finite_losses():
    best = BestVersions(2)
    assert not best.offer(math.nan, 1, lambda: "nan")
    assert not best.offer(math.inf, 2, lambda: "inf")
    assert best.best is None and best.for_averaging() == []


def test_s13_for_averaging_selects_only_versions_within_10_percent_of_the_minimum():
    best = BestVersions(5)
    for epoch, loss in enumerate([1.0, 1.05, 1.1, 1.11, 1.5], start=1):
        best.offer(loss, epoch, lambda: None)
    assert [e[1] for e in best.for_averaging()] == [1, 2, 3]


def test_s13_for_averaging_with_negative_minimum_uses_magnitude():
    best = BestVersions(3)
    for epoch, loss in enumerate([-2.0, -1.9, -1.7], start=1):
        best.offer(loss, epoch, lambda: None)
    assert [e[1] for e in best.for_averaging()] == [1, 2]


# ---------------------------------------------------------------- S9-S11 invariants


@settings(max_examples=150, deadline=None)
@given(
    n_epochs=st.integers(min_value=1, max_value=60),
    losses=st.lists(st.floats(min_value=0.01, max_value=10.0), min_size=1, max_size=60),
    with_restarts=st.booleans(),
)
def test_s9_s10_s11_invariants_on_random_loss_sequences(n_epochs, losses, with_restarts):
    lr0 = 0.1
    policy = TrainingPolicy(n_epochs, lr0, with_restarts)
    best = math.inf
    stall = 0
    restarted_in_countdown = False
    n_decays_since_restart = 0
    for loss in losses:
        d = policy.update(loss)
        assert d.new_best == (loss < best)
        progress = best == math.inf or loss < best - 0.005 * abs(best)
        assert d.progress == progress
        best = min(best, loss)
        stall = 0 if progress else stall + 1
        assert d.stop == (stall >= policy.patience)
        if progress:
            restarted_in_countdown = False
        if d.restart:
            assert with_restarts and not restarted_in_countdown and not progress
            restarted_in_countdown = True
            n_decays_since_restart = 0
            assert d.learning_rate == lr0
        if d.decay:
            assert not progress and not d.restart
            n_decays_since_restart += 1
        assert d.learning_rate == pytest.approx(lr0 / GOLDEN_RATIO ** n_decays_since_restart)
