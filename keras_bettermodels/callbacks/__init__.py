"""Keras callbacks: thin adapters over the package's pure functions."""

# Deprecated module, imported so that `keras_bettermodels.callbacks.pruning.<name>`
# still resolves for one release (with a DeprecationWarning).
from keras_bettermodels.callbacks import pruning as _deprecated_pruning  # noqa: F401
from keras_bettermodels.callbacks.cache_timing import CacheTimingCallback
from keras_bettermodels.callbacks.early_stopping import EarlyStopping, StoppingReason
from keras_bettermodels.callbacks.gradient_check import (
    GradientCheckCallback,
    GradientCheckError,
)
from keras_bettermodels.callbacks.mixed_precision import MixedPrecisionGuard
from keras_bettermodels.callbacks.training_health import TrainingHealth
from keras_bettermodels.pruning.callbacks import (
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
    "TrainingHealth",
    "UpdatePruningMasks",
    "UpdatePruningStep",
]
