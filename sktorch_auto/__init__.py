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
from .estimators import TorchClassifier, TorchRegressor, build_mlp

__version__ = "0.1.0.dev0"

__all__ = [
    "ArrayDataset",
    "MixedCriterion",
    "PytorchTrainer",
    "SoftmaxCriterion",
    "TorchClassifier",
    "TorchRegressor",
    "__version__",
    "build_mlp",
    "register_builder",
    "set_seed",
]
