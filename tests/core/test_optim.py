"""RAdam + Lookahead (S29) and set_seed (S30)."""

import copy
import random

import numpy as np
import pytest
import torch

from sktorch_auto.core import set_seed
from sktorch_auto.core.optim import Adam, Lookahead, RAdam, make_optimizer


def _sgd_lookahead(k, alpha, lr=0.1):
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    g = torch.tensor([0.5, 1.0])
    opt = Lookahead(torch.optim.SGD([p], lr=lr), k=k, alpha=alpha)

    def step():
        opt.zero_grad()
        (p * g).sum().backward()  # constant gradient g
        opt.step()

    return p, g, opt, step


def test_s29_lookahead_fast_weights_move_between_synchronisations():
    p, g, _, step = _sgd_lookahead(k=3, alpha=0.5)
    p0 = p.detach().clone()
    step()
    step()
    assert torch.allclose(p.detach(), p0 - 2 * 0.1 * g)


def test_s29_lookahead_after_k_steps_slow_weights_are_the_lerp():
    p, g, opt, step = _sgd_lookahead(k=3, alpha=0.5)
    p0 = p.detach().clone()
    for _ in range(3):
        step()
    fast = p0 - 3 * 0.1 * g
    slow = p0 + 0.5 * (fast - p0)
    assert torch.allclose(p.detach(), slow)
    assert torch.allclose(opt._slow[0], slow)
    for _ in range(3):  # second cycle starts from the slow weights
        step()
    slow2 = slow + 0.5 * ((slow - 3 * 0.1 * g) - slow)
    assert torch.allclose(p.detach(), slow2)


def test_s29_lookahead_alpha_one_is_the_inner_optimizer():
    p, g, _, step = _sgd_lookahead(k=2, alpha=1.0)
    p0 = p.detach().clone()
    for _ in range(4):
        step()
    assert torch.allclose(p.detach(), p0 - 4 * 0.1 * g)


def test_s29_set_learning_rate_reaches_the_inner_optimizer():
    _, _, opt, _ = _sgd_lookahead(k=3, alpha=0.5)
    opt.set_learning_rate(0.025)
    assert [g["lr"] for g in opt.optimizer.param_groups] == [0.025]
    assert opt.param_groups is opt.optimizer.param_groups


def test_s29_make_optimizer_is_radam_inside_lookahead():
    net = torch.nn.Linear(3, 1)
    net.bias.requires_grad_(False)
    opt = make_optimizer(net.parameters(), 0.01)
    assert isinstance(opt, Lookahead)
    assert isinstance(opt.optimizer, RAdam)
    assert opt.optimizer.param_groups[0]["lr"] == 0.01
    # Frozen parameters are left out.
    assert len(opt.optimizer.param_groups[0]["params"]) == 1


@pytest.mark.parametrize("dtype, weight_decay, direct", [
    (torch.float32, 0.0, True), (torch.float64, 0.0, True), (torch.float32, 0.5, True),
    (torch.float32, 0.0, False)])  # direct: the fused kernel called without Adam.step
def test_s29_radam_matches_torch_radam_step_for_step(dtype, weight_decay, direct):
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    ours = ours.to(dtype)
    theirs = copy.deepcopy(ours)
    initial = copy.deepcopy(ours)
    opt_ours = RAdam(list(ours.parameters()), 1e-2, weight_decay=weight_decay)
    opt_ours._direct = opt_ours._direct and direct
    opt_theirs = torch.optim.RAdam(theirs.parameters(), lr=1e-2, weight_decay=weight_decay,
                                   decoupled_weight_decay=True)
    X, y = torch.randn(64, 5, dtype=dtype), torch.randn(64, 1, dtype=dtype)
    for _ in range(30):  # covers the un-rectified first steps and the rectified ones
        for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(X), y).backward()
            opt.step()
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    assert not torch.allclose(ours[0].weight, initial[0].weight)  # it did train


@pytest.mark.parametrize("direct", [True, False])
def test_adam_matches_torch_adam_step_for_step(direct):
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    theirs = copy.deepcopy(ours)
    opt_ours = Adam(list(ours.parameters()), 1e-2)
    opt_ours._direct = opt_ours._direct and direct
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-2)
    X, y = torch.randn(64, 5), torch.randn(64, 1)
    for step in range(20):
        for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            for group in opt.param_groups:
                group["lr"] = 1e-2 * (step + 1)  # a learning rate changed between steps
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(X), y).backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, theirs_cls", [(Adam, torch.optim.Adam),
                                               (RAdam, torch.optim.RAdam)])
@pytest.mark.parametrize("direct", [True, False])
def test_step_counters_stay_per_parameter_when_some_have_no_gradient(cls, theirs_cls, direct):
    """A branch used every third step only: its parameters skip steps, so their step
    counters (Adam's bias corrections) fall behind the others', as in torch.optim."""
    torch.manual_seed(0)
    ours = torch.nn.ModuleList([torch.nn.Linear(5, 1), torch.nn.Linear(5, 1)])
    theirs = copy.deepcopy(ours)
    opt_ours = cls(list(ours.parameters()), 1e-2)
    opt_ours._direct = opt_ours._direct and direct
    opt_theirs = theirs_cls(theirs.parameters(), lr=1e-2)
    X, y = torch.randn(32, 5), torch.randn(32, 1)
    for step in range(12):
        for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            out = net[0](X) + (net[1](X) if step % 3 == 0 else 0)
            torch.nn.functional.mse_loss(out, y).backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    counts = [float(opt_ours.state[p]["step"]) for p in ours.parameters()]
    assert counts == [12, 12, 4, 4]


@pytest.mark.skipif(not hasattr(torch.amp, "GradScaler"),
                    reason="torch.amp.GradScaler needs torch 2.3")
def test_s29_grad_scaler_steps_the_optimizer_like_unscaled_training():
    """What amp=True does on CUDA, checked with the CPU scaler: scaled gradients are
    unscaled through Lookahead's param_groups before RAdam steps; an overflow skips it."""
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    ref = copy.deepcopy(net)
    opt, ref_opt = make_optimizer(net.parameters(), 1e-2), make_optimizer(ref.parameters(), 1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    X, y = torch.randn(32, 3), torch.randn(32, 1)
    for _ in range(12):
        opt.zero_grad()
        scaler.scale(torch.nn.functional.mse_loss(net(X), y)).backward()
        scaler.step(opt)
        scaler.update()
        ref_opt.zero_grad()
        torch.nn.functional.mse_loss(ref(X), y).backward()
        ref_opt.step()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    before = [p.detach().clone() for p in net.parameters()]
    opt.zero_grad()
    scaler.scale(net(X).sum() * float("inf")).backward()
    scaler.step(opt)  # non-finite gradients: the step is skipped
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_training_never_imports_torch_compiler_stack():
    """torch.optim's first use imports torch._dynamo (over a second per process); the
    optimizers here and a whole estimator fit must not pay that."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from sktorch_auto import TorchRegressor\n"
            "X = np.random.default_rng(0).normal(size=(64, 3))\n"
            "TorchRegressor(n_epochs=2, device='cpu').fit(X, X[:, 0]).predict(X)\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_s29_make_optimizer_refuses_a_network_without_trainable_parameters():
    net = torch.nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ValueError):
        make_optimizer(net.parameters(), 0.01)


def test_s29_sync_slow_weights_restarts_from_current_weights():
    p, _, opt, step = _sgd_lookahead(k=3, alpha=0.5)
    step()
    with torch.no_grad():
        p.fill_(7.0)
    opt.sync_slow_weights()
    assert torch.equal(opt._slow[0], torch.full((2,), 7.0))
    assert opt._counter == 0


def test_s30_set_seed_seeds_python_numpy_and_torch():
    set_seed(123)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(123)
    again = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(124)
    other = (random.random(), np.random.rand(), torch.rand(1).item())
    assert first == again
    assert all(a != b for a, b in zip(first, other))
