"""Hand-written gradients of plain MLPs: the same numbers as autograd, and only where they
apply (everything else must still go through autograd)."""

import numpy as np
import pytest
import torch
from torch import nn

import sktorch_auto.core.run as run_module
from sktorch_auto.core import ArrayDataset, MixedCriterion, PytorchTrainer, SoftmaxCriterion
from sktorch_auto.core.lr_range import find_learning_rate
from sktorch_auto.core.manual import manual_step

from .helpers import linear_problem

ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.GELU, nn.SiLU,
               lambda: nn.GELU(approximate="tanh")]


def _mlp(d_in, d_out, activation=nn.ReLU, bias=True, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, 7, bias=bias, dtype=dtype), activation(),
                         nn.Linear(7, 5, dtype=dtype), activation(),
                         nn.Linear(5, d_out, bias=bias, dtype=dtype))


def _autograd(net, criterion, x, target, weight):
    net.zero_grad(set_to_none=True)
    loss = criterion(net(x), target, weight)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in net.parameters()]


def _manual(net, criterion, x, target, weight):
    net.zero_grad(set_to_none=True)
    loss = manual_step(net, criterion)([x], target, weight)
    return loss, [p.grad.clone() for p in net.parameters()]


def _assert_same(net, criterion, x, target, weight=None):
    loss_a, grads_a = _autograd(net, criterion, x, target, weight)
    loss_m, grads_m = _manual(net, criterion, x, target, weight)
    torch.testing.assert_close(loss_m, loss_a)
    assert len(grads_m) == len(grads_a)
    for a, m in zip(grads_a, grads_m):
        torch.testing.assert_close(m, a)
        assert m.abs().sum() > 0  # every layer actually receives a gradient


def _rng_tensor(*shape, seed=1):
    return torch.as_tensor(np.random.default_rng(seed).normal(size=shape))


CASES = {
    # name: (n_outputs, regression flags or None for softmax, target maker, weight maker)
    "mse": (2, [1, 1], lambda n: 100 + 5 * _rng_tensor(n, 2), None),
    "mse, large offset": (1, [1], lambda n: 1e6 + _rng_tensor(n, 1), None),
    "mse, sample weights": (2, [1, 1], lambda n: _rng_tensor(n, 2),
                            lambda n: _rng_tensor(n, seed=3).abs()),
    "bce": (3, [0, 0, 0], lambda n: (_rng_tensor(n, 3) > 0).double(), None),
    "mixed, output weights": (3, [1, 0, 1], lambda n: torch.cat(
        [_rng_tensor(n, 1), (_rng_tensor(n, 1, seed=2) > 0).double(), _rng_tensor(n, 1)], 1),
        lambda n: _rng_tensor(n, 3, seed=4).abs()),
    "softmax": (4, None, lambda n: nn.functional.one_hot(
        torch.as_tensor(np.arange(n) % 4), 4).double(), None),
    "softmax, soft targets": (3, None, lambda n: torch.softmax(_rng_tensor(n, 3), 1), None),
    "softmax, soft targets, class weights": (3, None, lambda n: torch.softmax(
        _rng_tensor(n, 3), 1), lambda n: _rng_tensor(n, 3, seed=5).abs()),
    "softmax, sample weights": (3, None, lambda n: nn.functional.one_hot(
        torch.as_tensor(np.arange(n) % 3), 3).double(), lambda n: _rng_tensor(n, seed=6).abs()),
}


def _case(case, n=12):
    """``(criterion, n_outputs, target, weight)`` of one of :data:`CASES`."""
    n_out, flags, make_target, make_weight = CASES[case]
    target = make_target(n)
    weight = make_weight(n) if make_weight else None
    if flags is None:
        criterion = SoftmaxCriterion()
    else:
        mean, std = target.mean(0).numpy(), target.std(0).numpy()
        flags_arr = np.asarray(flags, bool)
        criterion = MixedCriterion(None, flags, (np.where(flags_arr, mean, 0),
                                                 np.where(flags_arr, std, 1)))
    return criterion, n_out, target, weight


@pytest.mark.parametrize("case", list(CASES))
def test_criterion_loss_and_gradient_equal_the_loss_and_its_autograd_gradient(case):
    criterion, n_out, target, weight = _case(case)
    output = _rng_tensor(len(target), n_out, seed=8).requires_grad_()
    loss = criterion(output, target, weight)
    loss.backward()
    fused_loss, fused_grad = criterion.loss_and_gradient(output.detach(), target, weight)
    torch.testing.assert_close(fused_loss, loss.detach())
    torch.testing.assert_close(fused_grad, output.grad)
    torch.testing.assert_close(criterion.gradient(output.detach(), target, weight), output.grad)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_gradients_and_loss_equal_autograd(activation, case):
    criterion, n_out, target, weight = _case(case)
    net = _mlp(3, n_out, activation)
    _assert_same(net, criterion, _rng_tensor(len(target), 3, seed=7), target, weight)


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh])
@pytest.mark.parametrize("case", ["mse", "softmax, sample weights"])
def test_dropout_draws_the_same_masks_and_gradients_as_autograd(activation, case):
    criterion, n_out, target, weight = _case(case, n=40)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16, dtype=torch.float64), activation(), nn.Dropout(0.3),
                        nn.Linear(16, 8, dtype=torch.float64), activation(), nn.Dropout(0.3),
                        nn.Linear(8, n_out, dtype=torch.float64))
    x = _rng_tensor(len(target), 3, seed=7)
    torch.manual_seed(123)
    loss_a, grads_a = _autograd(net, criterion, x, target, weight)
    torch.manual_seed(123)
    loss_m, grads_m = _manual(net, criterion, x, target, weight)
    torch.testing.assert_close(loss_m, loss_a)
    for a, m in zip(grads_a, grads_m):
        torch.testing.assert_close(m, a)
    torch.manual_seed(124)  # another draw: another loss (the masks are really random)
    loss_other, _ = _manual(net, criterion, x, target, weight)
    assert not torch.allclose(loss_other, loss_m)
    net.eval()  # no dropout in eval mode: the plain network's gradients
    _assert_same(net, criterion, x, target, weight)


def test_layers_without_bias_and_float32():
    net = _mlp(3, 2, nn.ReLU, bias=False, dtype=torch.float32)
    target = _rng_tensor(9, 2).float()
    criterion = MixedCriterion(None, [1, 1], ([0.0, 0.0], [1.0, 1.0]))
    loss_a, grads_a = _autograd(net, criterion, _rng_tensor(9, 3).float(), target, None)
    loss_m, grads_m = _manual(net, criterion, _rng_tensor(9, 3).float(), target, None)
    torch.testing.assert_close(loss_m, loss_a)
    for a, m in zip(grads_a, grads_m):
        torch.testing.assert_close(m, a)


@pytest.mark.parametrize("activation", [nn.GELU, lambda: nn.GELU(approximate="tanh")])
@pytest.mark.parametrize("bias", [True, False])
def test_float32_gelu_networks_column_major_equal_autograd(activation, bias):
    # float32 GELU networks keep hidden layers column-major (torch's own GELU kernel)
    net = _mlp(3, 2, activation, bias=bias, dtype=torch.float32)
    criterion = MixedCriterion(None, [1, 1], ([0.0, 0.0], [1.0, 1.0]))
    x, target = _rng_tensor(9, 3).float(), _rng_tensor(9, 2, seed=2).float()
    loss_m, grads_m = _manual(net, criterion, x, target, None)
    loss_a, grads_a = _autograd(net, criterion, x, target, None)
    torch.testing.assert_close(loss_m, loss_a)
    for a, m in zip(grads_a, grads_m):
        torch.testing.assert_close(m, a)


class _Custom(nn.Sequential):
    pass


def _criterion():
    return MixedCriterion(None, [1], ([0.0], [1.0]))


@pytest.mark.parametrize("make_net, criterion", [
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.ELU(), nn.Linear(4, 1)), _criterion()),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.Dropout(1.0), nn.Linear(4, 1)), _criterion()),
    (lambda: nn.Sequential(nn.ReLU(), nn.Linear(3, 1)), _criterion()),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.ReLU(inplace=True), nn.Linear(4, 1)),
     _criterion()),
    (lambda: nn.Sequential(), _criterion()),
    (lambda: _Custom(nn.Linear(3, 1)), _criterion()),
    (lambda: nn.Linear(3, 1), _criterion()),
    (lambda: nn.Sequential(nn.Linear(3, 1)), lambda out, target, weight=None: out.sum()),
])
def test_other_networks_and_criteria_are_left_to_autograd(make_net, criterion):
    assert manual_step(make_net(), criterion) is None


def test_hooks_and_frozen_parameters_are_left_to_autograd():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert manual_step(net, _criterion()) is not None
    handle = net[1].register_forward_hook(lambda module, args, out: None)
    assert manual_step(net, _criterion()) is None
    handle.remove()
    net[0].weight.requires_grad_(False)
    assert manual_step(net, _criterion()) is None
    net[0].weight.requires_grad_(True)
    step = manual_step(net, _criterion())
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, a, o: None)
    try:  # a global hook registered after the check still counts
        assert step([torch.zeros(2, 3)], torch.zeros(2, 1), None) is None
    finally:
        handle.remove()


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support")
def test_batches_it_cannot_handle_are_refused():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    step = manual_step(net, _criterion())
    target = torch.zeros(2, 1)
    assert step([torch.zeros(2, 3), torch.zeros(2, 3)], target, None) is None  # two inputs
    assert step([torch.zeros(2, 3, dtype=torch.float64)], target, None) is None  # dtype
    assert step([torch.zeros(2, 3).to_sparse_csr()], target, None) is None
    assert step([torch.zeros(2, 3)], target, None) is not None


def test_output_and_target_of_different_shapes_is_the_s21_error():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"\(5, 2\).*\(5, 1\).*S21"):
        manual_step(net, MixedCriterion(None, [1], ([0.0], [1.0])))(
            [torch.zeros(5, 3)], torch.zeros(5, 1), None)


def _train(X, y, hook, n_epochs=4, learning_rate=1e-2):
    torch.manual_seed(0)
    net = _mlp(X.shape[1], y.shape[1], nn.Tanh)
    if hook:  # any hook sends training through autograd
        net[1].register_forward_hook(lambda module, args, out: None)
    trainer = PytorchTrainer(lambda: net, [], "cpu")
    torch.manual_seed(1)
    trainer.train(ArrayDataset(X, y), name=None, batch_size=8, n_epochs=n_epochs,
                  learning_rate=learning_rate, verbose=False)
    return trainer


def test_training_with_hand_written_gradients_matches_autograd(monkeypatch):
    X, y = linear_problem(n=64, offset=50.0)
    X, y = X.astype(np.float64), np.c_[y, (X[:, :1] > 0)].astype(np.float64)
    calls = []
    real = run_module.manual_step
    monkeypatch.setattr(run_module, "manual_step",
                        lambda net, crit: calls.append(real(net, crit)) or calls[-1])
    manual, auto = _train(X, y, hook=False), _train(X, y, hook=True)
    assert calls[0] is not None and calls[1] is None  # the two paths were taken
    for a, m in zip(auto.net.parameters(), manual.net.parameters()):
        torch.testing.assert_close(m, a, rtol=1e-9, atol=1e-10)
    assert [h["valid_loss"] for h in manual.history] == pytest.approx(
        [h["valid_loss"] for h in auto.history], rel=1e-9)
    manual_lr, auto_lr = (_train(X, y, hook, n_epochs=1, learning_rate="auto").learning_rate
                          for hook in (False, True))
    assert manual_lr == pytest.approx(auto_lr, rel=1e-9)


def test_range_test_leaves_the_network_alone():
    X, y = linear_problem(n=64)
    net = _mlp(3, 1, nn.ReLU, dtype=torch.float32)
    before = [p.detach().clone() for p in net.parameters()]
    batches = [([torch.as_tensor(X[i:i + 16])], None, torch.as_tensor(y[i:i + 16]))
               for i in range(0, 64, 16)]
    rate = find_learning_rate(net, MixedCriterion(None, [1], ([0.0], [1.0])), batches)
    assert 1e-4 <= rate <= 3e-2
    assert all(torch.equal(a, p) for a, p in zip(before, net.parameters()))
    assert all(p.grad is None for p in net.parameters())
