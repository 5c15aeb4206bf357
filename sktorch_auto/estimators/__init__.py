"""The scikit-learn layer: thin, validated, conformant estimators over the trainer core."""

from .base import BaseTorchEstimator
from .classifier import TorchClassifier
from .nets import build_mlp
from .persistence import load_estimator, load_metadata
from .regressor import TorchRegressor
from .table import UnseenGapsWarning

__all__ = [
    "BaseTorchEstimator",
    "TorchClassifier",
    "TorchRegressor",
    "UnseenGapsWarning",
    "build_mlp",
    "load_estimator",
    "load_metadata",
]
