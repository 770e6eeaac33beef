"""Keras callbacks: thin adapters over the package's pure functions."""

from keras_bettermodels.callbacks.cache_timing import CacheTimingCallback
from keras_bettermodels.callbacks.early_stopping import EarlyStopping, StoppingReason
from keras_bettermodels.callbacks.gradient_check import (
    GradientCheckCallback,
    GradientCheckError,
)
from keras_bettermodels.callbacks.mixed_precision import MixedPrecisionGuard
from keras_bettermodels.callbacks.pruning import (
    PruningSummaries,
    UpdatePruningMasks,
    UpdatePruningStep,
)

__all__ = [
    "CacheTimingCallback",
    "EarlyStopping",
    "GradientCheckCallback",
    "GradientCheckError",
    "MixedPrecisionGuard",
    "PruningSummaries",
    "StoppingReason",
    "UpdatePruningMasks",
    "UpdatePruningStep",
]
