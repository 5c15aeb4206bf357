"""The trainer core: torch and numpy only, never scikit-learn."""

from .checkpoint import register_builder
from .criterion import MixedCriterion, SoftmaxCriterion
from .data import ArrayDataset
from .seed import set_seed
from .trainer import PytorchTrainer

__all__ = [
    "ArrayDataset",
    "MixedCriterion",
    "PytorchTrainer",
    "SoftmaxCriterion",
    "register_builder",
    "set_seed",
]
