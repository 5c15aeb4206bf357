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


_FUSED_ADAM = getattr(torch, "_fused_adam_", None)


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
    weight_decay : float, default=0.0
        Decoupled weight decay (as in AdamW): every step multiplies the weights by
        ``1 - lr * weight_decay`` before the update.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay = weight_decay
        self.adam = _adam(self.params, lr, betas, eps)
        # The fused kernel called directly: torch's Adam.step spends three times the
        # kernel's time in Python bookkeeping that one device and dtype make useless.
        self._direct = (_FUSED_ADAM is not None and self.adam.defaults.get("fused")
                        and len({(p.device, p.dtype) for p in self.params}) == 1)
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
        if not set_to_none:
            self.adam.zero_grad(set_to_none=False)
            return
        for p in self.params:  # what Adam.zero_grad does, without its profiling hooks
            p.grad = None

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
        if self.weight_decay:
            torch._foreach_mul_(self.params, 1 - self.lr * self.weight_decay)
        if rho_t > 5:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            group["lr"], group["eps"] = self.lr * rect, self.eps / math.sqrt(bias2)
            if self._direct:
                self._fused_step(group["lr"], group["eps"])
            else:
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


    def _fused_step(self, lr, eps):
        """Adam's update by the fused kernel, as ``torch.optim.Adam(fused=True).step``."""
        params = [p for p in self.params if p.grad is not None]
        if not params:
            return
        states = [self.adam.state[p] for p in params]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        beta1, beta2 = self.betas
        _FUSED_ADAM(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                    [s["exp_avg_sq"] for s in states], [], steps, lr=lr, beta1=beta1,
                    beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)


def make_optimizer(params, learning_rate, weight_decay=0.0):
    """S29: RAdam (on torch's fused Adam kernel) inside Lookahead."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("The network has no trainable parameters.")
    return Lookahead(RAdam(params, learning_rate, weight_decay=weight_decay))
