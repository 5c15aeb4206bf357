import pytest

from sktorch_auto.core import set_seed


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test runs in its own temporary working directory with fixed seeds,
    so that checkpoints and stop files never land in the repository."""
    monkeypatch.chdir(tmp_path)
    set_seed(0)
    yield tmp_path


BUILDER_SOURCE = '''
import torch


def make_net(d_in, d_out):
    return torch.nn.Sequential(
        torch.nn.Linear(d_in, 8), torch.nn.Tanh(), torch.nn.Linear(8, d_out)
    )
'''


@pytest.fixture
def builder_module(tmp_path, monkeypatch):
    """A module ``skt_test_builders`` in tmp_path, importable here and in subprocesses."""
    import importlib
    import sys

    name = "skt_test_builders"
    (tmp_path / f"{name}.py").write_text(BUILDER_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module(name)
    monkeypatch.setitem(sys.modules, name, module)  # removed again after the test
    return module
