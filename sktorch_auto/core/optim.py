"""RAdam combined with Lookahead (S29).

torch ships RAdam but no Lookahead, so :class:`Lookahead` is a small wrapper:
every ``k`` steps the slow weights move ``alpha`` of the way towards the fast
weights of the inner optimizer, and the fast weights restart from there.
"""

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
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate


def make_optimizer(params, learning_rate):
    """S29: RAdam (multi-tensor implementation) inside Lookahead."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("The network has no trainable parameters.")
    return Lookahead(torch.optim.RAdam(params, lr=learning_rate, foreach=True))
