"""Which weights of a layer `PruneLowMagnitude` prunes.

A built-in layer's one weight (`PRUNABLE_WEIGHTS`: the kernel or the
embedding matrix), or those a custom layer names by subclassing
`PrunableLayer`.
"""

from __future__ import annotations

import abc
from typing import Any

import keras

__all__ = [
    "PRUNABLE_WEIGHTS",
    "PrunableLayer",
    "is_prunable",
    "prunable_names",
    "prunable_weight_name",
]

# Layer class -> attribute holding the weight that is pruned (biases are not,
# unless a `PrunableLayer` says so).
PRUNABLE_WEIGHTS: dict[type, str] = {
    keras.layers.Dense: "kernel",
    keras.layers.Conv1D: "kernel",
    keras.layers.Conv2D: "kernel",
    keras.layers.Conv3D: "kernel",
    keras.layers.DepthwiseConv2D: "kernel",
    keras.layers.Embedding: "embeddings",
    keras.layers.EinsumDense: "kernel",
}


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


def prunable_weight_name(layer: keras.layers.Layer) -> str | None:
    """The attribute name of the weight `PruneLowMagnitude` prunes in `layer`.

    Args:
        layer: a Keras layer.

    Returns:
        `"kernel"` for Dense, EinsumDense, Conv1D/2D/3D and DepthwiseConv2D
        (and their subclasses), `"embeddings"` for Embedding, `None` for any other layer
        and for a `PrunableLayer`, which names its weights itself.
    """
    if isinstance(layer, PrunableLayer):
        return None
    for cls, name in PRUNABLE_WEIGHTS.items():
        if isinstance(layer, cls):
            return name
    return None


def is_prunable(layer: keras.layers.Layer) -> bool:
    """Whether `PruneLowMagnitude` can wrap `layer`.

    Args:
        layer: a Keras layer.

    Returns:
        True for the layer types of `PRUNABLE_WEIGHTS` (and their subclasses)
        and for a `PrunableLayer`.
    """
    return isinstance(layer, PrunableLayer) or prunable_weight_name(layer) is not None


def prunable_names() -> str:
    """The layer types that can be pruned, for error messages."""
    return ", ".join([*(cls.__name__ for cls in PRUNABLE_WEIGHTS), "PrunableLayer"])
