"""PrunableLayer: a custom layer names the weights `PruneLowMagnitude` prunes."""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["PrunableLayer"]


class PrunableLayer(abc.ABC):
    """Base class of custom layers that declare which of their weights to prune.

    TensorFlow Model Optimization's `PrunableLayer`. Add it to a layer's bases
    and implement `get_prunable_weights()`; `PruneLowMagnitude` (and
    `prune_low_magnitude`, for a whole model) then prunes every weight it
    returns, each with its own mask, instead of the one weight it prunes in a
    built-in layer (a `Dense` layer's kernel, say). It takes precedence for
    subclasses of built-in layers too.

    The weights must be float variables of the layer, created by its `build`:
    `get_prunable_weights()` is called once the wrapper is built, and again
    at each step.

    Example:

    ```python
    import keras
    from keras_bettermodels.pruning import PrunableLayer, prune_low_magnitude


    class DenseWithPrunedBias(keras.layers.Dense, PrunableLayer):
        def get_prunable_weights(self):
            return [self.kernel, self.bias]  # the bias too


    model = keras.Sequential([
        keras.Input((20,)),
        prune_low_magnitude(DenseWithPrunedBias(20)),
    ])
    ```
    """

    @abc.abstractmethod
    def get_prunable_weights(self) -> list[Any]:
        """Returns the variables to prune.

        Returns:
            A list of the layer's float `keras.Variable`s, created by its
            `build`.
        """
        raise NotImplementedError
