"""sktorch_auto: press the button, get a well-trained PyTorch network.

``PytorchTrainer`` trains a network on any torch ``Dataset`` with automatic
validation split, early stopping, restarts, best-version averaging and target
scaling; ``TorchRegressor`` and ``TorchClassifier`` bring the same automation to
scikit-learn.
"""

from .core import (
    ArrayDataset,
    MixedCriterion,
    PytorchTrainer,
    SoftmaxCriterion,
    register_builder,
    set_seed,
)

_ESTIMATORS = (
    "TorchClassifier", "TorchRegressor", "UnseenGapsWarning", "build_mlp", "load_estimator",
    "load_metadata",
)


def __getattr__(name):
    # The estimators need scikit-learn; the trainer core must import without it.
    if name in _ESTIMATORS:
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'sktorch_auto' has no attribute {name!r}")

__version__ = "0.1.0.dev0"

__all__ = [
    "ArrayDataset",
    "MixedCriterion",
    "PytorchTrainer",
    "SoftmaxCriterion",
    "TorchClassifier",
    "TorchRegressor",
    "UnseenGapsWarning",
    "__version__",
    "build_mlp",
    "load_estimator",
    "load_metadata",
    "register_builder",
    "set_seed",
]
