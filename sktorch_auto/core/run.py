"""One training run: the policy's decisions, the optimizer, the kept versions, the files.

:class:`TrainingRun` is what :meth:`PytorchTrainer.train` drives epoch by epoch; it turns
the pure decisions of :class:`~sktorch_auto.core.policy.TrainingPolicy` into actions on
the network, the optimizer and the checkpoint files.
"""

import math
import os
import time
import warnings

import torch
from tqdm.auto import tqdm

from .checkpoint import save_checkpoint
from .criterion import check_output_shape
from .manual import manual_step
from .optim import make_optimizer
from .policy import BestVersions, TrainingPolicy


class DivergedError(ValueError):
    """Training's loss was not finite from the first epoch: no usable network."""


def _snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def average_states(states):
    """Element-wise mean of state dicts; non-float entries come from the first one."""
    first = states[0]
    if len(states) == 1:
        return dict(first)
    return {
        key: torch.stack([s[key] for s in states]).mean(dim=0)
        if value.is_floating_point() else value
        for key, value in first.items()
    }


def autocast_forward(device):
    """``forward(net, inputs)`` under autocast: float16 on CUDA, bfloat16 elsewhere."""
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def forward(net, inputs):
        with torch.autocast(device.type, dtype=dtype):
            output = net(*inputs)
        return output.float()

    return forward


def _grad_scaler():
    scaler = getattr(torch.amp, "GradScaler", None)  # torch >= 2.3
    return scaler("cuda") if scaler is not None else torch.cuda.amp.GradScaler()


class TrainingRun:
    """State of one training run: policy, optimizer, kept versions, files, report."""

    def __init__(self, trainer, name, n_epochs, learning_rate, with_restarts, n_best_nets,
                 verbose, amp=False, compile=False, weight_decay=0.0, tol=0.0):
        self.trainer = trainer
        device = trainer.device
        self.net = trainer.net
        if compile:
            self.net = torch.compile(trainer.net, **(
                {"backend": compile} if isinstance(compile, str) else {}))
        self.amp = amp
        self.manual = None if amp or compile else manual_step(trainer.net, trainer.criterion)
        self.scaler = _grad_scaler() if amp and device.type == "cuda" else None
        self.name = name
        self.n_epochs = n_epochs
        self.verbose = verbose
        self.with_restarts = with_restarts
        self.tol = tol
        initial = 1e-3 if learning_rate == "auto" else learning_rate  # until the range test
        self.policy = TrainingPolicy(n_epochs, initial, with_restarts, tol)
        self.weight_decay = weight_decay
        self.optimizer = make_optimizer(trainer.net.parameters(), initial, weight_decay)
        self.best = BestVersions(n_best_nets)
        self.n_best_nets = n_best_nets
        self.stop_reason = "n_epochs"
        self.saved_epoch = None  # epoch of the version in {name}.pt
        self.started = time.perf_counter()
        trainer.history = []

    def set_initial_learning_rate(self, learning_rate):
        """Start from ``learning_rate`` (the one a range test chose)."""
        self.policy = TrainingPolicy(self.n_epochs, learning_rate, self.with_restarts, self.tol)
        self.optimizer.set_learning_rate(learning_rate)
        if self.verbose:
            tqdm.write(f"learning rate {learning_rate:.3g} (range test)")

    def forward(self, inputs):
        """The network's output for a batch (in float32 under mixed precision)."""
        if not self.amp:
            return self.net(*inputs)
        return autocast_forward(self.trainer.device)(self.net, inputs)

    def train_batch(self, inputs, weight, target):
        """One optimizer step on a batch; return its (detached) training loss."""
        if self.manual is not None:  # a plain MLP: gradients written out, no autograd graph
            loss = self.manual(inputs, target, weight)
            if loss is not None:
                self.optimizer.step()
                return loss
        output = self.forward(inputs)
        check_output_shape(output, target)
        loss = self.trainer.criterion(output, target, weight)
        self.step(loss)
        return loss.detach()

    def step(self, loss):
        """One optimizer step on ``loss`` (scaled against float16 underflow on CUDA)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def end_epoch(self, epoch, train_loss, valid_loss, valid_objective=None):
        """Act on the policy's decision for this epoch; return whether to stop."""
        trainer = self.trainer
        decision = self.policy.update(valid_loss)
        if decision.diverged:
            self.stop_reason = "diverged"
            warnings.warn(f"The validation loss became {valid_loss} at epoch {epoch}: "
                          "training stopped.", RuntimeWarning, stacklevel=4)
            return True
        # The history first and the file last: a Ctrl-C in between leaves them agreeing
        # (finish() writes a best version whose file was cut short).
        trainer.history.append({
            "epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
            "valid_objective": valid_objective,
            "learning_rate": decision.learning_rate, "new_best": decision.new_best,
            "decay": decision.decay, "restart": decision.restart,
            "seconds": time.perf_counter() - self.started,
        })
        self.best.offer(valid_loss, epoch, lambda: _snapshot(trainer.net))
        if decision.new_best:
            self._save_best()
        if decision.restart:
            self.optimizer = make_optimizer(trainer.net.parameters(), decision.learning_rate,
                                            self.weight_decay)
        else:
            self.optimizer.set_learning_rate(decision.learning_rate)
        self._report(trainer.history[-1])
        if decision.stop:
            self.stop_reason = "early_stopping"
        return decision.stop

    def _save_best(self):
        """S12: write the best version to ``{name}.pt`` (nothing when name is None)."""
        loss, epoch, state = self.best.best
        if self.name is not None and self.saved_epoch != epoch:
            save_checkpoint(f"{self.name}.pt", self.trainer._checkpoint_content(
                state, epoch=epoch, valid_loss=loss))
            self.saved_epoch = epoch

    def stop_file_found(self):
        """S14: ``stop_{name}`` in the working directory stops training; it is removed."""
        if self.name is None:
            return False
        path = f"stop_{os.path.basename(self.name)}"
        if not os.path.exists(path):
            return False
        try:
            os.remove(path)
        except OSError:
            pass
        if self.stop_reason == "n_epochs":  # early stopping in the same epoch says more
            self.stop_reason = "stop_file"
        return True

    def _report(self, entry):
        if not self.verbose:
            return
        events = [e for e in ("new_best", "decay", "restart") if entry[e]]
        # train and valid side by side in the loss training minimises (scaled targets);
        # the unscaled loss, which early stopping goes by, after it when it differs.
        loss, scaled = entry["valid_loss"], entry.get("valid_objective")
        valid = f"valid {loss:.5g}"
        if scaled is not None and math.isfinite(loss) and not math.isclose(
                scaled, loss, rel_tol=1e-6, abs_tol=1e-12):
            valid = f"valid {scaled:.5g} [unscaled {loss:.5g}]"
        tqdm.write(
            f"epoch {entry['epoch']:>4}/{self.n_epochs}  train {entry['train_loss']:.5g}  "
            f"{valid}  lr {entry['learning_rate']:.3g}  "
            + " ".join(e.replace("new_best", "*best") for e in events)
        )

    def finish(self):
        """Put the averaged (or best) version in the network; write the files (S13, S15)."""
        trainer = self.trainer
        trainer.stop_reason = self.stop_reason
        best = self.best.best
        if best is None:
            trainer.best_epoch = trainer.best_loss = None
            trainer.averaged_epochs = []
            if self.stop_reason == "diverged":
                raise DivergedError(
                    "The loss was not finite from the first epoch: no usable network. "
                    "Check the dataset's inputs and targets for NaN or infinity (one such "
                    "sample makes every loss NaN). With finite data, the steps were too "
                    "large: standardise inputs of large magnitude (RAdam's first steps "
                    "are momentum SGD steps, as large as the gradients) or lower the "
                    "learning rate.")
            warnings.warn("Training ended before any epoch was validated; the network is "
                          "left as it is.", RuntimeWarning, stacklevel=3)
            return
        trainer.best_loss, trainer.best_epoch = best[0], best[1]
        self._save_best()  # in case an interruption cut the last write short
        chosen = self.best.for_averaging() if self.n_best_nets > 1 else [best]
        trainer.averaged_epochs = sorted(e[1] for e in chosen) if self.n_best_nets > 1 else []
        state = average_states([e[2] for e in chosen])
        trainer.net.load_state_dict(state)
        if self.n_best_nets > 1 and self.name is not None:
            save_checkpoint(f"{self.name}_avg.pt", trainer._checkpoint_content(
                state, averaged_epochs=trainer.averaged_epochs))
        if self.verbose:
            averaged = (f", averaged epochs {trainer.averaged_epochs}"
                        if trainer.averaged_epochs else "")
            tqdm.write(f"best valid {best[0]:.5g} at epoch {best[1]}{averaged}; "
                       f"stopped: {self.stop_reason} after {len(trainer.history)} epochs")
