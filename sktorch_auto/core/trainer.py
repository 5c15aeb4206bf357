"""``PytorchTrainer``: the seed's trainer (S1-S18), as a library.

The epoch loop lives here and stays short; what to do after each epoch comes from
:class:`~sktorch_auto.core.policy.TrainingPolicy`, batches from
:mod:`~sktorch_auto.core.batches`, files from :mod:`~sktorch_auto.core.checkpoint`.
"""

import functools
import math
import numbers
import os
import types
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
from .checks import check_int
from .criterion import (
    build_criterion,
    check_output_shape,
    criterion_from_state,
    criterion_state,
)
from .device import resolve_device
from .lr_range import find_learning_rate
from .predict import EVAL_BATCH_SIZE, RawInputs, apply_net, input_dtype
from .run import TrainingRun, autocast_forward
from .split import train_valid_split


class _hybridmethod:
    """A method that receives the class when called on it, else the instance."""

    def __init__(self, func):
        self.func = func
        functools.update_wrapper(self, func)

    def __get__(self, obj, cls):
        # A bound method (not a functools.partial): help() and inspect show its docstring
        # and signature.
        return types.MethodType(self.func, cls if obj is None else obj)


def _real(value):
    """Whether ``value`` is a real number (numpy scalars included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_train_args(batch_size, n_epochs, train_prop, learning_rate, n_workers,
                      repeat_train, repeat_valid, n_best_nets, weight_decay, tol):
    """Check the arguments of ``train``; returns ``train_prop``, ``learning_rate``,
    ``weight_decay`` and ``tol`` as Python floats (numpy scalars accepted)."""
    for name, value, minimum in [
        ("batch_size", batch_size, 1), ("n_epochs", n_epochs, 1), ("n_workers", n_workers, 0),
        ("repeat_train", repeat_train, 1), ("repeat_valid", repeat_valid, 1),
        ("n_best_nets", n_best_nets, 1),
    ]:
        check_int(name, value, minimum)
    if not _real(train_prop) or not 0 < train_prop <= 1:
        raise ValueError(f"train_prop must be a number in (0, 1]; got {train_prop!r}.")
    if not (isinstance(learning_rate, str) and learning_rate == "auto") and (
            not _real(learning_rate) or not 0 < learning_rate < math.inf):
        raise ValueError(f"learning_rate must be a positive number or 'auto'; got "
                         f"{learning_rate!r}.")
    for key, value in (("weight_decay", weight_decay), ("tol", tol)):
        if not (_real(value) and 0 <= value < math.inf):
            raise ValueError(f"{key} must be a non-negative number; got {value!r}.")
    return (float(train_prop), learning_rate if isinstance(learning_rate, str)
            else float(learning_rate), float(weight_decay), float(tol))


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
        That loss, of the best single version (``{name}.pt``); the averaged network
        in memory is another, whose validation loss can differ either way.
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
        net = net_builder(*self.net_builder_args)
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"net_builder must return a torch.nn.Module; it returned "
                            f"{type(net).__name__}.")
        self.net = net.to(self.device)
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
              compile=False, weight_decay=0.0, tol=0.0):
        """Train the network on ``dataset`` (S3-S15); return ``self``.

        Parameters
        ----------
        dataset : torch.utils.data.Dataset
            Items ``(input, target)`` or ``(input, weight, target)`` (S19-S24).
        name : str or None, default='pytorch_model'
            Files of this run: ``{name}.pt`` at every new best, ``{name}_avg.pt`` when
            averaging (a folder in ``name``, as in ``'runs/model'``, is created when
            missing). A file ``stop_{basename}`` in the working directory (``stop_model``
            for ``'runs/model'``) stops training after the current epoch, and is removed.
            ``None`` writes no files (the best versions stay in memory).
        batch_size : int, default=16
        criterion : 'auto', class or object, default='auto'
            'auto' is :class:`~sktorch_auto.MixedCriterion`; a class is built with the
            dataset; an object is used as is (S26); a torch loss module without
            ``postproc`` (``torch.nn.MSELoss()``) serves for training and validation
            alike, predictions being the raw outputs.
        n_epochs : int, default=50
            Maximum number of epochs; early stopping counts down 15% of it (S9).
        train_prop : float in (0, 1], default=0.9
            Share of the dataset used for training; the rest validates (S3). With 1.0
            (or a single sample) the training part validates too, so early stopping and
            the best versions then go by the training loss.
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
        weight_decay : float, default=0.0
            Decoupled weight decay of the optimizer (AdamW's): each step shrinks the
            weights by ``learning_rate * weight_decay`` of their value.
        tol : float, default=0.0
            Progress (S9) must also lower the validation loss by at least ``tol`` times
            the first epoch's validation loss: gains smaller than that, as when a
            separable classification's loss keeps halving towards zero, let the countdown
            run. 0 keeps the seed's rule.

        Returns
        -------
        self : PytorchTrainer
        """
        train_prop, learning_rate, weight_decay, tol = _check_train_args(
            batch_size, n_epochs, train_prop, learning_rate, n_workers, repeat_train,
            repeat_valid, n_best_nets, weight_decay, tol)
        batch_size, n_epochs, n_best_nets = int(batch_size), int(n_epochs), int(n_best_nets)
        if len(dataset) == 0:
            raise ValueError("Cannot train on an empty dataset.")
        folder = os.path.dirname(os.fspath(name)) if name is not None else ""
        if folder:  # before any training, not at the first file an epoch writes
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise OSError(exc.errno, f"Could not create the folder of name={name!r}: "
                                         f"{exc.strerror or exc}") from exc
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
        run = TrainingRun(self, name, n_epochs, learning_rate, with_restarts, n_best_nets,
                          verbose, amp, compile, weight_decay, tol)
        try:
            if learning_rate == "auto":  # inside: a Ctrl-C here ends training gracefully too
                run.set_initial_learning_rate(find_learning_rate(
                    self.net, self.criterion, train_batches,
                    autocast_forward(self.device) if amp else None))
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
                # disable=None: no bar where the output is no terminal (a log file)
                bar = (tqdm(batches, desc=f"epoch {epoch} train", leave=False, disable=None)
                       if run.verbose and training else batches)
                for inputs, weight, target in bar:
                    n = len(target)
                    if training:
                        loss = run.train_batch(inputs, weight, target)
                    else:
                        output = run.forward(inputs)
                        check_output_shape(output, target)
                        total_scaled.add_(self.criterion(output, target, weight), alpha=n)
                        loss = self.criterion(output, target, weight, unscaled=True)
                    total.add_(loss, alpha=n)  # stays on the device: no sync
                    count += n
        count = max(count, 1)
        if training:
            return total.item() / count
        return total.item() / count, total_scaled.item() / count

    # ---------------------------------------------------------------- persistence
    def _checkpoint_content(self, state_dict, **meta):
        state = criterion_state(self.criterion)
        if state is None and self.criterion is not None:  # a custom one: not in the file
            meta["unsaved_criterion"] = type(self.criterion).__qualname__
        return {
            "state_dict": state_dict,
            "criterion": state,
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
        unsaved = (content.get("meta") or {}).get("unsaved_criterion")
        if trainer.criterion is None and unsaved:
            warnings.warn(
                f"The file was trained with a custom criterion ({unsaved}), which files do "
                "not hold: predictions are the network's raw outputs until you set "
                "trainer.criterion (or load into a trainer that has it).", UserWarning,
                stacklevel=2)
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
