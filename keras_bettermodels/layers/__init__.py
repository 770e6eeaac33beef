"""Keras layers, one per file, serializable."""

from keras_bettermodels.layers.prune_low_magnitude import PruneLowMagnitude

__all__ = ["PruneLowMagnitude"]
