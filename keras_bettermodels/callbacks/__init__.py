"""Keras callbacks: thin adapters over the package's pure functions."""

from keras_bettermodels.callbacks.cache_timing import CacheTimingCallback
from keras_bettermodels.callbacks.early_stopping import EarlyStopping, StoppingReason
from keras_bettermodels.callbacks.pruning import UpdatePruningMasks

__all__ = [
    "CacheTimingCallback",
    "EarlyStopping",
    "StoppingReason",
    "UpdatePruningMasks",
]
