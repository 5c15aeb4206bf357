"""Learning curves of a training: losses per epoch, decays, restarts, kept versions.

Needs matplotlib (``pip install sktorch_auto[plot]``).
"""

import matplotlib.pyplot as plt


class TrainingCurveDisplay:
    """Training and validation loss per epoch, in the spirit of scikit-learn's displays.

    The learning-rate decays and optimizer restarts are marked, and the best version
    (and the versions that were averaged) highlighted.

    Parameters
    ----------
    history : list of dict
        Per-epoch entries as in ``history_`` / ``PytorchTrainer.history``.
    best_epoch : int, optional
    averaged_epochs : list of int, optional

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    lines_ : dict
        The 'train' and 'valid' lines.

    Examples
    --------
    >>> from sktorch_auto.plotting import TrainingCurveDisplay  # doctest: +SKIP
    >>> TrainingCurveDisplay.from_estimator(fitted_regressor).plot()  # doctest: +SKIP
    """

    def __init__(self, history, best_epoch=None, averaged_epochs=None):
        self.history = history
        self.best_epoch = best_epoch
        self.averaged_epochs = list(averaged_epochs or [])

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the curves of a fitted TorchRegressor or TorchClassifier."""
        if not hasattr(estimator, "history_"):
            raise ValueError("The estimator is not fitted: it has no training history.")
        display = cls(estimator.history_, estimator.best_epoch_, estimator.averaged_epochs_)
        return display.plot(ax=ax)

    @classmethod
    def from_trainer(cls, trainer, *, ax=None):
        """Plot the curves of a PytorchTrainer's last training."""
        display = cls(trainer.history, trainer.best_epoch, trainer.averaged_epochs)
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw on ``ax`` (a new figure by default); return ``self``."""
        if not self.history:
            raise ValueError("Nothing to plot: the history is empty.")
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        epochs = [h["epoch"] for h in self.history]
        train = [h["train_loss"] for h in self.history]
        # The training objective is on scaled targets: compare it with the validation
        # loss on the same scale (histories without it show the unscaled loss).
        valid = [h.get("valid_objective", h["valid_loss"]) for h in self.history]
        self.lines_ = {
            "train": ax.plot(epochs, train, label="training loss")[0],
            "valid": ax.plot(epochs, valid, label="validation loss")[0],
        }
        for label, key, style in (("learning-rate decay", "decay", ":"),
                                  ("optimizer restart", "restart", "--")):
            marks = [h["epoch"] for h in self.history if h.get(key)]
            for i, epoch in enumerate(marks):
                ax.axvline(epoch, color="gray", linestyle=style, linewidth=0.8,
                           label=label if i == 0 else None)
        by_epoch = dict(zip(epochs, valid))
        kept = [e for e in self.averaged_epochs if e in by_epoch]
        if kept:
            ax.scatter(kept, [by_epoch[e] for e in kept], marker="o", facecolors="none",
                       edgecolors="tab:green", s=60, label="averaged versions", zorder=3)
        if self.best_epoch in by_epoch:
            ax.scatter([self.best_epoch], [by_epoch[self.best_epoch]], marker="*",
                       color="tab:red", s=120, label="best version", zorder=4)
        if min(train + valid) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (on scaled targets)")
        ax.legend(loc="upper right", fontsize="small")
        self.ax_, self.figure_ = ax, ax.figure
        return self
