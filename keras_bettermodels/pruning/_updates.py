"""The masks a `PruneLowMagnitude` wrapper computes at an update step.

One function per pattern, all on the device, inside the compiled training
step (eagerly on PyTorch): single weights in the layer (`magnitude_mask`),
blocks, M by N, whole units or filters (`unit_mask`, the bias with them), and
single weights under one threshold across the wrappers of a model
(`scope="global"`: each wrapper computes the shared threshold from every
wrapper's weights, so no wrapper depends on another's call order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from keras_bettermodels._compat import pruning as _compat
from keras_bettermodels.pruning import structure as patterns
from keras_bettermodels.pruning.masks import (
    block_mask,
    global_threshold,
    m_by_n_mask,
    magnitude_mask,
    unit_mask,
)

if TYPE_CHECKING:
    from keras_bettermodels.pruning.wrapper import PruneLowMagnitude

__all__ = ["new_masks", "read_unscaled"]


def read_unscaled(weight: keras.Variable) -> Any:
    """A weight in its own dtype, not autocast (for magnitudes)."""
    with _compat.autocast_disabled():
        return weight.value


def new_masks(
    wrapper: PruneLowMagnitude,
    weights: list[keras.Variable],
    old_masks: list[Any],
    sparsity: Any,
) -> list[Any]:
    """The new masks of `wrapper`'s pruned `weights` at `sparsity`.

    Args:
        wrapper: the `PruneLowMagnitude` layer (its pattern and group).
        weights: its pruned variables.
        old_masks: their current masks (values).
        sparsity: the schedule's sparsity (a scalar tensor).

    Returns:
        One mask per weight, in the dtype of its old mask.
    """
    if wrapper.structure is not None:
        kernel = ops.multiply(
            ops.stop_gradient(read_unscaled(weights[0])), old_masks[0]
        )
        axes = patterns.unit_axes(wrapper.layer, kernel.shape)
        kept = unit_mask(kernel, sparsity, axes)
        masks = [ops.broadcast_to(kept, kernel.shape)]
        if len(weights) > 1:  # the bias, one value per unit
            masks.append(ops.reshape(kept, weights[1].shape))
        return [ops.cast(m, o.dtype) for m, o in zip(masks, old_masks, strict=True)]
    if wrapper.scope == "global":
        group = wrapper._group.wrappers or [wrapper]
        # Stored pruned weights are exactly zero (the mask constraint), so the
        # stored values rank the same as the masked ones.
        threshold = global_threshold(
            [ops.stop_gradient(read_unscaled(w.pruned_weight)) for w in group],
            sparsity,
        )
        own = ops.multiply(ops.stop_gradient(read_unscaled(weights[0])), old_masks[0])
        kept = ops.greater_equal(ops.abs(ops.cast(own, "float32")), threshold)
        return [ops.cast(kept, old_masks[0].dtype)]
    return [
        _single_mask(wrapper, weight, old, sparsity)
        for weight, old in zip(weights, old_masks, strict=True)
    ]


def _single_mask(
    wrapper: PruneLowMagnitude, weight: keras.Variable, old_mask: Any, sparsity: Any
) -> Any:
    weights = ops.multiply(ops.stop_gradient(read_unscaled(weight)), old_mask)
    if wrapper.sparsity_m_by_n is not None:
        m, n = wrapper.sparsity_m_by_n
        mask = m_by_n_mask(weights, m, n)
    elif wrapper.block_size != (1, 1):
        mask = block_mask(
            weights, sparsity, wrapper.block_size, wrapper.block_pooling_type
        )
    else:
        mask = magnitude_mask(weights, sparsity)
    return ops.cast(mask, old_mask.dtype)
