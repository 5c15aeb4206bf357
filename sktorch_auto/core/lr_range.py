"""Learning-rate range test: the seed's "learning-rate selection", made automatic.

A copy of the network is trained for a few dozen steps with Adam while the learning
rate grows exponentially; the smoothed loss falls, bottoms out and then explodes. The
rate a tenth of the one at the bottom is a fast rate that is still stable (the rule of
Smith's range test as popularised by fastai). The network itself is not touched.
"""

import copy
import math

from .manual import manual_step
from .optim import Adam

#: Range of rates tried, and the number of steps that sweep it.
START, END, STEPS = 1e-5, 1.0, 100
#: The chosen rate is kept within these bounds.
LOWEST, HIGHEST = 1e-4, 3e-2
#: The smoothed loss is an average of about ten batches' losses (its factor 0.9) only
#: after this many steps; before, one lucky first batch (a noisy regression target) would
#: be "the bottom" at the smallest rate (a non-finite loss still ends the sweep at once).
BURN_IN = 10


def _forever(batches):
    while True:
        yield from batches


def find_learning_rate(net, criterion, batches, forward=None, steps=None):
    """The learning rate suggested by a range test on ``batches`` (training batches).

    Parameters
    ----------
    net : torch.nn.Module
        Copied; the copy is trained, the original is left as it is.
    criterion : callable
        ``criterion(output, target, weight)``: the training (scaled) loss.
    batches : iterable of (inputs, weight, target)
        Training batches; iterated again as often as needed.
    forward : callable, optional
        ``forward(net, inputs) -> output`` (mixed precision, say); ``net(*inputs)`` by default.
    steps : int, optional
        Steps of the sweep; :data:`STEPS` (100) by default.

    Returns
    -------
    learning_rate : float
    """
    steps = STEPS if steps is None else steps
    probe = copy.deepcopy(net).train()
    params = [p for p in probe.parameters() if p.requires_grad]
    optimizer = Adam(params, START)
    manual = manual_step(probe, criterion) if forward is None else None
    growth = (END / START) ** (1 / (steps - 1))
    average, best_loss, best_rate = 0.0, math.inf, None
    source = _forever(batches)
    for step in range(steps):
        rate = START * growth**step
        for group in optimizer.param_groups:
            group["lr"] = rate
        inputs, weight, target = next(source)
        loss = manual(inputs, target, weight) if manual is not None else None
        if loss is None:
            output = forward(probe, inputs) if forward is not None else probe(*inputs)
            loss = criterion(output, target, weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        value = loss.item()  # a hundred syncs, once per training: affordable
        average = 0.9 * average + 0.1 * value
        smoothed = average / (1 - 0.9 ** (step + 1))
        if not math.isfinite(smoothed) or smoothed > 4 * best_loss:
            break
        if step >= min(BURN_IN, steps // 2) and smoothed < best_loss:
            best_loss, best_rate = smoothed, rate
    if best_rate is None:
        return LOWEST
    return float(min(max(best_rate / 10, LOWEST), HIGHEST))
