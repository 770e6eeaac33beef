"""Structured sparsity's arguments: blocks, M by N, units and filters, scope; checked.

`PruneLowMagnitude` and `prune_low_magnitude` check `block_size`,
`block_pooling_type`, `sparsity_m_by_n`, `structure` and `scope` here when they
are given, and `sparsity_report` its `m_by_n`; the wrapper checks each pruned
weight against them at build. `unit_axes` says which axes of a kernel index
its output units (or filters). The masks themselves are in `masks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_bettermodels import _validation
from keras_bettermodels.pruning.prunable_layer import PrunableLayer

__all__ = [
    "BLOCK_POOLING_TYPES",
    "M_BY_N_LAYERS",
    "SCOPES",
    "STRUCTURE_LAYERS",
    "check_block_pooling_type",
    "check_block_size",
    "check_combination",
    "check_layer_structure",
    "check_m_by_n",
    "check_scope",
    "check_structure",
    "check_weight_fits",
    "takes_structure",
    "unit_axes",
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

# What `structure=` prunes whole, and the layers that have it.
STRUCTURE_LAYERS: dict[str, tuple[type, ...]] = {
    "units": (keras.layers.Dense, keras.layers.EinsumDense),
    "filters": (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D),
}

# `scope=`: one threshold per layer (tfmot's), or one across the model's layers.
SCOPES = ("layer", "global")


def check_structure(structure: Any) -> str | None:
    """`structure` as `None`, `"units"` or `"filters"`, or a `ValueError`."""
    if structure is None or structure in STRUCTURE_LAYERS:
        return structure
    raise ValueError(
        _validation.invalid_value(
            "structure",
            'None, "units" (Dense, EinsumDense) or "filters" (Conv1D/2D/3D)',
            structure,
        )
    )


def check_scope(scope: Any) -> str:
    """`scope` as `"layer"` or `"global"`, or a `ValueError`."""
    if scope in SCOPES:
        return str(scope)
    raise ValueError(_validation.invalid_value("scope", '"layer" or "global"', scope))


def takes_structure(layer: Any, structure: str | None) -> bool:
    """Whether `layer` has the units (Dense) or filters (Conv) `structure` prunes."""
    if structure is None:
        return True
    # A `PrunableLayer` names its own weights: their units are unknown.
    return isinstance(layer, STRUCTURE_LAYERS[structure]) and not isinstance(
        layer, PrunableLayer
    )


def check_combination(
    structure: str | None,
    scope: str,
    block_size: tuple[int, int],
    sparsity_m_by_n: tuple[int, int] | None,
) -> None:
    """Refuses `structure` with blocks or M by N, and `scope="global"` with any.

    Raises:
        ValueError: for `structure` with `block_size` or `sparsity_m_by_n`,
            or `scope="global"` with any of the three.
    """
    patterns = (
        ("block_size", block_size, (1, 1)),
        ("sparsity_m_by_n", sparsity_m_by_n, None),
    )
    if structure is not None:
        _refuse_set(
            patterns,
            "when `structure` is given",
            "Choose whole units or filters, blocks, or M-by-N sparsity: one pattern.",
        )
    if scope == "global":
        _refuse_set(
            (("structure", structure, None), *patterns),
            'when scope="global"',
            "A global threshold ranks single weights across layers; "
            'use scope="layer" for a structured pattern.',
        )


def _refuse_set(
    arguments: tuple[tuple[str, Any, Any], ...], condition: str, fix: str
) -> None:
    """ValueError for the first `(name, value, default)` not at its default."""
    for name, value, default in arguments:
        if value != default:
            raise ValueError(
                _validation.invalid_value(name, f"{default} {condition}", value, fix)
            )


def check_layer_structure(
    layer: Any,
    structure: str | None,
    scope: str,
    block_size: tuple[int, int],
    sparsity_m_by_n: tuple[int, int] | None,
) -> None:
    """Refuses a `structure` or `scope` that `layer` or the other arguments exclude.

    Raises:
        ValueError: for a `structure` the layer has not (units of a Conv2D,
            say), and as `check_combination`.
    """
    check_combination(structure, scope, block_size, sparsity_m_by_n)
    if structure is None or takes_structure(layer, structure):
        return
    names = ", ".join(c.__name__ for c in STRUCTURE_LAYERS[structure])
    other = "filters" if structure == "units" else "units"
    fix = (
        f'Use structure="{other}" for a {type(layer).__name__}.'
        if takes_structure(layer, other)
        else "Prune it unstructured (structure=None), or leave it dense."
    )
    raise ValueError(
        _validation.invalid_value(
            "structure",
            f"None for layer `{layer.name}` ({type(layer).__name__}): "
            f'structure="{structure}" applies to {names}',
            structure,
            fix,
        )
    )


def unit_axes(layer: Any, kernel_shape: Sequence[int]) -> tuple[int, ...]:
    """The axes of `layer`'s kernel that index its output units or filters.

    The last axis for Dense and Conv1D/2D/3D kernels; for an EinsumDense, the
    kernel's axes that appear in the output and not in the input (`"c"` of
    `"ab,bc->ac"`, `"de"` of `"abc,cde->abde"`).
    """
    rank = len(kernel_shape)
    if isinstance(layer, keras.layers.EinsumDense):
        inputs, output = layer.equation.split("->")
        data, kernel = inputs.split(",")
        axes = tuple(i for i, c in enumerate(kernel) if c in output and c not in data)
        if axes:
            return axes
    return (rank - 1,)


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
