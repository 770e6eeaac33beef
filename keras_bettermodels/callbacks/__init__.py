"""Keras callbacks: thin adapters over the package's pure functions."""

from keras_bettermodels.callbacks.early_stopping import EarlyStopping, StoppingReason

__all__ = ["EarlyStopping", "StoppingReason"]
