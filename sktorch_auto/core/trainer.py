"""``PytorchTrainer``: the seed's trainer (S1-S18), as a library.

The epoch loop lives here and stays short; what to do after each epoch comes from
:class:`~sktorch_auto.core.policy.TrainingPolicy`, batches from
:mod:`~sktorch_auto.core.batches`, files from :mod:`~sktorch_auto.core.checkpoint`.
"""

import functools
import os
import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from .batches import make_batches
from .checkpoint import (
    builder_record,
    load_checkpoint,
    resolve_builder,
    save_checkpoint,
)
from .criterion import build_criterion, criterion_from_state, criterion_state
from .device import resolve_device
from .lr_range import find_learning_rate
from .optim import make_optimizer
from .policy import BestVersions, TrainingPolicy
from .split import train_valid_split

#: Batch size of validation and prediction over in-memory data (results do not depend on it).
EVAL_BATCH_SIZE = 4096


class _hybridmethod:
    """A method that receives the class when called on it, else the instance."""

    def __init__(self, func):
        self.func = func
        functools.update_wrapper(self, func)

    def __get__(self, obj, cls):
        return functools.partial(self.func, cls if obj is None else obj)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")


def _check_train_args(batch_size, n_epochs, train_prop, learning_rate, n_workers,
                      repeat_train, repeat_valid, n_best_nets):
    for name, value, minimum in [
        ("batch_size", batch_size, 1), ("n_epochs", n_epochs, 1), ("n_workers", n_workers, 0),
        ("repeat_train", repeat_train, 1), ("repeat_valid", repeat_valid, 1),
        ("n_best_nets", n_best_nets, 1),
    ]:
        _check_int(name, value, minimum)
    if not isinstance(train_prop, (int, float)) or not 0 < train_prop <= 1:
        raise ValueError(f"train_prop must be a number in (0, 1]; got {train_prop!r}.")
    if learning_rate != "auto" and (
            not isinstance(learning_rate, (int, float)) or not learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number or 'auto'; got "
                         f"{learning_rate!r}.")


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


class PytorchTrainer:
    """Train, save, load and apply a torch network built by ``net_builder`` (S1).

    Parameters
    ----------
    net_builder : callable
        ``net_builder(*net_builder_args)`` returns a fresh ``torch.nn.Module``.
    net_builder_args : sequence, default=()
        Arguments of ``net_builder``. Plain data (numbers, strings, lists) is recorded
        in checkpoints, so that :meth:`load` can rebuild the network by itself.
    device : str or torch.device, default='cuda'
        'cpu', 'cuda', 'cuda:1', ... or 'auto'. Without CUDA, 'cuda' falls back to the
        CPU with a warning.

    Attributes
    ----------
    net : torch.nn.Module
        The network; after :meth:`train`, the averaged version when averaging, else
        the best one (S15).
    criterion : object or None
        The criterion of the last training or of the loaded file.
    history : list of dict
        One entry per epoch of the last training: ``epoch``, ``train_loss`` (the
        scaled training objective), ``valid_loss`` (unscaled: the quality measure that
        early stopping and the best versions go by), ``valid_objective`` (the scaled
        loss on the validation part, comparable with ``train_loss``), ``learning_rate``,
        ``new_best``, ``decay``, ``restart``, ``seconds``.
    best_epoch : int or None
        Epoch (1-based) of the lowest validation loss.
    best_loss : float or None
        That loss.
    averaged_epochs : list of int
        Epochs whose versions were averaged (empty without averaging).
    stop_reason : str or None
        'n_epochs', 'early_stopping', 'stop_file', 'interrupted' or 'diverged'.
    train_indices, valid_indices : ndarray of int
        Rows of the dataset used for training and for validation in the last training.
    learning_rate : float or None
        Initial learning rate of the last training (the one chosen, with 'auto').

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from sktorch_auto import PytorchTrainer
    >>> X = torch.randn(64, 3); y = X.sum(dim=1, keepdim=True)
    >>> trainer = PytorchTrainer(torch.nn.Linear, [3, 1], device="cpu")
    >>> trainer = trainer.train(TensorDataset(X, y), name=None, n_epochs=3, verbose=False)
    >>> trainer.predict(X[:2]).shape
    (2, 1)
    """

    def __init__(self, net_builder, net_builder_args=(), device="cuda"):
        self.net_builder = net_builder
        self.net_builder_args = list(net_builder_args)
        self.device = resolve_device(device)
        self.net = net_builder(*self.net_builder_args).to(self.device)
        self.criterion = None
        self.history = []
        self.best_epoch = self.best_loss = self.stop_reason = None
        self.averaged_epochs = []
        self.train_indices = self.valid_indices = None
        self.learning_rate = None

    # ------------------------------------------------------------------ training
    def train(self, dataset, name="pytorch_model", batch_size=16, criterion="auto",
              n_epochs=50, train_prop=0.9, learning_rate=1e-3, n_workers=0, verbose=True,
              epoch_hook=None, repeat_train=1, repeat_valid=1, n_best_nets=1,
              with_restarts=True, shuffle=True, *, split_seed=None, stratify=None, amp=False,
              compile=False):
        """Train the network on ``dataset`` (S3-S15); return ``self``.

        Parameters
        ----------
        dataset : torch.utils.data.Dataset
            Items ``(input, target)`` or ``(input, weight, target)`` (S19-S24).
        name : str or None, default='pytorch_model'
            Files of this run: ``{name}.pt`` at every new best, ``{name}_avg.pt`` when
            averaging; ``stop_{name}`` in the working directory stops training after the
            current epoch. ``None`` writes no files (the best versions stay in memory).
        batch_size : int, default=16
        criterion : 'auto', class or object, default='auto'
            'auto' is :class:`~sktorch_auto.MixedCriterion`; a class is built with the
            dataset; an object is used as is (S26).
        n_epochs : int, default=50
            Maximum number of epochs; early stopping counts down 15% of it (S9).
        train_prop : float in (0, 1], default=0.9
            Share of the dataset used for training; the rest validates (S3).
        learning_rate : float or 'auto', default=1e-3
            Initial learning rate; 'auto' picks it with a short range test on the
            training part (see :mod:`~sktorch_auto.core.lr_range`), kept as
            ``trainer.learning_rate``.
        n_workers : int, default=0
            DataLoader worker processes, for datasets that go through a DataLoader.
        verbose : bool, default=True
            Progress bars and a line per epoch; silent when False.
        epoch_hook : callable, optional
            Called as ``epoch_hook(trainer)`` after each epoch (S7).
        repeat_train, repeat_valid : int, default=1
            Passes over the training / validation part per epoch (S8).
        n_best_nets : int, default=1
            How many best versions to keep and average (S13).
        with_restarts : bool, default=True
            Restart the optimizer when training stalls (S11).
        shuffle : bool, default=True
            Draw the validation part at random (reproducibly) rather than the last rows.
        split_seed : int, optional
            Seed of the split; the default gives the same split for a dataset every time.
        stratify : array-like, optional
            Labels whose proportions the validation part keeps.
        amp : bool, default=False
            Automatic mixed precision: float16 with gradient scaling on CUDA, bfloat16 on
            the CPU. Faster on recent GPUs; the loss is still computed in float32.
        compile : bool or str, default=False
            Run the network through ``torch.compile`` (a string names its backend). Pays
            off for long trainings on a GPU; compiling takes seconds to minutes.

        Returns
        -------
        self : PytorchTrainer
        """
        _check_train_args(batch_size, n_epochs, train_prop, learning_rate, n_workers,
                          repeat_train, repeat_valid, n_best_nets)
        if len(dataset) == 0:
            raise ValueError("Cannot train on an empty dataset.")
        self.criterion = build_criterion(criterion, dataset)
        train_idx, valid_idx = train_valid_split(
            len(dataset), train_prop, shuffle, seed=split_seed, stratify=stratify
        )
        self.train_indices, self.valid_indices = train_idx, valid_idx
        cache = {}
        train_batches = make_batches(dataset, train_idx, batch_size, True, self.device,
                                     n_workers, cache, dtype=input_dtype(self.net))
        valid_size = EVAL_BATCH_SIZE if cache.get("tensors") is not None else batch_size
        valid_batches = make_batches(dataset, valid_idx, max(batch_size, valid_size), False,
                                     self.device, n_workers, cache, dtype=input_dtype(self.net))
        run = _Run(self, name, n_epochs, learning_rate, with_restarts, n_best_nets, verbose,
                   amp, compile)
        try:
            if learning_rate == "auto":  # inside: a Ctrl-C here ends training gracefully too
                run.set_initial_learning_rate(find_learning_rate(
                    self.net, self.criterion, train_batches,
                    _autocast_forward(self.device) if amp else None))
            self.learning_rate = run.policy.initial_learning_rate
            for epoch in range(1, n_epochs + 1):
                train_loss = self._epoch_pass(train_batches, repeat_train, run, epoch, True)
                valid_loss, valid_objective = self._epoch_pass(valid_batches, repeat_valid,
                                                               run, epoch, False)
                stop = run.end_epoch(epoch, train_loss, valid_loss, valid_objective)
                if epoch_hook is not None and run.stop_reason != "diverged":
                    epoch_hook(self)
                if run.stop_file_found() or stop:
                    break
        except KeyboardInterrupt:
            run.stop_reason = "interrupted"
            warnings.warn("Training interrupted: keeping the best version so far.",
                          RuntimeWarning, stacklevel=2)
        run.finish()
        return self

    def _epoch_pass(self, batches, repeats, run, epoch, training):
        """Mean losses over ``repeats`` passes over ``batches``; trains when ``training``.

        Returns the scaled loss (the training objective) and, when validating, the
        unscaled one (the quality measure) too.
        """
        self.net.train(training)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        total_scaled = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        with torch.enable_grad() if training else torch.inference_mode():
            for _ in range(repeats):
                bar = tqdm(batches, desc=f"epoch {epoch} {'train' if training else 'valid'}",
                           leave=False, disable=not (run.verbose and training))
                for inputs, weight, target in bar:
                    output = run.forward(inputs)
                    if output.shape != target.shape:
                        raise ValueError(
                            f"The network's output has shape {tuple(output.shape)} but the "
                            f"target has shape {tuple(target.shape)}; they must be equal (S21)."
                        )
                    loss = self.criterion(output, target, weight)
                    n = len(target)
                    if training:
                        run.step(loss)
                    else:
                        total_scaled.add_(loss, alpha=n)
                        loss = self.criterion(output, target, weight, unscaled=True)
                    total.add_(loss.detach(), alpha=n)  # stays on the device: no sync
                    count += n
        count = max(count, 1)
        if training:
            return total.item() / count
        return total.item() / count, total_scaled.item() / count

    # ---------------------------------------------------------------- persistence
    def _checkpoint_content(self, state_dict, **meta):
        return {
            "state_dict": state_dict,
            "criterion": criterion_state(self.criterion),
            "builder": builder_record(self.net_builder, self.net_builder_args),
            "meta": meta,
        }

    def save(self, name):
        """Save the current network to ``{name}.pt`` (atomically, with a checksum)."""
        save_checkpoint(f"{name}.pt", self._checkpoint_content(self.net.state_dict()))

    @_hybridmethod
    def load(self_or_cls, name, device=None, *, net_builder=None, net_builder_args=None,
             trust_builder=False):
        """Load ``{name}.pt`` (S16).

        On an instance, the weights go into its network and the instance is returned.
        On the class, the network is rebuilt from the builder the file records (only
        when it is registered or ``trust_builder=True``; else pass ``net_builder``)
        and a new trainer is returned.

        Parameters
        ----------
        name : str
            The training run's name (or the path of a ``.pt`` file).
        device : str, optional
            Where to put the network; the instance's device, or 'cuda' on the class
            (falling back to the CPU when CUDA is missing).
        net_builder : callable, optional
            Rebuild the network with this instead of the builder named by the file.
        net_builder_args : sequence, optional
            Its arguments; by default those recorded in the file.
        trust_builder : bool, default=False
            Import and call the builder the file names even when it is not registered.
            Only for files you trust: a crafted file could name any function.
        """
        path = name if str(name).endswith(".pt") and os.path.exists(name) else f"{name}.pt"
        content = load_checkpoint(path)
        if isinstance(self_or_cls, type):
            record = content.get("builder")
            builder = resolve_builder(record, net_builder, trust_builder, source=path)
            if net_builder_args is None:
                net_builder_args = (record or {}).get("args")
            if net_builder_args is None:
                if net_builder is None:
                    raise ValueError(f"{path!r} does not record the builder's arguments; "
                                     "pass net_builder_args=.")
                net_builder_args = ()
            trainer = self_or_cls(builder, net_builder_args, "cuda" if device is None else device)
        else:
            trainer = self_or_cls
            if device is not None:
                trainer.device = resolve_device(device)
                trainer.net.to(trainer.device)
        trainer.net.load_state_dict(content["state_dict"])
        trainer.net.to(trainer.device)
        restored = criterion_from_state(content.get("criterion"))
        if restored is not None or trainer.criterion is None:
            trainer.criterion = restored
        return trainer

    # ----------------------------------------------------------------- prediction
    def predict_dataset(self, dataset, batch_size=EVAL_BATCH_SIZE, verbose=True):
        """Predictions for every item of ``dataset`` (S17), as a numpy array.

        Items carry targets like training items (fake ones of the right shape when
        unknown). Results do not depend on ``batch_size``.
        """
        return apply_net(self.net, self.criterion, dataset, batch_size, self.device, verbose)

    def predict(self, *data):
        """Predictions for raw inputs, one array per network input (S18).

        Each array holds a batch of samples (first dimension); the result is a numpy
        array of post-processed outputs (probabilities, original units).
        """
        if not data:
            raise TypeError("predict() needs one array per network input.")
        return self.predict_dataset(RawInputs(*data), verbose=False)


def input_dtype(net):
    """Floating dtype of the network's parameters: floating inputs are cast to it."""
    for p in net.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


@torch.inference_mode()
def apply_net(net, criterion, dataset, batch_size=EVAL_BATCH_SIZE, device="cpu", verbose=False,
              finite=True):
    """Post-processed network outputs for every item of ``dataset``, as a numpy array.

    In-memory inputs with NaN or infinity raise ValueError unless ``finite=False``.
    """
    _check_int("batch_size", batch_size, 1)
    net.eval()
    batches = make_batches(dataset, np.arange(len(dataset)), batch_size, False, device,
                           dtype=input_dtype(net), finite=finite)
    outputs = [
        net(*inputs).cpu()
        for inputs, _, _ in tqdm(batches, desc="predict", disable=not verbose, leave=False)
    ]
    if not outputs:
        return np.empty((0,))
    # One post-processing of all outputs: per batch, its kernel launches add up.
    postproc = getattr(criterion, "postproc", None)
    output = torch.cat(outputs)
    if output.is_floating_point() and not torch.isfinite(output).all():
        warnings.warn("Some predictions are NaN or infinite: check the inputs for NaN, "
                      "infinity or values the network's dtype cannot hold.", RuntimeWarning,
                      stacklevel=3)
    return (postproc(output) if postproc is not None else output).numpy()


class RawInputs(torch.utils.data.Dataset):
    """Raw input arrays (one per network input) as an in-memory dataset without targets."""

    def __init__(self, *inputs):
        self.inputs = [x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
                       for x in inputs]
        lengths = [len(x) for x in self.inputs]
        if len(set(lengths)) > 1:
            raise ValueError(f"All inputs must have the same number of rows; got {lengths}.")
        self.target = torch.empty(lengths[0], 0)

    def __len__(self):
        return len(self.target)

    def __getitem__(self, index):
        return [x[index] for x in self.inputs], self.target[index]

    def batch_tensors(self):
        return self.inputs, None, self.target


def _autocast_forward(device):
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


class _Run:
    """State of one training run: policy, optimizer, kept versions, files, report."""

    def __init__(self, trainer, name, n_epochs, learning_rate, with_restarts, n_best_nets,
                 verbose, amp=False, compile=False):
        self.trainer = trainer
        device = trainer.device
        self.net = trainer.net
        if compile:
            self.net = torch.compile(trainer.net, **(
                {"backend": compile} if isinstance(compile, str) else {}))
        self.amp = amp
        self.scaler = _grad_scaler() if amp and device.type == "cuda" else None
        self.name = name
        self.n_epochs = n_epochs
        self.verbose = verbose
        self.with_restarts = with_restarts
        initial = 1e-3 if learning_rate == "auto" else learning_rate  # until the range test
        self.policy = TrainingPolicy(n_epochs, initial, with_restarts)
        self.optimizer = make_optimizer(trainer.net.parameters(), initial)
        self.best = BestVersions(n_best_nets)
        self.n_best_nets = n_best_nets
        self.stop_reason = "n_epochs"
        self.saved_epoch = None  # epoch of the version in {name}.pt
        self.started = time.perf_counter()
        trainer.history = []

    def set_initial_learning_rate(self, learning_rate):
        """Start from ``learning_rate`` (the one a range test chose)."""
        self.policy = TrainingPolicy(self.n_epochs, learning_rate, self.with_restarts)
        self.optimizer.set_learning_rate(learning_rate)

    def forward(self, inputs):
        """The network's output for a batch (in float32 under mixed precision)."""
        if not self.amp:
            return self.net(*inputs)
        return _autocast_forward(self.trainer.device)(self.net, inputs)

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
            self.optimizer = make_optimizer(trainer.net.parameters(), decision.learning_rate)
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
        tqdm.write(
            f"epoch {entry['epoch']:>4}/{self.n_epochs}  train {entry['train_loss']:.5g}  "
            f"valid {entry['valid_loss']:.5g}  lr {entry['learning_rate']:.3g}  "
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
                raise ValueError("The loss was not finite from the first epoch: no usable "
                                 "network. Lower the learning rate, or check the data for "
                                 "NaN or infinity.")
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

