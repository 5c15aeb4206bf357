"""The epoch-level decisions of training, as a pure state machine (rules S9-S13).

Nothing here knows about torch: the trainer feeds one validation loss per epoch
into :class:`TrainingPolicy` and acts on the :class:`Decision` it gets back.
:class:`BestVersions` keeps the best versions of the network by validation loss
and chooses which of them to average.
"""

import math
from dataclasses import dataclass

#: S9: the early-stopping countdown is this share of ``n_epochs``.
PATIENCE_SHARE = 0.15
#: S9: progress is an improvement of at least this share of the best loss.
MIN_IMPROVEMENT = 0.005
#: S10: the learning rate is divided by the golden ratio on a decay.
GOLDEN_RATIO = (1 + math.sqrt(5)) / 2
#: S10: "several epochs without progress": this share of the countdown.
DECAY_SHARE = 0.25
#: S11: a restart comes once this share of the countdown passed without progress.
RESTART_SHARE = 0.2
#: S13: versions whose loss is within this share of the minimum are averaged.
AVERAGE_TOLERANCE = 0.10


def patience_for(n_epochs):
    """Length of the early-stopping countdown for ``n_epochs`` (S9), at least 1."""
    return max(1, math.ceil(PATIENCE_SHARE * n_epochs))


def _is_better(loss, reference, share):
    """Whether ``loss`` beats ``reference`` by at least ``share`` of its magnitude."""
    return loss < reference - share * abs(reference)


@dataclass(frozen=True)
class Decision:
    """What the trainer should do after an epoch.

    Attributes
    ----------
    new_best : bool
        The loss is a new minimum: keep (and save) this version (S12).
    progress : bool
        The loss improved on the best by at least 0.5%: the countdown restarts (S9).
    decay : bool
        The learning rate was divided by the golden ratio (S10).
    restart : bool
        The optimizer must be restarted and the learning rate restored (S11).
    stop : bool
        Training must stop after this epoch (S9), or the loss is not finite.
    diverged : bool
        The loss is NaN or infinite.
    learning_rate : float
        The learning rate to use for the next epoch.
    """

    new_best: bool
    progress: bool
    decay: bool
    restart: bool
    stop: bool
    diverged: bool
    learning_rate: float


class TrainingPolicy:
    """Early stopping, learning-rate decay and optimizer restarts (S9-S11).

    Parameters
    ----------
    n_epochs : int
        Planned number of epochs; the countdown is 15% of it (at least one epoch).
    learning_rate : float
        Initial learning rate, restored by every restart.
    with_restarts : bool, default=True
        Restart the optimizer once 20% of the countdown passed without progress,
        at most once per countdown.
    tol : float, default=0.0
        Progress must also be an improvement of at least ``tol`` times the first
        epoch's loss: once the loss is that close to its floor (a separable
        classification whose loss keeps halving towards zero), further gains do not
        hold off early stopping. 0 is the seed's rule (S9).

    Attributes
    ----------
    patience : int
        Epochs without progress after which training stops.
    decay_every : int
        Epochs without progress between two learning-rate decays.
    restart_after : int
        Epochs without progress after which the optimizer restarts.
    best_loss : float
        Lowest validation loss seen so far.
    stall : int
        Epochs since the last progress.
    learning_rate : float
        Current learning rate.
    """

    def __init__(self, n_epochs, learning_rate, with_restarts=True, tol=0.0):
        self.patience = patience_for(n_epochs)
        self.decay_every = max(1, math.ceil(DECAY_SHARE * self.patience))
        self.restart_after = max(1, math.ceil(RESTART_SHARE * self.patience))
        self.initial_learning_rate = learning_rate
        self.learning_rate = learning_rate
        self.with_restarts = with_restarts
        self.tol = tol
        self._least_gain = None  # tol times the first loss, once it is known
        self.best_loss = math.inf
        # The best loss when progress was last made: small gains below 0.5% add up
        # against it, so a loss that keeps falling slowly is progress, not a stall.
        self._reference = math.inf
        self.stall = 0
        self._restarted = False  # a restart already happened in this countdown

    def update(self, loss):
        """Take one epoch's validation loss and return the :class:`Decision`."""
        if not math.isfinite(loss):
            return Decision(False, False, False, False, True, True, self.learning_rate)
        new_best = loss < self.best_loss
        if self._least_gain is None:
            self._least_gain = self.tol * abs(loss)
        progress = self._reference == math.inf or (
            _is_better(loss, self._reference, MIN_IMPROVEMENT)
            and loss < self._reference - self._least_gain
        )
        if new_best:
            self.best_loss = loss
        if progress:
            self._reference = loss
        restart = decay = False
        if progress:
            self.stall = 0
            self._restarted = False
        else:
            self.stall += 1
            if (
                self.with_restarts
                and not self._restarted
                and self.stall >= self.restart_after
            ):
                restart = self._restarted = True
                self.learning_rate = self.initial_learning_rate
            elif self.stall % self.decay_every == 0:
                decay = True
                self.learning_rate /= GOLDEN_RATIO
        stop = self.stall >= self.patience
        return Decision(
            new_best, progress, decay, restart, stop, False, self.learning_rate
        )


class BestVersions:
    """The ``n_best`` versions with the lowest loss over the whole history (S13).

    Payloads are opaque to this class (the trainer stores weight snapshots); a
    payload is only built when the version enters the kept set, so that a version
    that is not among the best costs nothing.

    Parameters
    ----------
    n_best : int
        How many versions to keep.
    """

    def __init__(self, n_best):
        self.n_best = max(1, int(n_best))
        self.entries = []  # (loss, epoch, payload), sorted by loss

    def offer(self, loss, epoch, make_payload):
        """Keep the version of ``epoch`` if it is among the best; return whether kept."""
        if not math.isfinite(loss):
            return False
        if len(self.entries) >= self.n_best and loss >= self.entries[-1][0]:
            return False
        self.entries.append((loss, epoch, make_payload()))
        self.entries.sort(key=lambda entry: entry[0])
        del self.entries[self.n_best :]
        return True

    @property
    def best(self):
        """The ``(loss, epoch, payload)`` entry with the lowest loss, or None."""
        return self.entries[0] if self.entries else None

    def for_averaging(self, tolerance=AVERAGE_TOLERANCE):
        """The kept entries whose loss is within ``tolerance`` of the minimum."""
        if not self.entries:
            return []
        best = self.entries[0][0]
        limit = best + tolerance * abs(best)
        return [entry for entry in self.entries if entry[0] <= limit]
