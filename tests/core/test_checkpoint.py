"""Checkpoints: weights only (S2), loading (S16), and refusing corrupted or crafted files."""

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from sktorch_auto.core import ArrayDataset, PytorchTrainer, register_builder
from sktorch_auto.core import checkpoint as ckpt
from sktorch_auto.core.checkpoint import (
    atomic_write,
    builder_record,
    load_checkpoint,
    save_checkpoint,
)

from .helpers import linear_net, linear_problem, subprocess_env


def _trained(builder, name="model", offset=1000.0, n_epochs=15):
    X, y = linear_problem(n=64, offset=offset, slope=3.0)
    trainer = PytorchTrainer(builder, [3, 1], device="cpu")
    trainer.train(ArrayDataset(X, y), name=name, n_epochs=n_epochs, batch_size=16,
                  learning_rate=0.02, verbose=False)
    return trainer, X, y


# ------------------------------------------------------------------- format basics


def test_s2_checkpoint_holds_weights_and_plain_data_only(builder_module):
    _trained(builder_module.make_net)
    record = torch.load("model.pt", weights_only=True)  # no pickled module needed
    content = record["content"]
    assert set(content["state_dict"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert all(isinstance(v, torch.Tensor) for v in content["state_dict"].values())
    assert content["builder"] == {"module": "skt_test_builders", "qualname": "make_net",
                                  "args": [3, 1]}
    assert not any(isinstance(v, torch.nn.Module) for v in content.values())


def test_s2_loading_calls_the_builder_again_with_its_arguments(builder_module):
    trainer, X, _ = _trained(builder_module.make_net)
    calls = []

    def counting_builder(*args):
        calls.append(args)
        return builder_module.make_net(*args)

    loaded = PytorchTrainer.load("model", device="cpu", net_builder=counting_builder)
    assert calls == [(3, 1)]
    assert np.allclose(loaded.predict(X), trainer.predict(X), atol=1e-4)


def test_checkpoint_round_trip(tmp_path):
    content = {"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "meta": {"epoch": 3}}
    save_checkpoint(tmp_path / "c.pt", content)
    again = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(again["state_dict"]["w"], content["state_dict"]["w"])
    assert again["meta"] == {"epoch": 3}


def test_builder_record_of_a_lambda_or_main_function_is_none():
    assert builder_record(lambda: None, []) is None
    assert builder_record(linear_net, [3, 1])["qualname"] == "linear_net"
    assert builder_record(linear_net, [object()])["args"] is None  # not plain data


# ------------------------------------------------------------------- corrupted files


def _tensor_data_offset(path, payload):
    """Offset in the zip file of the stored bytes equal to ``payload``."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if "/data/" in info.filename and zf.read(info) == payload:
                assert info.compress_type == zipfile.ZIP_STORED
                with open(path, "rb") as f:
                    f.seek(info.header_offset + 26)
                    n_name, n_extra = np.frombuffer(f.read(4), dtype="<u2")
                return info.header_offset + 30 + int(n_name) + int(n_extra)
    raise AssertionError("tensor data not found in the checkpoint")


def test_checkpoint_with_a_flipped_byte_in_tensor_data_is_refused(tmp_path):
    weights = torch.arange(64, dtype=torch.float32)
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"state_dict": {"w": weights}})
    payload = weights.numpy().tobytes()
    offset = _tensor_data_offset(path, payload) + 21
    data = bytearray(path.read_bytes())
    assert data[offset] == payload[21]  # the byte really is tensor data
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        load_checkpoint(path)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"state_dict": {"w": torch.ones(100)}})
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ValueError):
        load_checkpoint(path)


def test_checkpoint_with_a_flipped_byte_is_refused_by_trainer_load(builder_module):
    _trained(builder_module.make_net, n_epochs=3)
    content = load_checkpoint("model.pt")
    payload = content["state_dict"]["0.weight"].numpy().tobytes()
    offset = _tensor_data_offset("model.pt", payload) + 3
    data = bytearray(open("model.pt", "rb").read())
    data[offset] ^= 0x01
    open("model.pt", "wb").write(bytes(data))
    with pytest.raises(ValueError, match="model.pt"):
        PytorchTrainer.load("model", device="cpu", net_builder=builder_module.make_net)


class _Payload:
    """Unpickling this creates a directory: code execution on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_checkpoint_with_a_pickle_payload_is_refused_without_running_it(tmp_path, writer):
    marker = tmp_path / "pwned"
    record = {"format": ckpt.FORMAT, "version": 1,
              "content": {"state_dict": {}, "evil": _Payload(marker)}, "checksum": ""}
    path = tmp_path / "evil.pt"
    if writer == "torch":
        torch.save(record, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(record, f)
    with pytest.raises(ValueError):
        load_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(ValueError):
        PytorchTrainer.load(str(tmp_path / "evil"), device="cpu", net_builder=linear_net)
    assert not marker.exists()
    # The file is a real exploit: an unsafe load does run it.
    with open(path, "rb") as f:
        if writer == "torch":
            torch.load(f, weights_only=False)
        else:
            pickle.load(f)
    assert marker.exists()


def _crafted_builder_file(path, module, qualname, args):
    net = torch.nn.Linear(3, 1)
    save_checkpoint(path, {"state_dict": net.state_dict(), "criterion": None,
                           "builder": {"module": module, "qualname": qualname, "args": args},
                           "meta": {}})


@pytest.mark.parametrize("module", ["os", "posix"])
def test_crafted_checkpoint_naming_os_system_is_refused(tmp_path, module):
    marker = tmp_path / "pwned"
    _crafted_builder_file(tmp_path / "crafted.pt", module, "system", [f"touch {marker}"])
    with pytest.raises(ValueError, match="system"):
        PytorchTrainer.load(str(tmp_path / "crafted"), device="cpu")
    assert not marker.exists()


def test_crafted_checkpoint_whose_builder_name_lies_is_refused_even_if_trusted(tmp_path):
    marker = tmp_path / "pwned"
    # os.system's real module is posix: an alias is not the builder a file may name.
    _crafted_builder_file(tmp_path / "crafted.pt", "os", "system", [f"touch {marker}"])
    with pytest.raises(ValueError):
        PytorchTrainer.load(str(tmp_path / "crafted"), device="cpu", trust_builder=True)
    assert not marker.exists()


def test_non_checkpoint_and_newer_version_are_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not an sktorch_auto checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION + 1, "content": {}},
               tmp_path / "new.pt")
    with pytest.raises(ValueError, match="newer"):
        load_checkpoint(tmp_path / "new.pt")


def test_atomic_write_failure_keeps_the_previous_file(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"previous")

    def failing(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(OSError, match="c.pt"):
        atomic_write(path, failing)
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["c.pt"]


def test_atomic_write_gives_the_file_the_umask_mode(tmp_path):
    previous = os.umask(0o027)
    try:
        atomic_write(tmp_path / "c.pt", lambda f: f.write(b"x"))
    finally:
        os.umask(previous)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600


def test_atomic_write_into_a_missing_folder_names_the_path(tmp_path):
    path = tmp_path / "no such folder" / "c.pt"
    with pytest.raises(OSError, match="no such folder") as info:
        atomic_write(path, lambda f: f.write(b"x"))
    assert ".part" not in str(info.value)  # the user's path, not the temporary file's
    assert not (tmp_path / "no such folder").exists()


def test_a_checkpoint_in_torch_legacy_format_loads(tmp_path):
    net = torch.nn.Linear(3, 1)
    content = {"state_dict": net.state_dict(), "criterion": None, "builder": None,
               "meta": {}}
    save_checkpoint(tmp_path / "zip.pt", content)
    record = torch.load(tmp_path / "zip.pt", weights_only=True)
    torch.save(record, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert (tmp_path / "legacy.pt").read_bytes()[:1] == b"\x80"  # a pickle stream
    loaded = load_checkpoint(tmp_path / "legacy.pt")
    torch.testing.assert_close(loaded["state_dict"]["weight"], net.weight.detach())


def test_a_file_that_is_not_a_checkpoint_gets_a_plain_message(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not an sktorch_auto model file") as info:
        load_checkpoint(csv)
    assert "weights_only" not in str(info.value)
    # A torch file holding objects: refused without torch's advice to unpickle it.
    torch.save({"net": torch.nn.Linear(2, 1)}, tmp_path / "module.pt")
    with pytest.raises(ValueError, match="not a readable") as info:
        load_checkpoint(tmp_path / "module.pt")
    assert "weights_only" not in str(info.value)


# ------------------------------------------------------------------------ S16 load


def test_s16_class_load_refuses_an_unregistered_builder_without_trust(builder_module):
    _trained(builder_module.make_net, n_epochs=3)
    with pytest.raises(ValueError, match="trust_builder"):
        PytorchTrainer.load("model", device="cpu")


def test_s16_class_load_accepts_net_builder_and_trust_builder(builder_module):
    trainer, X, y = _trained(builder_module.make_net)
    expected = trainer.predict(X)
    by_builder = PytorchTrainer.load("model", device="cpu", net_builder=builder_module.make_net)
    trusted = PytorchTrainer.load("model", device="cpu", trust_builder=True)
    assert np.allclose(by_builder.predict(X), expected, atol=1e-4)
    assert np.allclose(trusted.predict(X), expected, atol=1e-4)
    assert trusted.device == torch.device("cpu")
    # Original units: targets around 1000.
    assert abs(float(np.mean(expected)) - float(np.mean(y))) < 0.5 * float(np.std(y))


def test_s16_class_load_accepts_a_registered_builder(builder_module, monkeypatch):
    monkeypatch.setattr(ckpt, "_TRUSTED_BUILDERS", set())
    trainer, X, _ = _trained(builder_module.make_net, n_epochs=3)
    register_builder(builder_module.make_net)
    loaded = PytorchTrainer.load("model", device="cpu")
    assert np.allclose(loaded.predict(X), trainer.predict(X), atol=1e-4)


def test_s16_instance_load_puts_the_weights_into_the_instance(builder_module):
    trainer, X, _ = _trained(builder_module.make_net)
    fresh = PytorchTrainer(builder_module.make_net, [3, 1], device="cpu")
    assert not np.allclose(fresh.predict(X), trainer.predict(X), atol=1e-2)
    assert fresh.load("model") is fresh
    assert np.allclose(fresh.predict(X), trainer.predict(X), atol=1e-4)


def test_s16_load_accepts_the_file_path(builder_module):
    trainer, X, _ = _trained(builder_module.make_net, n_epochs=3)
    loaded = PytorchTrainer.load("model.pt", device="cpu", net_builder=builder_module.make_net)
    assert np.allclose(loaded.predict(X), trainer.predict(X), atol=1e-4)


SUBPROCESS_LOAD = """
import numpy as np
from sktorch_auto import PytorchTrainer
trainer = PytorchTrainer.load("model", device="cpu", trust_builder=True)
np.save("pred_fresh.npy", trainer.predict(np.load("X.npy")))
"""


def test_s16_s2_load_in_a_fresh_process_gives_the_same_predictions(builder_module, tmp_path):
    trainer, X, y = _trained(builder_module.make_net, n_epochs=25)
    np.save(tmp_path / "X.npy", X)
    expected = trainer.predict(X)
    result = subprocess.run([sys.executable, "-c", SUBPROCESS_LOAD], cwd=tmp_path,
                            env=subprocess_env(tmp_path), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    fresh = np.load(tmp_path / "pred_fresh.npy")
    assert fresh.shape == expected.shape == y.shape
    assert np.allclose(fresh, expected, atol=1e-4)
    # Predictions in original units (targets around 1000), not the scaled ones.
    assert np.abs(fresh - y).mean() < 0.5 * y.std()


class _HalvingCriterion:
    """A custom criterion: MSE on the raw output, predictions halved."""

    def __init__(self, dataset=None):
        pass

    def __call__(self, output, target, weights=None, unscaled=False):
        return torch.nn.functional.mse_loss(output, target)

    def postproc(self, pred):
        return pred / 2


def test_a_file_of_a_custom_criterion_warns_that_it_is_not_held(tmp_path):
    X, y = linear_problem(n=40)
    trainer = PytorchTrainer(linear_net, [3, 1], device="cpu").train(
        ArrayDataset(X, y), name="custom", n_epochs=2, batch_size=8, verbose=False,
        criterion=_HalvingCriterion)
    expected = trainer.predict(X)
    with pytest.warns(UserWarning, match="_HalvingCriterion"):
        loaded = PytorchTrainer.load("custom", device="cpu", net_builder=linear_net)
    np.testing.assert_allclose(loaded.predict(X), 2 * expected, rtol=1e-5)  # raw outputs
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = trainer.load("custom")  # an instance that has the criterion: silent
    np.testing.assert_allclose(same.predict(X), expected, rtol=1e-6)
