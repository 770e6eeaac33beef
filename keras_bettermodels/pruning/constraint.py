"""MaskConstraint: keeps a pruned weight exactly zero through every optimizer step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keras import ops

from keras_bettermodels._compat import pruning as _compat

if TYPE_CHECKING:
    from keras_bettermodels.pruning.wrapper import PruneLowMagnitude

__all__ = ["MaskConstraint"]


class MaskConstraint:
    """Multiplies a pruned weight by its mask after every optimizer update.

    Keras calls `variable.constraint(variable)` right after applying the
    gradients, inside the compiled training step, so the stored weight is
    zero where the mask is, whatever the optimizer does (Adam's momentum,
    weight decay). Any constraint the layer already had runs first.

    Args:
        wrapper: the `PruneLowMagnitude` layer that holds the masks.
        index: the weight's place in the wrapper's `pruned_weights`.
        previous: the variable's constraint before, or `None`.
    """

    def __init__(self, wrapper: PruneLowMagnitude, index: int, previous: Any) -> None:
        self.wrapper = wrapper
        self.index = index
        self.previous = previous

    def __call__(self, weights: Any) -> Any:
        if self.previous is not None:
            weights = self.previous(weights)
        mask = self._current_mask()
        if mask is None:
            return weights
        return ops.multiply(weights, ops.cast(mask, weights.dtype))

    def _current_mask(self) -> Any:
        """The mask after this step's update, or `None` where none can be read.

        On TensorFlow and PyTorch the optimizer runs where the mask variable can
        be read. JAX's trainer runs the optimizer in a stateless scope that
        holds only the trainable and optimizer variables; there the mask comes
        from this step's forward pass (the wrapper's `_pending_masks`), which
        computed it from stop-gradient values, so it belongs to the same
        compiled step.
        """
        mask = self.wrapper.pruning_masks[self.index]
        scope = _compat.current_stateless_scope()
        if scope is None:
            return mask.value
        value = scope.get_current_value(mask)
        if value is not None:
            return value
        pending = self.wrapper._pending_masks
        if pending is None:
            return None
        return pending[self.index]
