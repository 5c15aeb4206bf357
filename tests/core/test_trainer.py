"""End-to-end trainings of PytorchTrainer on tiny datasets (S1-S18, S26-S30)."""

import math
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import sktorch_auto.core.run as run_module
from sktorch_auto.core import ArrayDataset, PytorchTrainer, set_seed
from sktorch_auto.core.checkpoint import load_checkpoint
from sktorch_auto.core.optim import Lookahead, RAdam
from sktorch_auto.core.policy import GOLDEN_RATIO

from .helpers import (
    ItemDataset,
    RecorderNet,
    ScriptedCriterion,
    WorkerFlagDataset,
    linear_net,
    linear_problem,
    mlp_net,
    snapshot,
    state_equal,
)


def small_dataset(n=40, offset=0.0):
    X, y = linear_problem(n=n, offset=offset)
    return ArrayDataset(X, y)


def train(dataset, builder=linear_net, args=(3, 1), **kwargs):
    kwargs.setdefault("verbose", False)
    kwargs.setdefault("batch_size", 8)
    kwargs.setdefault("n_epochs", 3)
    trainer = PytorchTrainer(builder, list(args), device="cpu")
    return trainer.train(dataset, **kwargs)


class Snapshots:
    """An epoch_hook keeping the network's weights after every epoch."""

    def __init__(self):
        self.states = {}
        self.calls = 0

    def __call__(self, trainer):
        self.calls += 1
        self.states[trainer.history[-1]["epoch"]] = snapshot(trainer.net)


def capture_optimizers(monkeypatch):
    created = []
    real = run_module.make_optimizer

    def recording(params, learning_rate, weight_decay=0.0):
        opt = real(params, learning_rate, weight_decay)
        created.append(opt)
        return opt

    monkeypatch.setattr(run_module, "make_optimizer", recording)
    return created


# A script of validation losses: new bests at 1, 2, 4; the 3 best are epochs 4 (3.0),
# 5 (3.2) and 6 (3.35); only 4 and 5 are within 10% of the minimum. With n_epochs=40
# (countdown 6) training stops at epoch 10.
SCRIPT = [5.0, 4.0, 4.2, 3.0, 3.2, 3.35, 6.0]


# ------------------------------------------------------------------------------- S1


def test_s1_builder_is_called_with_its_arguments():
    calls = []

    def builder(d_in, d_out):
        calls.append((d_in, d_out))
        return nn.Linear(d_in, d_out)

    trainer = PytorchTrainer(builder, [3, 2], device="cpu")
    assert calls == [(3, 2)]
    assert isinstance(trainer.net, nn.Linear) and trainer.net.out_features == 2
    assert trainer.device == torch.device("cpu")
    assert next(trainer.net.parameters()).device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_s1_cuda_without_cuda_falls_back_to_cpu_with_a_warning():
    with pytest.warns(RuntimeWarning, match="CUDA"):
        trainer = PytorchTrainer(linear_net, [3, 1], device="cuda")
    assert trainer.device == torch.device("cpu")


@pytest.mark.parametrize("device", ["tpu", "nonsense", 3.5])
def test_s1_unknown_device_is_rejected(device):
    with pytest.raises(ValueError):
        PytorchTrainer(linear_net, [3, 1], device=device)


# ------------------------------------------------------------------------------- S4


def test_s4_each_run_has_its_own_name_and_files(tmp_path):
    ds = small_dataset()
    trainer = train(ds, name="first")
    before = (tmp_path / "first.pt").read_bytes()
    trainer.train(ds, name="second", n_epochs=3, batch_size=8, verbose=False)
    assert (tmp_path / "second.pt").exists()
    assert (tmp_path / "first.pt").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["first.pt", "second.pt"]


def test_s12_name_none_writes_no_files(tmp_path):
    train(small_dataset(), name=None, n_best_nets=3, n_epochs=4)
    assert os.listdir(tmp_path) == []


def test_default_name_is_pytorch_model(tmp_path):
    train(small_dataset(), n_epochs=2)
    assert os.listdir(tmp_path) == ["pytorch_model.pt"]


# ------------------------------------------------------------------------------- S5


@pytest.mark.parametrize("n_workers, expected", [(0, 0.0), (1, 1.0)])
def test_s5_n_workers_generates_items_in_worker_processes(n_workers, expected):
    trainer = train(WorkerFlagDataset(), RecorderNet, (2, 1), name=None, n_epochs=1,
                    n_workers=n_workers)
    seen = trainer.net.rows(True)
    assert len(seen) == 36
    assert torch.all(seen == expected)


def test_s5_negative_n_workers_is_rejected():
    with pytest.raises(ValueError, match="n_workers"):
        train(small_dataset(), n_workers=-1)


# ------------------------------------------------------------------------------- S6


def test_s6_verbose_false_prints_nothing(capsys):
    ds = small_dataset()
    trainer = train(ds, name=None, verbose=False)
    trainer.predict_dataset(ds, verbose=False)
    trainer.predict(ds.inputs[0].numpy())
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_s6_verbose_true_prints_a_line_per_epoch(capsys):
    train(small_dataset(), name=None, verbose=True, n_epochs=3,
          criterion=ScriptedCriterion([3.0, 2.0, 1.0]))
    out, _ = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert f"{epoch}/3" in line and "valid" in line


def test_s6_epoch_line_shows_train_and_valid_in_the_same_units(capsys):
    # Targets around 1000: the training loss is scaled (S28), the quality measure is not.
    trainer = train(small_dataset(offset=1000.0), name=None, verbose=True, n_epochs=2)
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("epoch")][0]
    entry = trainer.history[0]
    assert f"valid {entry['valid_objective']:.5g} [unscaled {entry['valid_loss']:.5g}]" in line
    assert f"train {entry['train_loss']:.5g}" in line


# ------------------------------------------------------------------------------- S7


def test_s7_epoch_hook_is_called_once_per_epoch_with_the_trainer():
    seen = []
    trainer = train(small_dataset(), name=None, n_epochs=4, learning_rate=0.05,
                    epoch_hook=lambda t: seen.append((t, len(t.history))))
    assert len(trainer.history) == 4
    assert [n for _, n in seen] == [1, 2, 3, 4]
    assert all(t is trainer for t, _ in seen)


def test_s7_epoch_hook_is_called_after_the_last_epoch_of_an_early_stop():
    """S7 says the hook runs after *each* epoch: also the one that ends training."""
    hook = Snapshots()
    trainer = train(small_dataset(), name=None, n_epochs=20,
                    criterion=ScriptedCriterion([1.0]), epoch_hook=hook)
    assert trainer.stop_reason == "early_stopping"
    assert len(trainer.history) == 4
    assert hook.calls == len(trainer.history)


# ------------------------------------------------------------------------------- S8


@pytest.mark.parametrize("in_memory", [True, False])
def test_s8_repeat_train_and_repeat_valid_multiply_the_passes(in_memory):
    X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    X[:, 0] = np.arange(40)
    y = X[:, 1:2] * 3
    ds = ArrayDataset(X, y) if in_memory else ItemDataset(X, y)
    trainer = train(ds, RecorderNet, (2, 1), name=None, n_epochs=2, repeat_train=2,
                    repeat_valid=3, with_restarts=False)
    net = trainer.net
    train_rows = net.rows(True).long()
    valid_rows = net.rows(False).long()
    assert len(train_rows) == 2 * 2 * 36 and len(valid_rows) == 2 * 3 * 4
    # Every training row is seen exactly repeat_train times per epoch.
    assert torch.bincount(train_rows, minlength=40)[train_rows.unique()].tolist() == [4] * 36
    # Batches: ceil(36 / 8) = 5 per training pass.
    assert len(net.batch_sizes(True)) == 2 * 2 * 5


def test_s8_losses_are_averaged_over_the_passes():
    ds = small_dataset()
    set_seed(3)
    once = train(ds, name=None, n_epochs=3, repeat_valid=1, learning_rate=0.05)
    set_seed(3)
    thrice = train(ds, name=None, n_epochs=3, repeat_valid=3, learning_rate=0.05)
    for a, b in zip(once.history, thrice.history):
        assert b["valid_loss"] == pytest.approx(a["valid_loss"], rel=1e-9)


# ------------------------------------------------------------------------- S9-S11


def test_s9_training_stops_when_the_countdown_runs_out():
    trainer = train(small_dataset(), name=None, n_epochs=20,
                    criterion=ScriptedCriterion([2.0, 1.0, 1.0]))
    # Countdown ceil(0.15 * 20) = 3 epochs without progress after epoch 2.
    assert trainer.stop_reason == "early_stopping"
    assert len(trainer.history) == 5


def test_s9_training_runs_all_epochs_while_it_makes_progress():
    losses = [10.0 * 0.9 ** k for k in range(6)]
    trainer = train(small_dataset(), name=None, n_epochs=6, criterion=ScriptedCriterion(losses))
    assert trainer.stop_reason == "n_epochs" and len(trainer.history) == 6
    assert all(h["new_best"] for h in trainer.history)


def test_s10_s11_restart_then_golden_ratio_decays_on_a_plateau(monkeypatch):
    created = capture_optimizers(monkeypatch)
    lr0 = 0.01
    trainer = train(small_dataset(), name=None, n_epochs=20, learning_rate=lr0,
                    criterion=ScriptedCriterion([1.0]))
    history = trainer.history
    # Countdown 3: restart after ceil(0.2 * 3) = 1 stalled epoch, decays after that.
    assert [h["restart"] for h in history] == [False, True, False, False]
    assert [h["decay"] for h in history] == [False, False, True, True]
    assert [h["learning_rate"] for h in history] == pytest.approx(
        [lr0, lr0, lr0 / GOLDEN_RATIO, lr0 / GOLDEN_RATIO ** 2])
    # The optimizer really uses the decayed rate.
    assert created[-1].optimizer.lr == pytest.approx(lr0 / GOLDEN_RATIO ** 2)


def test_s11_restart_resets_the_optimizer_state(monkeypatch):
    created = capture_optimizers(monkeypatch)
    trainer = train(small_dataset(), name=None, n_epochs=20, learning_rate=0.01,
                    criterion=ScriptedCriterion([1.0]))
    assert [h["epoch"] for h in trainer.history if h["restart"]] == [2]
    assert len(created) == 2  # one at the start, one at the restart

    def steps(opt):
        return {int(s["step"]) for s in opt.optimizer.state.values()}

    # 36 training rows in batches of 8: 5 steps per epoch. The restarted optimizer
    # starts from scratch: it only knows epochs 3 and 4.
    assert steps(created[0]) == {10}
    assert steps(created[1]) == {10}
    assert created[1].optimizer.lr < 0.01  # decayed after the restart


def test_s11_no_restart_without_with_restarts(monkeypatch):
    created = capture_optimizers(monkeypatch)
    trainer = train(small_dataset(), name=None, n_epochs=20, with_restarts=False,
                    criterion=ScriptedCriterion([1.0]))
    assert not any(h["restart"] for h in trainer.history)
    assert len(created) == 1


def test_s11_restart_happens_on_a_real_plateauing_task():
    # A constant network output cannot improve: the validation loss plateaus.
    trainer = train(small_dataset(), name=None, n_epochs=20, learning_rate=1e-9)
    assert any(h["restart"] for h in trainer.history)
    assert trainer.stop_reason == "early_stopping"


def test_s9_non_finite_validation_loss_stops_training_and_keeps_the_best():
    hook = Snapshots()
    with pytest.warns(RuntimeWarning, match="nan"):
        trainer = train(small_dataset(), name=None, n_epochs=10, epoch_hook=hook,
                        criterion=ScriptedCriterion([1.0, 0.5, math.nan]))
    assert trainer.stop_reason == "diverged"
    assert trainer.best_epoch == 2
    assert state_equal(snapshot(trainer.net), hook.states[2])


def test_s9_non_finite_loss_from_the_first_epoch_is_an_error():
    with pytest.raises(ValueError, match="not finite"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        train(small_dataset(), name=None, criterion=ScriptedCriterion([math.inf]))


# ------------------------------------------------------------------------ S12-S15


def test_s12_checkpoint_written_on_every_new_best_only():
    seen = []

    def hook(trainer):
        content = load_checkpoint("run.pt")
        seen.append((content["meta"]["epoch"], snapshot(trainer.net), content["state_dict"]))

    trainer = train(small_dataset(), name="run", n_epochs=40, learning_rate=0.05,
                    criterion=ScriptedCriterion(SCRIPT), epoch_hook=hook)
    assert [h["new_best"] for h in trainer.history][:7] == [True, True, False, True,
                                                             False, False, False]
    assert [s[0] for s in seen][:7] == [1, 2, 2, 4, 4, 4, 4]
    # The file holds the weights of the epoch that set the minimum.
    assert state_equal(seen[3][2], seen[3][1])
    assert state_equal(seen[6][2], seen[3][1])
    assert not state_equal(seen[6][2], seen[6][1])


def test_s13_averaged_file_only_when_n_best_nets_above_one(tmp_path):
    train(small_dataset(), name="single", n_epochs=4, n_best_nets=1)
    train(small_dataset(), name="multi", n_epochs=4, n_best_nets=2)
    assert sorted(os.listdir(tmp_path)) == ["multi.pt", "multi_avg.pt", "single.pt"]


def test_s13_s15_averages_the_best_versions_within_10_percent(tmp_path):
    hook = Snapshots()
    trainer = train(small_dataset(), name="avg", n_epochs=40, learning_rate=0.05,
                    n_best_nets=3, criterion=ScriptedCriterion(SCRIPT), epoch_hook=hook)
    assert trainer.best_epoch == 4 and trainer.best_loss == 3.0
    assert trainer.averaged_epochs == [4, 5]  # epoch 6 (3.35) is more than 10% worse
    expected = {k: (hook.states[4][k] + hook.states[5][k]) / 2 for k in hook.states[4]}
    avg_file = load_checkpoint("avg_avg.pt")["state_dict"]
    for k in expected:
        assert torch.allclose(avg_file[k], expected[k], atol=1e-7)
    # S15: the network in memory is the averaged one ...
    assert state_equal(snapshot(trainer.net), avg_file)
    # ... while the un-averaged best stays in {name}.pt.
    assert state_equal(load_checkpoint("avg.pt")["state_dict"], hook.states[4])


def test_s15_network_in_memory_is_the_best_not_the_last_epoch():
    hook = Snapshots()
    trainer = train(small_dataset(), name="best", n_epochs=40, learning_rate=0.05,
                    n_best_nets=1, criterion=ScriptedCriterion(SCRIPT), epoch_hook=hook)
    last = max(hook.states)  # the last epoch whose weights the hook saw
    assert last > 4 and not state_equal(hook.states[last], hook.states[4])
    assert state_equal(snapshot(trainer.net), hook.states[4])
    assert state_equal(snapshot(trainer.net), load_checkpoint("best.pt")["state_dict"])
    assert trainer.averaged_epochs == []


def test_s15_real_training_in_memory_network_equals_the_files(tmp_path):
    ds = small_dataset(n=64)
    one = train(ds, name="one", n_epochs=8, learning_rate=0.05, n_best_nets=1)
    assert state_equal(snapshot(one.net), load_checkpoint("one.pt")["state_dict"])
    many = train(ds, name="many", n_epochs=8, learning_rate=0.05, n_best_nets=3)
    assert state_equal(snapshot(many.net), load_checkpoint("many_avg.pt")["state_dict"])
    assert 1 <= len(many.averaged_epochs) <= 3
    losses = {h["epoch"]: h["valid_loss"] for h in many.history}
    assert all(losses[e] <= 1.1 * many.best_loss for e in many.averaged_epochs)


# ------------------------------------------------------------------------------ S14


def test_s14_stop_file_stops_after_the_current_epoch_and_is_removed(tmp_path):
    def hook(trainer):
        if len(trainer.history) == 2:
            (tmp_path / "stop_graceful").write_text("")

    trainer = train(small_dataset(), name="graceful", n_epochs=10, n_best_nets=2,
                    learning_rate=0.05, epoch_hook=hook)
    assert len(trainer.history) == 2
    assert trainer.stop_reason == "stop_file"
    assert not (tmp_path / "stop_graceful").exists()
    # It finishes normally: the averaged network is written too.
    assert (tmp_path / "graceful_avg.pt").exists()


def test_s4_s14_a_name_with_a_folder_creates_it_and_its_stop_file_is_the_basename(tmp_path):
    def hook(trainer):
        assert (tmp_path / "runs" / "deep" / "model.pt").exists()  # folder made up front
        if len(trainer.history) == 2:
            (tmp_path / "stop_model").write_text("")

    trainer = train(small_dataset(), name="runs/deep/model", n_epochs=10,
                    learning_rate=0.05, epoch_hook=hook)
    assert trainer.stop_reason == "stop_file" and len(trainer.history) == 2
    assert not (tmp_path / "stop_model").exists()
    (tmp_path / "blocked").write_text("a file where the folder should be")
    with pytest.raises(OSError, match="blocked/model"):
        train(small_dataset(), name="blocked/model", n_epochs=2)


def test_load_shows_its_own_docstring_and_signature():
    import inspect

    assert "Load ``{name}.pt``" in (PytorchTrainer.load.__doc__ or "")
    assert "trust_builder" in str(inspect.signature(PytorchTrainer.load))
    trainer = PytorchTrainer(linear_net, [3, 1], device="cpu")
    assert trainer.load.__self__ is trainer and PytorchTrainer.load.__self__ is PytorchTrainer


def test_predicting_zero_rows_keeps_the_output_width():
    trainer = train(small_dataset(), name=None, n_epochs=2)
    assert trainer.predict(np.zeros((0, 3), np.float32)).shape == (0, 1)


class _StopFileOnValidation(ScriptedCriterion):
    """Creates ``path`` during the ``at``-th validation pass (i.e. during that epoch)."""

    def __init__(self, script, at, path):
        super().__init__(script)
        self.at, self.path = at, path

    def __call__(self, output, target, weights=None, unscaled=False):
        loss = super().__call__(output, target, weights, unscaled)
        if unscaled and sum(1 for c in self.calls if c[0]) == self.at:
            self.path.write_text("")
        return loss


def test_s14_stop_file_is_consumed_even_when_early_stopping_ends_the_same_epoch(tmp_path):
    """A stop file that appears during the epoch that early stopping ends must not
    survive the run: else the next run with that name stops after its first epoch."""
    stop = tmp_path / "stop_same"
    first = train(small_dataset(), name="same", n_epochs=20,
                  criterion=_StopFileOnValidation([1.0], at=4, path=stop))
    assert first.stop_reason == "early_stopping" and len(first.history) == 4
    assert not stop.exists()
    second = train(small_dataset(), name="same", n_epochs=3,
                   criterion=ScriptedCriterion([3.0, 2.0, 1.0]))
    assert second.stop_reason == "n_epochs" and len(second.history) == 3


def test_s14_stop_file_of_another_run_is_ignored(tmp_path):
    (tmp_path / "stop_other").write_text("")
    trainer = train(small_dataset(), name="mine", n_epochs=3,
                    criterion=ScriptedCriterion([3.0, 2.0, 1.0]))
    assert len(trainer.history) == 3
    assert (tmp_path / "stop_other").exists()


def test_s14_ctrl_c_ends_gracefully_with_the_best_weights():
    hook = Snapshots()

    def interrupting(trainer):
        hook(trainer)
        if len(trainer.history) == 5:
            raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted"):
        trainer = train(small_dataset(), name="ctrlc", n_epochs=40, learning_rate=0.05,
                        criterion=ScriptedCriterion(SCRIPT), epoch_hook=interrupting)
    assert trainer.stop_reason == "interrupted"
    assert len(trainer.history) == 5
    assert state_equal(snapshot(trainer.net), hook.states[4])


# -------------------------------------------------------------------------- S17/S18


@pytest.mark.parametrize("in_memory", [True, False])
def test_s17_predict_dataset_does_not_depend_on_batch_size(in_memory):
    X, y = linear_problem(n=37, offset=50.0)
    ds = ArrayDataset(X, y) if in_memory else ItemDataset(X, y)
    trainer = train(ds, mlp_net, (3, 1), name=None, n_epochs=3)
    reference = trainer.predict_dataset(ds, verbose=False)
    assert reference.shape == (37, 1)
    for batch_size in (1, 5, 64):
        assert np.allclose(trainer.predict_dataset(ds, batch_size=batch_size, verbose=False),
                           reference, atol=1e-5)


def test_s18_predict_on_raw_numpy_arrays():
    X, y = linear_problem(n=64, offset=1000.0, slope=3.0)
    ds = ArrayDataset(X, y)
    trainer = train(ds, name=None, n_epochs=25, batch_size=16, learning_rate=0.05)
    pred = trainer.predict(X.astype(np.float64))  # dtype follows the network
    assert isinstance(pred, np.ndarray) and pred.shape == (64, 1)
    assert np.allclose(pred, trainer.predict_dataset(ds, verbose=False), atol=1e-4)
    # Post-processed: original units (targets around 1000), not the scaled output.
    assert np.abs(pred - y).mean() < 0.5 * y.std()
    assert np.allclose(trainer.predict(torch.from_numpy(X)), pred, atol=1e-4)


def test_s17_s18_prediction_runs_the_network_in_eval_mode():
    def dropout_net(d_in, d_out):
        return nn.Sequential(nn.Linear(d_in, 32), nn.Dropout(0.5), nn.Linear(32, d_out))

    X, y = linear_problem(n=40)
    ds = ArrayDataset(X, y)
    trainer = train(ds, dropout_net, (3, 1), name=None, n_epochs=2)
    first = trainer.predict(X)
    assert np.array_equal(first, trainer.predict(X))
    assert np.array_equal(trainer.predict_dataset(ds, verbose=False),
                          trainer.predict_dataset(ds, verbose=False))


def test_s18_predict_checks_its_inputs():
    trainer = PytorchTrainer(linear_net, [3, 1], device="cpu")
    with pytest.raises(TypeError):
        trainer.predict()
    with pytest.raises(ValueError, match="same number of rows"):
        trainer.predict(np.zeros((3, 3), np.float32), np.zeros((4, 3), np.float32))


# -------------------------------------------------------------------------- S26-S28


def test_s26_training_uses_the_scaled_loss_and_stopping_the_unscaled_one():
    criterion = ScriptedCriterion([3.0, 2.0, 2.0])
    trainer = train(small_dataset(), name=None, n_epochs=20, criterion=criterion)
    training_calls = [c for c in criterion.calls if c[1]]
    validation_calls = [c for c in criterion.calls if not c[1]]
    assert training_calls and all(not unscaled for unscaled, _ in training_calls)
    # Validation computes the unscaled loss (the quality measure) and the scaled one
    # (the objective, comparable with the training loss), once each per batch.
    assert sorted(unscaled for unscaled, _ in validation_calls) == (
        [False] * (len(validation_calls) // 2) + [True] * (len(validation_calls) // 2))
    assert [h["valid_loss"] for h in trainer.history] == [3.0, 2.0, 2.0, 2.0, 2.0]
    assert all(h["train_loss"] not in (2.0, 3.0) for h in trainer.history)
    assert all(h["valid_objective"] not in (2.0, 3.0) for h in trainer.history)


def test_s26_criterion_class_is_built_with_the_dataset():
    built = []

    class Mse:
        def __init__(self, dataset):
            built.append(dataset)

        def __call__(self, output, target, weights=None, unscaled=False):
            return ((output - target) ** 2).mean()

        def postproc(self, pred):
            return pred + 100.0

    ds = small_dataset()
    trainer = train(ds, name=None, criterion=Mse)
    assert built == [ds]
    X = ds.inputs[0]
    assert np.allclose(trainer.predict(X), trainer.net(X).detach().numpy() + 100.0, atol=1e-5)


def test_s27_s28_mixed_regression_and_classification_in_original_units():
    X, y = linear_problem(n=128, offset=1000.0, slope=3.0)
    labels = (X[:, :1] > 0).astype(np.float32)
    ds = ArrayDataset(X, np.concatenate([y, labels], axis=1))
    trainer = train(ds, mlp_net, (3, 2), name=None, n_epochs=30, batch_size=16,
                    learning_rate=0.02)
    assert trainer.criterion.regression_flags.tolist() == [1, 0]
    pred = trainer.predict(X)
    assert pred.shape == (128, 2)
    assert np.abs(pred[:, 0] - y[:, 0]).mean() < 0.5 * y.std()
    assert abs(pred[:, 0].mean() - 1000.0) < 5.0
    assert np.all((pred[:, 1] >= 0) & (pred[:, 1] <= 1))
    assert ((pred[:, 1] > 0.5) == (labels[:, 0] > 0.5)).mean() > 0.85


def test_s29_training_uses_radam_inside_lookahead(monkeypatch):
    created = capture_optimizers(monkeypatch)
    train(small_dataset(), name=None, n_epochs=2, with_restarts=False)
    assert len(created) == 1
    assert isinstance(created[0], Lookahead)
    assert isinstance(created[0].optimizer, RAdam)
    assert all(int(s["step"]) == 10 for s in created[0].optimizer.state.values())


# ------------------------------------------------------------------------------ S30


def test_s30_set_seed_makes_training_reproducible():
    X, y = linear_problem(n=48)
    runs = []
    for _ in range(2):
        set_seed(11)
        trainer = train(ArrayDataset(X, y), mlp_net, (3, 1), name=None, n_epochs=3)
        runs.append(trainer.predict(X))
    third = train(ArrayDataset(X, y), mlp_net, (3, 1), name=None, n_epochs=3).predict(X)
    assert np.array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], third)  # without reseeding, another network


def test_s30_set_seed_makes_random_augmentation_reproducible():
    class Noisy(ItemDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x + torch.from_numpy(np.random.normal(0, 0.1, 3).astype(np.float32)), y

    X, y = linear_problem(n=40)
    runs = []
    for _ in range(2):
        set_seed(5)
        runs.append(train(Noisy(X, y), mlp_net, (3, 1), name=None, n_epochs=2).predict(X))
    assert np.array_equal(runs[0], runs[1])


# --------------------------------------------------------------------- arguments


@pytest.mark.parametrize("kwargs", [
    {"batch_size": 0}, {"batch_size": True}, {"batch_size": 2.0}, {"n_epochs": 0},
    {"train_prop": 0.0}, {"train_prop": 1.5}, {"learning_rate": 0.0},
    {"repeat_train": 0}, {"repeat_valid": 0}, {"n_best_nets": 0},
])
def test_invalid_training_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        train(small_dataset(), name=None, **kwargs)


def test_empty_dataset_is_rejected():
    empty = ArrayDataset(np.zeros((0, 3), np.float32), np.zeros((0, 1), np.float32))
    with pytest.raises(ValueError, match="empty"):
        train(empty, name=None)


def test_weight_decay_shrinks_the_weights_and_refuses_negative_values():
    X, y = linear_problem(n=128, d=4)
    norms = {}
    for decay in (0.0, 5.0):
        set_seed(0)
        trainer = PytorchTrainer(mlp_net, [4, 1, 16], device="cpu")
        trainer.train(ArrayDataset(X, y), name=None, n_epochs=20, learning_rate=1e-2,
                      verbose=False, n_best_nets=1, weight_decay=decay)
        norms[decay] = sum(float(p.detach().norm()) for p in trainer.net.parameters())
    assert norms[5.0] < 0.8 * norms[0.0]
    with pytest.raises(ValueError, match="weight_decay"):
        PytorchTrainer(mlp_net, [4, 1], device="cpu").train(
            ArrayDataset(X, y), name=None, n_epochs=1, verbose=False, weight_decay=-1.0)


def test_tol_ends_training_once_gains_are_small_next_to_the_first_loss():
    """A separable problem: its validation loss keeps falling towards zero; with ``tol``
    training stops once the gains are below tol x the first epoch's loss."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X[:, :1] > 0).astype(np.float32)
    runs = {}
    for tol in (0.0, 0.05):
        set_seed(0)
        trainer = PytorchTrainer(mlp_net, [2, 1, 16], device="cpu")
        trainer.train(ArrayDataset(X, y), name=None, n_epochs=60, learning_rate=1e-2,
                      verbose=False, tol=tol)
        runs[tol] = trainer
    assert runs[0.0].stop_reason == "n_epochs"
    assert runs[0.05].stop_reason == "early_stopping"
    assert len(runs[0.05].history) < len(runs[0.0].history)
    # Stopped while the loss was still falling (by less than 5% of the first loss).
    def lowest(trainer):
        return min(entry["valid_loss"] for entry in trainer.history)
    assert lowest(runs[0.0]) < lowest(runs[0.05]) < runs[0.05].history[0]["valid_loss"] / 2
    with pytest.raises(ValueError, match="tol"):
        PytorchTrainer(mlp_net, [2, 1], device="cpu").train(
            ArrayDataset(X, y), name=None, n_epochs=1, verbose=False, tol=-0.1)


def test_a_torch_loss_module_serves_as_the_criterion():
    X, y = linear_problem(n=60)
    trainer = train(ArrayDataset(X, y), name=None, n_epochs=30, learning_rate=0.05,
                    criterion=nn.MSELoss())
    assert trainer.history[-1]["valid_loss"] == pytest.approx(
        trainer.history[-1]["valid_objective"])  # no scaling: one value for both
    assert np.corrcoef(trainer.predict(X)[:, 0], y[:, 0])[0, 1] > 0.9
    weighted = ArrayDataset(X, y, np.ones(len(X), np.float32))
    with pytest.raises(ValueError, match="sample weights.*MSELoss"):
        train(weighted, name=None, criterion=nn.MSELoss())


def test_a_builder_that_returns_no_module_is_a_type_error():
    with pytest.raises(TypeError, match="returned NoneType"):
        PytorchTrainer(lambda: None, device="cpu")


def test_infinite_targets_get_the_clear_error_without_numpy_warnings():
    X, y = linear_problem(n=40)
    y[3, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="target contains NaN or infinity"):
            train(ArrayDataset(X, y), name=None)
