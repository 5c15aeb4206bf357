"""Reliability (issue 5): divergence, Ctrl-C, atomic and verified files, crafted files,
determinism across processes, and no leaks over many fits."""

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

import sktorch_auto.core.run as run_module
from sktorch_auto import PytorchTrainer, TorchClassifier, TorchRegressor
from sktorch_auto.core import checkpoint as ckpt
from sktorch_auto.core import set_seed
from sktorch_auto.core.checkpoint import load_checkpoint, save_checkpoint
from sktorch_auto.core.run import DivergedError

REPO_ROOT = Path(__file__).resolve().parents[1]
# A fixed rate: the range test of learning_rate='auto' would take criterion steps too.
FAST = dict(n_epochs=2, hidden_layer_sizes=(8,), device="cpu", random_state=0,
            learning_rate=1e-3, n_best_nets=1)


def _linux_only():
    """SIGINT to a child, RLIMIT_FSIZE with SIGXFSZ and /proc/self are Linux facilities."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs Linux")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    set_seed(0)  # the trainer-core runs below draw initial weights and batch orders


def subprocess_env(**extra):
    """A fresh interpreter's environment that imports this checkout of sktorch_auto."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p] + [str(REPO_ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def run_script(tmp_path, source, *args, timeout=120, **env):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=tmp_path,
                          env=subprocess_env(**env), capture_output=True, text=True,
                          timeout=timeout)


def result_of(completed):
    """The JSON a child printed on its line starting with RESULT."""
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, completed.stdout[-2000:] + completed.stderr[-2000:]
    return json.loads(lines[-1][len("RESULT "):])


def _data(n=60, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    return X, X @ np.arange(1.0, d + 1) + 0.1 * rng.normal(size=n)


def _state(net):
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _all_finite(state):
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


# ===================================================================== divergence


class NaNAfter:
    """MSE whose training loss turns NaN after ``ok_steps`` optimizer steps, so that the
    gradients, then the weights, then the validation loss become NaN (a real blow-up)."""

    def __init__(self, ok_steps):
        self.ok_steps = ok_steps
        self.steps = 0  # training calls (gradients enabled; validation runs without)
        self.validations = 0  # validation batches measured (unscaled)

    def __call__(self, output, target, weights=None, unscaled=False):
        loss = ((output - target.to(output.dtype)) ** 2).mean()
        if torch.is_grad_enabled():
            self.steps += 1
            if self.steps > self.ok_steps:
                loss = loss * float("nan")
        elif unscaled:
            self.validations += 1
        return loss

    def postproc(self, pred):
        return pred


def _tensor_problem(n=64):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=g)
    return X, X @ torch.tensor([[1.0], [-2.0], [0.5]])


class EpochStates:
    def __init__(self):
        self.states = {}

    def __call__(self, trainer):
        self.states[trainer.history[-1]["epoch"]] = _state(trainer.net)


def _diverging_core_run(name="div"):
    X, y = _tensor_problem()
    hook = EpochStates()
    trainer = PytorchTrainer(nn.Linear, [3, 1], device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 48 training rows, 3 steps per epoch: NaN from the 3rd epoch's second step.
        trainer.train(TensorDataset(X, y), name=name, n_epochs=20, batch_size=16,
                      learning_rate=0.01, verbose=False, criterion=NaNAfter(7),
                      epoch_hook=hook, train_prop=0.75)
    return trainer, hook, caught, X


def test_core_loss_becoming_nan_stops_training_with_a_warning():
    trainer, _, caught, _ = _diverging_core_run()
    assert trainer.stop_reason == "diverged"
    assert len(trainer.history) == 2  # the third epoch's loss was NaN
    assert any(issubclass(w.category, RuntimeWarning) and "nan" in str(w.message).lower()
               for w in caught), [str(w.message) for w in caught]


def test_core_loss_becoming_nan_restores_the_best_finite_weights():
    trainer, hook, _, X = _diverging_core_run()
    state = _state(trainer.net)
    assert _all_finite(state)
    assert _same_state(state, hook.states[trainer.best_epoch])
    assert _same_state(state, load_checkpoint("div.pt")["state_dict"])
    assert np.isfinite(trainer.predict(X)).all()


def test_core_loss_nan_from_the_first_epoch_is_a_clear_error():
    X, y = _tensor_problem()
    trainer = PytorchTrainer(nn.Linear, [3, 1], device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="not finite from the first epoch"):
            trainer.train(TensorDataset(X, y), name=None, n_epochs=5, batch_size=16,
                          verbose=False, criterion=NaNAfter(0))


def test_core_enormous_learning_rate_is_a_clear_error_not_nan_weights():
    X, y = _tensor_problem()
    trainer = PytorchTrainer(nn.Linear, [3, 1], device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="learning rate"):
            trainer.train(TensorDataset(X, y), name=None, n_epochs=5, batch_size=16,
                          learning_rate=1e30, verbose=False)


@pytest.mark.parametrize("cls", [TorchRegressor, TorchClassifier], ids=lambda c: c.__name__)
def test_estimator_loss_becoming_nan_keeps_the_best_version_and_predicts_finite(cls):
    X, y = _data()
    y = (y > 0).astype(float) if cls is TorchClassifier else y
    criterion = NaNAfter(12)  # 54 training rows, 4 steps per epoch: NaN in the 4th epoch
    est = cls(**{**FAST, "n_epochs": 30}, criterion=criterion, batch_size=16,
              checkpoint="est", train_prop=0.9)
    with pytest.warns(RuntimeWarning, match="(?i)nan"):
        est.fit(X, y)
    assert est.stop_reason_ == "diverged"
    assert criterion.steps > criterion.ok_steps  # the loss really became NaN
    assert 1 <= est.best_epoch_ <= est.n_iter_
    assert _same_state(_state(est.net_.net), load_checkpoint("est.pt")["state_dict"])
    out = est.predict_proba(X) if cls is TorchClassifier else est.predict(X)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("cls", [TorchRegressor, TorchClassifier], ids=lambda c: c.__name__)
def test_estimator_that_never_had_a_finite_loss_raises_and_stays_unfitted(cls):
    X, y = _data()
    y = (y > 0).astype(int) if cls is TorchClassifier else y
    est = cls(**{**FAST, "n_epochs": 5, "learning_rate": 1e30})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="not finite"):
            est.fit(X, y)
    assert not hasattr(est, "net_")


class _ListDataset(Dataset):
    """A map-style dataset (not in memory for the trainer): goes through a DataLoader."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


def test_core_predict_dataset_never_returns_nan_silently():
    """A map-style dataset is not checked for NaN up front; NaN coming out of the network
    must still not pass silently (an error or at least a warning)."""
    X, y = _tensor_problem()
    trainer = PytorchTrainer(nn.Linear, [3, 1], device="cpu")
    trainer.train(TensorDataset(X, y), name=None, n_epochs=2, verbose=False)
    X = X.clone()
    X[5, 0] = float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = trainer.predict_dataset(_ListDataset(X, y), verbose=False)
        except ValueError:
            return
    warned = any(("nan" in str(w.message).lower() or "finite" in str(w.message).lower())
                 for w in caught)
    n_bad = int((~np.isfinite(out)).sum())
    assert n_bad == 0 or warned, f"{n_bad} NaN prediction(s) without an error or a warning"


# ========================================================================== Ctrl-C


def _interrupt_hook(at_epoch, states):
    """Records each epoch's weights; at ``at_epoch`` it moves the weights on (as the next
    epoch's steps would, when Ctrl-C comes mid-epoch) and raises KeyboardInterrupt."""

    def hook(trainer):
        states[trainer.history[-1]["epoch"]] = _state(trainer.net)
        if len(trainer.history) == at_epoch:
            with torch.no_grad():
                for p in trainer.net.parameters():
                    p.add_(1.0)
            raise KeyboardInterrupt

    return hook


def _interrupted_core_run(n_best_nets, at_epoch=15):
    X, y = _tensor_problem(n=96)
    y = y + 0.5 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    states = {}
    trainer = PytorchTrainer(nn.Linear, [3, 1], device="cpu")
    with pytest.warns(RuntimeWarning, match="(?i)training interrupted"):
        trainer.train(TensorDataset(X, y), name="run", n_epochs=1000, batch_size=16,
                      learning_rate=0.5, verbose=False, n_best_nets=n_best_nets,
                      epoch_hook=_interrupt_hook(at_epoch, states))
    return trainer, states, X


def test_core_keyboard_interrupt_from_the_hook_ends_training_at_once():
    trainer, _, _ = _interrupted_core_run(1)
    assert trainer.stop_reason == "interrupted"
    assert len(trainer.history) == 15


def test_core_keyboard_interrupt_restores_the_best_epochs_weights():
    trainer, states, X = _interrupted_core_run(1)
    file = load_checkpoint("run.pt")
    assert file["meta"]["epoch"] == trainer.best_epoch
    assert _same_state(_state(trainer.net), file["state_dict"])
    assert _same_state(_state(trainer.net), states[trainer.best_epoch])
    assert np.isfinite(trainer.predict(X)).all()


def test_core_keyboard_interrupt_still_averages_when_asked():
    trainer, states, _ = _interrupted_core_run(3)
    assert len(trainer.averaged_epochs) >= 2 and set(trainer.averaged_epochs) <= set(states)
    chosen = [states[e] for e in trainer.averaged_epochs]
    expected = {k: torch.stack([s[k] for s in chosen]).mean(dim=0) for k in chosen[0]}
    state = _state(trainer.net)
    assert all(torch.allclose(state[k], expected[k], atol=1e-6) for k in expected)
    assert _same_state(state, load_checkpoint("run_avg.pt")["state_dict"])


def test_core_keyboard_interrupt_while_writing_a_new_best_keeps_file_memory_and_history_agreeing(
        monkeypatch):
    """Ctrl-C lands where an epoch spends most of its time on small data: writing (and
    fsync-ing) the new best's checkpoint. The run must still end consistent: the
    in-memory network, ``{name}.pt`` and the history describe the same best epoch."""
    real_save = run_module.save_checkpoint
    calls = []

    def save_interrupted_at_the_fourth_write(path, content):
        calls.append(path)
        if len(calls) == 4:
            def partial_then_ctrl_c(f):
                f.write(b"partial")
                raise KeyboardInterrupt

            ckpt.atomic_write(path, partial_then_ctrl_c)
        return real_save(path, content)

    monkeypatch.setattr(run_module, "save_checkpoint", save_interrupted_at_the_fourth_write)
    X, y = _tensor_problem(n=96)
    trainer = PytorchTrainer(nn.Linear, [3, 1], device="cpu")
    with pytest.warns(RuntimeWarning, match="(?i)training interrupted"):
        trainer.train(TensorDataset(X, y), name="run", n_epochs=1000, batch_size=16,
                      learning_rate=0.05, verbose=False)
    assert trainer.stop_reason == "interrupted"
    file = load_checkpoint("run.pt")
    assert _same_state(_state(trainer.net), file["state_dict"])
    assert file["meta"]["epoch"] == trainer.best_epoch
    assert trainer.best_epoch <= len(trainer.history)


class _InterruptingMSE(NaNAfter):
    """MSE that raises KeyboardInterrupt at the ``at``-th training step (mid-epoch)."""

    def __init__(self, at):
        super().__init__(ok_steps=10**9)
        self.at = at

    def __call__(self, output, target, weights=None, unscaled=False):
        if torch.is_grad_enabled() and self.steps + 1 == self.at:
            raise KeyboardInterrupt
        return super().__call__(output, target, weights, unscaled)


def test_estimator_keyboard_interrupt_mid_epoch_returns_the_best_version():
    X, y = _data()
    # 60 rows, 54 to train, batch 16: 4 steps per epoch; interrupted in the 6th epoch.
    criterion = _InterruptingMSE(at=22)
    reg = TorchRegressor(**{**FAST, "n_epochs": 1000}, batch_size=16, checkpoint="est",
                         criterion=criterion)
    with pytest.warns(RuntimeWarning, match="(?i)training interrupted"):
        reg.fit(X, y)
    assert reg.stop_reason_ == "interrupted"
    assert reg.n_iter_ == criterion.validations == 5  # the interrupted epoch is not counted
    assert _same_state(_state(reg.net_.net), load_checkpoint("est.pt")["state_dict"])
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.filterwarnings("ignore:Training ended before any epoch was validated")
def test_estimator_keyboard_interrupt_in_the_first_epoch_still_returns_a_usable_model():
    X, y = _data()
    reg = TorchRegressor(**{**FAST, "n_epochs": 1000}, batch_size=16,
                         criterion=_InterruptingMSE(at=2))
    with pytest.warns(RuntimeWarning, match="(?i)training interrupted"):
        reg.fit(X, y)
    assert reg.stop_reason_ == "interrupted"
    assert np.isfinite(reg.predict(X)).shape == (len(X),)
    assert np.isfinite(reg.predict(X)).all()


SIGINT_CHILD = """
import json, signal, sys
# Python ignores SIGINT when its parent started it with SIGINT ignored (e.g. a CI
# runner in the background): restore the normal Ctrl-C behaviour explicitly.
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np, torch
from sktorch_auto import TorchRegressor
from sktorch_auto.core.checkpoint import load_checkpoint

n_best = int(sys.argv[1])
rng = np.random.RandomState(0)
X = rng.normal(size=(200, 3))
y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=200)
reg = TorchRegressor(n_epochs=10000, hidden_layer_sizes=(16,), device="cpu",
                     random_state=0, verbose=True, checkpoint="run", n_best_nets=n_best,
                     batch_size=16, learning_rate=1e-4)
reg.fit(X, y)
pred = reg.predict(X)
np.save("pred.npy", pred)
net = {k: v.detach().cpu() for k, v in reg.net_.net.state_dict().items()}
best = load_checkpoint("run.pt")
final = load_checkpoint("run_avg.pt" if n_best > 1 else "run.pt")["state_dict"]
print("RESULT " + json.dumps({
    "stop_reason": reg.stop_reason_, "n_iter": reg.n_iter_,
    "best_epoch": reg.best_epoch_, "file_epoch": best["meta"]["epoch"],
    "averaged": reg.averaged_epochs_, "finite": bool(np.isfinite(pred).all()),
    "shape": list(pred.shape),
    "net_equals_file": all(torch.equal(net[k], final[k]) for k in net),
}), flush=True)
"""


def _epochs_printed(path):
    text = path.read_text() if path.exists() else ""
    return [line for line in text.splitlines() if line.startswith("epoch ")]


@pytest.fixture(scope="module", params=[1, 3], ids=["best", "averaged"])
def sigint_run(request, tmp_path_factory):
    """A long verbose fit in a subprocess, sent SIGINT once a few epochs are printed."""
    _linux_only()
    tmp = tmp_path_factory.mktemp(f"sigint{request.param}")
    (tmp / "child.py").write_text(textwrap.dedent(SIGINT_CHILD))
    out_path, err_path = tmp / "stdout.txt", tmp / "stderr.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-u", "child.py", str(request.param)],
                                cwd=tmp, env=subprocess_env(), stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + 90
            while len(_epochs_printed(out_path)) < 3:
                assert proc.poll() is None, err_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no epoch line within 90 s"
                time.sleep(0.05)
            seen = len(_epochs_printed(out_path))
            os.kill(proc.pid, signal.SIGINT)
            sent = time.monotonic()
            returncode = proc.wait(timeout=60)
            exit_seconds = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    completed = subprocess.CompletedProcess(proc.args, returncode, out_path.read_text(),
                                            err_path.read_text())
    return {"completed": completed, "seen": seen, "exit_seconds": exit_seconds, "tmp": tmp,
            "n_best": request.param}


def test_sigint_subprocess_exits_zero_and_prints_finite_predictions(sigint_run):
    result = result_of(sigint_run["completed"])
    assert result["finite"] and result["shape"] == [200]
    assert np.isfinite(np.load(sigint_run["tmp"] / "pred.npy")).all()


def test_sigint_subprocess_warns_training_interrupted_on_stderr(sigint_run):
    assert "training interrupted" in sigint_run["completed"].stderr.lower()


def test_sigint_subprocess_ends_the_training_at_once(sigint_run):
    result = result_of(sigint_run["completed"])
    assert result["stop_reason"] == "interrupted"
    assert result["n_iter"] < 10000
    assert sigint_run["exit_seconds"] < 30


def test_sigint_subprocess_keeps_the_best_or_averaged_version(sigint_run):
    result = result_of(sigint_run["completed"])
    assert result["best_epoch"] is not None
    if sigint_run["n_best"] > 1:  # the averaged file is written after the interrupt
        assert result["averaged"] and result["best_epoch"] in result["averaged"]
        assert result["net_equals_file"]
    else:
        assert result["averaged"] == []


# ====================================================================== atomic files


RLIMIT_CHILD = """
import json, os, resource, signal, sys
import numpy as np, torch
from sktorch_auto import TorchRegressor
from sktorch_auto.core.checkpoint import load_checkpoint, save_checkpoint
from sktorch_auto.core.run import DivergedError

mode = sys.argv[1]
os.makedirs("out", exist_ok=True)
path = os.path.join("out", "model.skt" if mode == "estimator" else "model.pt")
rng = np.random.RandomState(0)
X = rng.normal(size=(40, 3)); y = X @ [1.0, 2.0, 3.0]
small = TorchRegressor(n_epochs=2, hidden_layer_sizes=(4,), device="cpu", random_state=0)
small.fit(X, y)
if mode == "estimator":
    small.save(path)
    big = TorchRegressor(n_epochs=1, hidden_layer_sizes=(256, 256), device="cpu",
                         random_state=0).fit(X, y)
    write = lambda: big.save(path)
else:
    save_checkpoint(path, {"state_dict": small.net_.state_dict(), "meta": {"n": 1}})
    write = lambda: save_checkpoint(path, {"state_dict": {"w": torch.randn(300_000)}})
before = open(path, "rb").read()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
limit = max(4 * len(before), 65536)
hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
error = None
try:
    write()
except BaseException as exc:
    error = {"type": type(exc).__name__, "is_oserror": isinstance(exc, OSError),
             "message": str(exc)}
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
after = open(path, "rb").read()
if mode == "estimator":
    loaded = TorchRegressor.load(path)
    loadable = bool(np.array_equal(loaded.predict(X), small.predict(X)))
else:
    content = load_checkpoint(path)
    loadable = all(torch.equal(content["state_dict"][k], v)
                   for k, v in small.net_.state_dict().items())
print("RESULT " + json.dumps({"error": error, "identical": before == after,
                              "loadable": loadable, "files": sorted(os.listdir("out")),
                              "path": path, "limit": limit}))
"""


@pytest.fixture(scope="module", params=["estimator", "checkpoint"])
def size_limited_write(request, tmp_path_factory):
    _linux_only()
    tmp = tmp_path_factory.mktemp(f"rlimit_{request.param}")
    return request.param, result_of(run_script(tmp, RLIMIT_CHILD, request.param))


def test_write_over_the_size_limit_raises_oserror_naming_the_path(size_limited_write):
    _, result = size_limited_write
    assert result["error"] is not None, "the write did not fail: the limit was too high"
    assert result["error"]["is_oserror"], result["error"]
    assert result["path"] in result["error"]["message"]


def test_write_over_the_size_limit_leaves_the_previous_file_bit_identical(size_limited_write):
    _, result = size_limited_write
    assert result["identical"]


def test_write_over_the_size_limit_leaves_the_previous_file_loadable(size_limited_write):
    _, result = size_limited_write
    assert result["loadable"]


def test_write_over_the_size_limit_leaves_no_temporary_file(size_limited_write):
    mode, result = size_limited_write
    assert result["files"] == ["model.skt" if mode == "estimator" else "model.pt"]


# ============================================================ corrupted estimator files


@pytest.fixture(scope="module")
def saved_regressor(tmp_path_factory):
    X, y = _data(n=40)
    reg = TorchRegressor(**FAST).fit(X, y)
    path = tmp_path_factory.mktemp("saved") / "reg.skt"
    reg.save(path)
    return reg, X, path.read_bytes()


def _positions(data, reg):
    """Byte offsets of meaningful parts of a saved estimator file."""
    largest = max(reg.net_.state_dict().values(), key=lambda t: t.numel())
    weight = largest.detach().cpu().contiguous().numpy().tobytes()
    name = data.index(b"TorchRegressor")
    central = data.rfind(b"PK\x01\x02")
    return {
        "tensor-data": data.index(weight) + 5,
        "estimator-name": name + 3,
        "parameter-value": data.index(b"auto") + 1,
        "checksum": data.index(b"checksum") + 40,
        "zip-local-header": 1,
        "zip-central-directory": central + 20,
        "zip-entry-name": data.rfind(b"/data.pkl") + 2,  # in the central directory
    }


POSITION_NAMES = ["tensor-data", "estimator-name", "parameter-value", "checksum",
                  "zip-local-header", "zip-central-directory", "zip-entry-name"]


@pytest.mark.parametrize("where", POSITION_NAMES)
def test_estimator_file_with_a_flipped_byte_is_refused_with_value_error(saved_regressor,
                                                                        tmp_path, where):
    reg, _, data = saved_regressor
    pos = _positions(data, reg)[where]
    corrupted = bytearray(data)
    corrupted[pos] ^= 0x01
    (tmp_path / "bad.skt").write_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match="bad.skt"):
        TorchRegressor.load(tmp_path / "bad.skt")


def test_estimator_file_whose_content_key_is_damaged_is_refused_with_value_error(
        saved_regressor, tmp_path):
    _, _, data = saved_regressor
    pos = data.index(b"content") + 6
    corrupted = bytearray(data)
    corrupted[pos] ^= 0x01  # 'content' -> 'contenu'
    (tmp_path / "bad.skt").write_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match="bad.skt"):
        TorchRegressor.load(tmp_path / "bad.skt")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # a flipped protocol byte
def test_every_single_bit_flip_is_refused_or_loads_the_same_model(saved_regressor, tmp_path):
    """Flip one bit at every offset: the load must raise ValueError, or (for bytes that
    do not matter, like zip padding) give exactly the same predictions. Never another
    exception, never a different model."""
    reg, X, data = saved_regressor
    expected = reg.predict(X)
    path = tmp_path / "flip.skt"
    wrong = {}
    for pos in range(len(data)):
        corrupted = bytearray(data)
        corrupted[pos] ^= 0x01
        path.write_bytes(bytes(corrupted))
        try:
            loaded = TorchRegressor.load(path)
        except ValueError:
            continue
        except Exception as exc:  # noqa: BLE001 - the point of the test
            wrong[pos] = f"{type(exc).__name__}: {str(exc)[:80]}"
            continue
        if not np.array_equal(loaded.predict(X), expected):
            wrong[pos] = "silent load of a different model"
    assert not wrong, f"{len(wrong)} offsets misbehave, e.g. {dict(list(wrong.items())[:5])}"


# ======================================================================= no code


class _Payload:
    """Unpickling this creates a directory: code execution on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _payload_file(tmp_path, writer):
    marker = tmp_path / "pwned"
    record = {"format": ckpt.FORMAT, "version": ckpt.VERSION, "checksum": "",
              "content": {"estimator": "TorchRegressor", "evil": _Payload(marker)}}
    path = tmp_path / "evil.skt"
    if writer == "torch":
        torch.save(record, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(record, f)
    return path, marker


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_estimator_load_refuses_a_pickle_payload_without_running_it(tmp_path, writer):
    path, marker = _payload_file(tmp_path, writer)
    with pytest.raises(ValueError, match="evil.skt"):
        TorchRegressor.load(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_the_pickle_payload_file_is_a_real_exploit(tmp_path, writer):
    path, marker = _payload_file(tmp_path, writer)
    with open(path, "rb") as f:
        torch.load(f, weights_only=False) if writer == "torch" else pickle.load(f)
    assert marker.exists()


def _crafted_estimator_file(saved_regressor, tmp_path, module, marker):
    """A real saved regressor re-written (with a valid checksum) to name os.system as its
    network builder, with the builder's arguments running a shell command."""
    _, _, data = saved_regressor
    (tmp_path / "real.skt").write_bytes(data)
    content = load_checkpoint(tmp_path / "real.skt")
    content["builder"] = {"module": module, "qualname": "system", "args": None}
    content["params"] = {**content["params"], "net_builder_kwargs": {
        "command": f"touch {marker}"}}
    save_checkpoint(tmp_path / "crafted.skt", content)
    return tmp_path / "crafted.skt"


@pytest.mark.parametrize("module", ["os", "posix"])
def test_estimator_file_naming_os_system_as_builder_is_refused(saved_regressor, tmp_path,
                                                               module):
    marker = tmp_path / "pwned"
    path = _crafted_estimator_file(saved_regressor, tmp_path, module, marker)
    with pytest.raises(ValueError, match="system"):
        TorchRegressor.load(path)
    assert not marker.exists()


def test_estimator_file_naming_os_system_is_refused_even_with_trust_builder(saved_regressor,
                                                                            tmp_path):
    marker = tmp_path / "pwned"
    path = _crafted_estimator_file(saved_regressor, tmp_path, "os", marker)
    with pytest.raises(ValueError):
        TorchRegressor.load(path, trust_builder=True)  # os.system is really posix.system
    assert not marker.exists()


# ==================================================================== determinism


DETERMINISM_CHILD = """
import sys
import numpy as np
from sktorch_auto import TorchClassifier, TorchRegressor

rng = np.random.RandomState(1)
X = rng.normal(size=(120, 4))
y = X @ [1.0, -2.0, 0.5, 3.0] + 0.3 * rng.normal(size=120)
reg = TorchRegressor(n_epochs=6, hidden_layer_sizes=(16, 16), device="cpu",
                     random_state=int(sys.argv[2]), n_best_nets=2, dropout=0.1).fit(X, y)
labels = np.array(["a", "b", "c"])[np.digitize(y, [-1.0, 1.0])]
clf = TorchClassifier(n_epochs=6, hidden_layer_sizes=(16,), device="cpu",
                      random_state=int(sys.argv[2])).fit(X, labels)
np.save(sys.argv[1] + "_reg.npy", reg.predict(X))
np.save(sys.argv[1] + "_clf.npy", clf.predict_proba(X))
print("RESULT {}")
"""


@pytest.fixture(scope="module")
def determinism_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("determinism")
    for name, seed, hashseed in [("first", 0, "1"), ("second", 0, "2"), ("other", 1, "1")]:
        result_of(run_script(tmp, DETERMINISM_CHILD, name, seed, PYTHONHASHSEED=hashseed))
    return tmp


@pytest.mark.parametrize("kind", ["reg", "clf"])
def test_same_random_state_gives_bit_identical_predictions_across_processes(
        determinism_runs, kind):
    first = np.load(determinism_runs / f"first_{kind}.npy")
    second = np.load(determinism_runs / f"second_{kind}.npy")
    assert first.tobytes() == second.tobytes()


def test_another_random_state_gives_other_predictions_across_processes(determinism_runs):
    """The check above could fail: the seed does reach the training."""
    first = np.load(determinism_runs / "first_reg.npy")
    other = np.load(determinism_runs / "other_reg.npy")
    assert not np.array_equal(first, other)


# ========================================================================= no leaks


LEAK_CHILD = """
import gc, json, os, warnings
import numpy as np
from sktorch_auto import TorchClassifier, TorchRegressor

warnings.simplefilter("ignore")

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def n_fds():
    return len(os.listdir("/proc/self/fd"))

rng = np.random.RandomState(0)
X = rng.normal(size=(40, 3)); y = X @ [1.0, 2.0, 3.0]; labels = (y > 0).astype(int)

def one_fit(i):
    if i % 2:
        est = TorchClassifier(n_epochs=2, hidden_layer_sizes=(8,), device="cpu",
                              random_state=i).fit(X, labels)
    else:
        est = TorchRegressor(n_epochs=2, hidden_layer_sizes=(8,), device="cpu",
                             random_state=i).fit(X, y)
    est.predict(X)

for i in range(10):
    one_fit(i)
gc.collect()
rss0, fd0 = rss_mb(), n_fds()
for i in range(150):
    one_fit(i)
gc.collect()
print("RESULT " + json.dumps({"rss0": rss0, "rss1": rss_mb(), "fd0": fd0, "fd1": n_fds()}))
"""


@pytest.fixture(scope="module")
def leak_run(tmp_path_factory):
    _linux_only()
    return result_of(run_script(tmp_path_factory.mktemp("leaks"), LEAK_CHILD, timeout=180))


def test_150_fits_grow_resident_memory_by_at_most_30_mb(leak_run):
    assert leak_run["rss1"] - leak_run["rss0"] <= 30, leak_run


def test_150_fits_leave_no_open_files(leak_run):
    assert leak_run["fd1"] <= leak_run["fd0"], leak_run


def test_estimator_divergence_on_raw_large_inputs_names_standardize():
    # Finite data that diverges: the message says what to change, not "look for NaN".
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4)) * 1000 + 1000
    y = X @ [1.0, 2.0, 3.0, 0.5]
    reg = TorchRegressor(n_epochs=5, random_state=0, device="cpu", standardize=False,
                         learning_rate=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergedError, match="inputs and targets are finite.*standardize="):
            reg.fit(X, y)
    assert not hasattr(reg, "net_")  # nothing half-fitted
    assert np.isfinite(TorchRegressor(n_epochs=5, random_state=0, device="cpu",
                                      learning_rate=1e-2).fit(X, y).predict(X)).all()
