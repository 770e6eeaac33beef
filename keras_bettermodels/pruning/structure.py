"""Structured sparsity's arguments: blocks and M by N, checked.

`PruneLowMagnitude` and `prune_low_magnitude` check `block_size`,
`block_pooling_type` and `sparsity_m_by_n` here when they are given, and
`sparsity_report` its `m_by_n`; the wrapper checks each pruned weight against
them at build. The masks themselves are in `masks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_bettermodels import _validation

__all__ = [
    "BLOCK_POOLING_TYPES",
    "M_BY_N_LAYERS",
    "check_block_pooling_type",
    "check_block_size",
    "check_m_by_n",
    "check_weight_fits",
]

# TensorFlow Model Optimization's `block_pooling_type`s: how a block is scored.
BLOCK_POOLING_TYPES = ("AVG", "MAX")

# Layers whose pruned weight has an input axis at -2, for M-by-N sparsity.
M_BY_N_LAYERS: tuple[type, ...] = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)


def check_block_size(block_size: Any) -> tuple[int, int]:
    """`block_size` as a pair of positive ints, or a `ValueError`."""
    if (
        not isinstance(block_size, Sequence)
        or isinstance(block_size, str)
        or len(block_size) != 2
        or not all(_validation._is_int(d) and d >= 1 for d in block_size)
    ):
        raise ValueError(
            _validation.invalid_value(
                "block_size", "a pair of positive integers (rows, cols)", block_size
            )
        )
    return int(block_size[0]), int(block_size[1])


def check_block_pooling_type(block_pooling_type: Any) -> str:
    """`block_pooling_type` as `"AVG"` or `"MAX"`, or a `ValueError`."""
    if block_pooling_type not in BLOCK_POOLING_TYPES:
        raise ValueError(
            _validation.invalid_value(
                "block_pooling_type",
                " or ".join(f'"{t}"' for t in BLOCK_POOLING_TYPES),
                block_pooling_type,
            )
        )
    return str(block_pooling_type)


def check_m_by_n(sparsity_m_by_n: Any) -> tuple[int, int] | None:
    """`sparsity_m_by_n` as `(m, n)` with `0 < m < n`, `None`, or a `ValueError`."""
    if sparsity_m_by_n is None:
        return None
    if (
        not isinstance(sparsity_m_by_n, Sequence)
        or isinstance(sparsity_m_by_n, str)
        or len(sparsity_m_by_n) != 2
        or not all(_validation._is_int(d) for d in sparsity_m_by_n)
        or not 0 < sparsity_m_by_n[0] < sparsity_m_by_n[1]
    ):
        raise ValueError(
            _validation.invalid_value(
                "sparsity_m_by_n",
                "None or a pair of integers (m, n) with 0 < m < n, such as (2, 4)",
                sparsity_m_by_n,
            )
        )
    return int(sparsity_m_by_n[0]), int(sparsity_m_by_n[1])


def check_weight_fits(
    weight: keras.Variable,
    name: str,
    layer_name: str,
    block_size: tuple[int, int],
    sparsity_m_by_n: tuple[int, int] | None,
) -> None:
    """Refuses a weight that `block_size` or `sparsity_m_by_n` cannot cut.

    Args:
        weight: the pruned variable.
        name: its name, for the message.
        layer_name: the name of the layer that holds it, for the message.
        block_size: the checked `block_size`.
        sparsity_m_by_n: the checked `sparsity_m_by_n`.

    Raises:
        ValueError: if `block_size` is not `(1, 1)` for a weight that is not
            2-D, or `sparsity_m_by_n` is given for a weight without an input
            axis (-2) or whose input size is not a multiple of `n`.
    """
    shape = tuple(weight.shape)
    if block_size != (1, 1) and len(shape) != 2:
        raise ValueError(
            _validation.invalid_value(
                "block_size",
                f"(1, 1) for a weight that is not 2-D (`{name}` "
                f"of `{layer_name}` has shape {shape})",
                block_size,
            )
        )
    if sparsity_m_by_n is None:
        return
    if len(shape) < 2:
        raise ValueError(
            _validation.invalid_value(
                "sparsity_m_by_n",
                f"None for a weight without an input axis (`{name}` of "
                f"`{layer_name}` has shape {shape})",
                sparsity_m_by_n,
            )
        )
    if int(shape[-2]) % sparsity_m_by_n[1]:
        raise ValueError(
            _validation.invalid_value(
                "sparsity_m_by_n",
                f"(m, n) with n dividing the input size {shape[-2]} of "
                f"`{name}` of `{layer_name}`",
                sparsity_m_by_n,
            )
        )
