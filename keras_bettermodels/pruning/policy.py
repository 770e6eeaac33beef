"""PruningPolicy: which layers of a model `prune_low_magnitude` wraps."""

from __future__ import annotations

import abc
from typing import Any, NoReturn

__all__ = ["PruneForLatencyOnXNNPack", "PruningPolicy"]


class PruningPolicy(abc.ABC):
    """Decides which layers of a model `prune_low_magnitude` prunes.

    TensorFlow Model Optimization's `PruningPolicy`. Given as
    `prune_low_magnitude(model, pruning_policy=policy)`, the policy first
    checks the whole model (`ensure_model_supports_pruning`, which raises to
    refuse it), then each layer that can be pruned is wrapped only if
    `allow_pruning(layer)` is true. Naming the layers,
    `prune_low_magnitude(model, layers=[...])`, is the shorter way when a
    list will do.

    Example:

    ```python
    import keras
    from keras_bettermodels.pruning import PruningPolicy, prune_low_magnitude


    class WideDenseOnly(PruningPolicy):
        def allow_pruning(self, layer):
            return isinstance(layer, keras.layers.Dense) and layer.units >= 64

        def ensure_model_supports_pruning(self, model):
            pass  # every model will do


    pruned = prune_low_magnitude(model, pruning_policy=WideDenseOnly())
    ```
    """

    @abc.abstractmethod
    def allow_pruning(self, layer: Any) -> bool:
        """Whether to wrap `layer`, one of the model's layers that can be pruned.

        Args:
            layer: a layer of the model given to `prune_low_magnitude`.

        Returns:
            `True` to prune it.
        """
        raise NotImplementedError

    @abc.abstractmethod
    def ensure_model_supports_pruning(self, model: Any) -> None:
        """Raises (a `ValueError`) if the policy cannot prune `model`.

        Args:
            model: the model given to `prune_low_magnitude`.
        """
        raise NotImplementedError


_XNNPACK_MISSING = (
    "PruneForLatencyOnXNNPack is not available in keras_bettermodels. In "
    "TensorFlow Model Optimization it checks a tf_keras model against the rules "
    "of TensorFlow Lite's sparse inference on XNNPack (a first stride-2 3x3 "
    "Conv2D, then only the layers XNNPack runs sparse) and prunes the 1x1 "
    "convolutions. Its check walks tf_keras graphs (TFOpLambda layers among "
    "them, which Keras 3 has not) and its rules belong to the TensorFlow Lite "
    "converter, which this package does not drive. Name the 1x1 Conv2D layers: "
    "prune_low_magnitude(model, layers=[...]), or write a PruningPolicy."
)


class PruneForLatencyOnXNNPack(PruningPolicy):
    """TensorFlow Model Optimization's XNNPack policy: not available here.

    Kept so that tfmot's names all resolve; creating one raises a
    `NotImplementedError` that says why and what to use instead.

    Raises:
        NotImplementedError: always.
    """

    def __init__(self) -> None:
        raise NotImplementedError(_XNNPACK_MISSING)

    def allow_pruning(self, layer: Any) -> NoReturn:
        raise NotImplementedError(_XNNPACK_MISSING)

    def ensure_model_supports_pruning(self, model: Any) -> NoReturn:
        raise NotImplementedError(_XNNPACK_MISSING)
