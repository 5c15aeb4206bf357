"""RAdam combined with Lookahead (S29).

torch ships RAdam but no Lookahead, so :class:`Lookahead` is a small wrapper:
every ``k`` steps the slow weights move ``alpha`` of the way towards the fast
weights of the inner optimizer, and the fast weights restart from there.

:class:`RAdam` computes torch's RAdam with torch's fused Adam kernel: a rectified
RAdam step is exactly an Adam step with the learning rate times the rectification
and ``eps / sqrt(1 - beta2**t)``. On small networks the optimizer step is a large
share of a training step; calling the fused kernel directly makes it about four
times as fast as ``torch.optim``'s Adam or RAdam.
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
_FUSED_SUPPORT = {}


def _fused_supported(device, dtype):
    """Whether this torch has a fused Adam kernel for ``device`` and ``dtype`` (probed once)."""
    key = (device, dtype)
    if key not in _FUSED_SUPPORT:
        try:
            one = [torch.zeros(1, device=device, dtype=dtype)]
            _FUSED_ADAM(one, [torch.zeros_like(one[0])], [torch.zeros_like(one[0])],
                        [torch.zeros_like(one[0])], [], [torch.ones((), device=device)],
                        lr=0.0, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                        amsgrad=False, maximize=False)
            _FUSED_SUPPORT[key] = True
        except (RuntimeError, NotImplementedError, TypeError):
            _FUSED_SUPPORT[key] = False
    return _FUSED_SUPPORT[key]


class Adam:
    """Adam (Kingma & Ba, 2015), the update of ``torch.optim.Adam`` without weight decay.

    Computed by torch's fused Adam kernel when all parameters share a device and dtype it
    supports, else by multi-tensor operations. It bypasses ``torch.optim``: its per-step
    bookkeeping costs three times the kernel on small networks, and its first use imports
    torch's compiler stack (over a second, in every new process).

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
    lr : float
    betas : (float, float), default=(0.9, 0.999)
    eps : float, default=1e-8

    Attributes
    ----------
    param_groups : list of dict
        One group: ``params`` and ``lr`` (set it to change the learning rate).
    state : dict
        Per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``, as in ``torch.optim.Adam``.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.betas, self.eps = betas, eps
        self.param_groups = [{"params": self.params, "lr": lr}]
        devices = {p.device for p in self.params}
        # While every parameter takes every step, one counter tensor stands for all (one
        # increment per step instead of a multi-tensor one); they part ways otherwise.
        self._shared_step = (torch.zeros((), dtype=torch.float32, device=devices.pop())
                             if len(devices) == 1 else None)
        self._shared_count = 0  # its value, kept on the host: no device sync per step
        self.state = {
            p: {"step": self._shared_step if self._shared_step is not None
                else torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
            for p in self.params}
        kinds = {(p.device, p.dtype) for p in self.params}
        self._direct = (_FUSED_ADAM is not None and len(kinds) == 1
                        and _fused_supported(*kinds.pop()))

    @property
    def lr(self):
        return self.param_groups[0]["lr"]

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_()
                p.grad.zero_()

    def _with_grads(self):
        params = [p for p in self.params if p.grad is not None]
        return params, [self.state[p] for p in params]

    @torch.no_grad()
    def step(self):
        params, states = self._with_grads()
        if params:
            self._adam_update(self.lr, self.eps, params, *self._buffers(params, states))

    def _buffers(self, params, states):
        """Gradients, moments and step counters of ``params``; the counters advance by one."""
        if self._shared_step is not None and len(params) == len(self.params):
            self._shared_step.add_(1)
            self._shared_count += 1
            steps = [self._shared_step] * len(params)
        else:
            if self._shared_step is not None:  # a parameter without gradient this time
                for state in self.state.values():
                    state["step"] = state["step"].clone()
                self._shared_step = None
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
        return ([p.grad for p in params], [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states], steps)

    def _step_groups(self, n, steps):
        """``(t, indices)``: the step count shared by each group of the ``n`` parameters."""
        if self._shared_step is not None:
            return [(self._shared_count, range(n))]
        counts = torch.stack(steps).tolist()  # parameters skipped steps: rare, one sync
        return [(t, [i for i in range(n) if counts[i] == t]) for t in sorted(set(counts))]

    def _update_moments(self, grads, exp_avgs, exp_avg_sqs):
        beta1, beta2 = self.betas
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)

    def _adam_update(self, lr, eps, params, grads, exp_avgs, exp_avg_sqs, steps):
        """Adam's update of ``params`` (counters already advanced) with ``lr`` and ``eps``."""
        beta1, beta2 = self.betas
        if self._direct:
            _FUSED_ADAM(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=lr, beta1=beta1,
                        beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)
            return
        self._update_moments(grads, exp_avgs, exp_avg_sqs)
        for p, m, v, t in zip(params, exp_avgs, exp_avg_sqs, steps):  # per-parameter steps
            t = float(t)
            denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
            p.addcdiv_(m, denom, value=-lr / (1 - beta1**t))


class RAdam(Adam):
    """Rectified Adam (Liu et al., 2020), the same update as ``torch.optim.RAdam``.

    While the variance of the adaptive rate is intractable (the first steps), the
    update is SGD with momentum on the bias-corrected first moment; afterwards it is
    Adam's update with the learning rate times the rectification and
    ``eps / sqrt(1 - beta2**t)``, computed by Adam's fused kernel.

    Parameters
    ----------
    params, lr, betas, eps
        As in :class:`Adam`.
    weight_decay : float, default=0.0
        Decoupled weight decay (as in AdamW): every step multiplies the weights by
        ``1 - lr * weight_decay`` before the update.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, betas, eps)
        self.weight_decay = weight_decay

    def set_learning_rate(self, learning_rate):
        self.param_groups[0]["lr"] = learning_rate

    @torch.no_grad()
    def step(self):
        params, states = self._with_grads()
        if not params:
            return
        if self.weight_decay:
            torch._foreach_mul_(params, 1 - self.lr * self.weight_decay)
        buffers = self._buffers(params, states)
        beta1, beta2 = self.betas
        rho_inf = 2 / (1 - beta2) - 1
        for t, group in self._step_groups(len(params), buffers[3]):
            grads, exp_avgs, exp_avg_sqs, steps = (
                buffers if len(group) == len(params) else
                [[column[i] for i in group] for column in buffers])
            subset = params if len(group) == len(params) else [params[i] for i in group]
            bias1, bias2 = 1 - beta1**t, 1 - beta2**t
            rho_t = rho_inf - 2 * t * beta2**t / bias2
            if rho_t > 5:
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                                 / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                self._adam_update(self.lr * rect, self.eps / math.sqrt(bias2), subset,
                                  grads, exp_avgs, exp_avg_sqs, steps)
            else:
                self._update_moments(grads, exp_avgs, exp_avg_sqs)
                torch._foreach_add_(subset, exp_avgs, alpha=-self.lr / bias1)


#: RAdam's second-moment decay. RAdam's warm-up lasts about ``2 / (1 - beta2)`` steps (its
#: rectification is 0.2 after 100 steps and 0.65 after 1,000 with torch's 0.999); small
#: tabular fits take only 400-2,000 steps, so with 0.999 most of a fit ran at a fraction of
#: its learning rate. With 0.995 the benchmark's fits take a quarter less time at the same
#: scores (``benchmarks/quality.py``).
BETAS = (0.9, 0.995)


def make_optimizer(params, learning_rate, weight_decay=0.0):
    """S29: RAdam (on torch's fused Adam kernel, ``betas=BETAS``) inside Lookahead."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("The network has no trainable parameters.")
    return Lookahead(RAdam(params, learning_rate, betas=BETAS, weight_decay=weight_decay))
