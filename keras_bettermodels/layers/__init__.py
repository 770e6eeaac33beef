"""Keras layers, serializable (`PruneLowMagnitude` lives in `pruning/`)."""

from keras_bettermodels.pruning.wrapper import PruneLowMagnitude

__all__ = ["PruneLowMagnitude"]
