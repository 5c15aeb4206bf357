"""RAdam combined with Lookahead (S29).

torch ships RAdam but no Lookahead, so :class:`Lookahead` is a small wrapper:
every ``k`` steps the slow weights move ``alpha`` of the way towards the fast
weights of the inner optimizer, and the fast weights restart from there.

:class:`RAdam` computes torch's RAdam with torch's fused Adam kernel: a rectified
RAdam step is exactly an Adam step with the learning rate times the rectification
and ``eps / sqrt(1 - beta2**t)``. On small networks the optimizer step is a large
share of a training step, and the fused kernel makes it about twice as fast as
torch's multi-tensor RAdam.
"""

import math

import torch


class Lookahead:
    """Lookahead (Zhang et al., 2019) around any torch optimizer.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The inner ("fast") optimizer.
    k : int, default=5
        Fast steps between two synchronisations.
    alpha : float, default=0.5
        Step size of the slow weights towards the fast ones.
    """

    def __init__(self, optimizer, k=5, alpha=0.5):
        self.optimizer = optimizer
        self.k = k
        self.alpha = alpha
        self._params = [p for group in optimizer.param_groups for p in group["params"]]
        self._slow = [p.detach().clone() for p in self._params]
        self._counter = 0

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self):
        self.optimizer.step()
        self._counter += 1
        if self._counter >= self.k:
            self._counter = 0
            fast = [p.data for p in self._params]
            torch._foreach_lerp_(self._slow, fast, self.alpha)
            torch._foreach_copy_(fast, self._slow)

    @torch.no_grad()
    def sync_slow_weights(self):
        """Restart the slow weights from the current ones (after loading weights)."""
        torch._foreach_copy_(self._slow, [p.data for p in self._params])
        self._counter = 0

    def set_learning_rate(self, learning_rate):
        if hasattr(self.optimizer, "set_learning_rate"):
            self.optimizer.set_learning_rate(learning_rate)
        else:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate


def _adam(params, lr, betas, eps):
    """torch's Adam, fused where this torch and device support it, else multi-tensor."""
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, foreach=True)


class RAdam:
    """Rectified Adam (Liu et al., 2020), the same update as ``torch.optim.RAdam``.

    While the variance of the adaptive rate is intractable (the first steps), the
    update is SGD with momentum on the bias-corrected first moment; afterwards it is
    Adam's update scaled by the rectification term, computed by Adam's fused kernel.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
    lr : float
    betas : (float, float), default=(0.9, 0.999)
    eps : float, default=1e-8
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.adam = _adam(self.params, lr, betas, eps)
        self.t = 0
        for p in self.params:  # Adam's state, shared by the un-rectified steps below
            self.adam.state[p].update(
                step=torch.zeros((), dtype=torch.float32, device=p.device),
                exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format),
            )

    @property
    def param_groups(self):
        return self.adam.param_groups

    @property
    def state(self):
        return self.adam.state

    def zero_grad(self, set_to_none=True):
        self.adam.zero_grad(set_to_none=set_to_none)

    def set_learning_rate(self, learning_rate):
        self.lr = learning_rate

    @torch.no_grad()
    def step(self):
        self.t += 1
        beta1, beta2 = self.betas
        bias1, bias2 = 1 - beta1**self.t, 1 - beta2**self.t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * self.t * beta2**self.t / bias2
        group = self.adam.param_groups[0]
        if rho_t > 5:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            group["lr"], group["eps"] = self.lr * rect, self.eps / math.sqrt(bias2)
            self.adam.step()
            return
        params = [p for p in self.params if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        states = [self.adam.state[p] for p in params]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        torch._foreach_add_([s["step"] for s in states], 1)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        torch._foreach_add_(params, exp_avgs, alpha=-self.lr / bias1)


def make_optimizer(params, learning_rate):
    """S29: RAdam (on torch's fused Adam kernel) inside Lookahead."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("The network has no trainable parameters.")
    return Lookahead(RAdam(params, learning_rate))
