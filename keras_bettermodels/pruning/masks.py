"""Pruning masks: which weights to keep, computed with `keras.ops`.

Three patterns, as in TensorFlow Model Optimization:

- unstructured (`magnitude_mask`): the weights of largest magnitude, anywhere;
- blocks (`block_mask`): a 2-D weight cut into `(rows, cols)` blocks, each kept
  or pruned whole, by its mean magnitude;
- units or filters (`unit_mask`): whole output units of a kernel (its columns,
  or a convolution's filters), by their L2 norm;
- M by N (`m_by_n_mask`): in every group of N consecutive weights along the
  input axis, the M largest are kept (2:4 runs on the sparse Tensor Cores of
  Ampere and newer NVIDIA GPUs).

`global_threshold` is the magnitude under which weights are pruned across
several layers at once (`scope="global"`). Every function runs inside a
compiled training step on every backend.
`m_by_n_violations` checks a weight after training, in NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

__all__ = [
    "block_mask",
    "global_threshold",
    "m_by_n_mask",
    "m_by_n_violations",
    "magnitude_mask",
    "unit_mask",
]


def magnitude_mask(weights: Any, sparsity: Any) -> Any:
    """The mask that zeroes the `sparsity` fraction of `weights` smallest in magnitude.

    As in TensorFlow Model Optimization: the `max(round(n * (1 - sparsity)), 1)`
    weights of largest magnitude are kept (weights tied with the smallest kept
    one are kept too). Works on tensors inside a compiled step.

    Args:
        weights: a float tensor.
        sparsity: a float scalar (tensor) in [0, 1).

    Returns:
        A tensor of `weights`' shape and dtype, 1 where a weight is kept and 0
        where it is pruned.
    """
    magnitudes = ops.abs(weights)
    threshold = _threshold(ops.reshape(magnitudes, (-1,)), sparsity)
    return ops.cast(ops.greater_equal(magnitudes, threshold), weights.dtype)


def _threshold(magnitudes: Any, sparsity: Any) -> Any:
    """The smallest kept value of the 1-D `magnitudes` at `sparsity` (a scalar)."""
    size = int(magnitudes.shape[0])
    keep = ops.round(ops.multiply(float(size), ops.subtract(1.0, sparsity)))
    keep = ops.maximum(ops.cast(keep, "int32"), 1)
    ascending = ops.sort(magnitudes)
    threshold = ops.take(ascending, ops.reshape(ops.subtract(size, keep), (1,)))
    return ops.reshape(threshold, ())


def global_threshold(weights: list[Any], sparsity: Any) -> Any:
    """The magnitude under which the `sparsity` fraction of all `weights` falls.

    One threshold for several tensors together (`scope="global"`): the
    `max(round(n * (1 - sparsity)), 1)` weights of largest magnitude among the
    `n` of all of them are at or above it, so each tensor's own sparsity
    differs while the overall one is `sparsity`. Computed on the device, in
    float32.

    Args:
        weights: float tensors, of any shapes.
        sparsity: a float scalar (tensor) in [0, 1).

    Returns:
        A float32 scalar tensor: keep `abs(w) >= threshold`.
    """
    flat = [ops.reshape(ops.abs(ops.cast(w, "float32")), (-1,)) for w in weights]
    return _threshold(ops.concatenate(flat, axis=0), sparsity)


def unit_mask(weights: Any, sparsity: Any, axes: tuple[int, ...]) -> Any:
    """The mask that prunes whole output units (or filters) of a kernel by L2 norm.

    The units are indexed by the kernel's `axes` (the last one for Dense and
    convolution kernels): each is scored by the L2 norm of its weights over
    the other axes, and the `sparsity` fraction with the smallest norms is
    pruned, as `magnitude_mask` does for single weights.

    Args:
        weights: a float kernel.
        sparsity: a float scalar (tensor) in [0, 1).
        axes: the axes that index the units.

    Returns:
        The units' mask: `weights`' shape with the other axes of size 1
        (broadcast it to the kernel), 1 where a unit is kept.
    """
    others = tuple(i for i in range(len(weights.shape)) if i not in axes)
    squares = ops.square(ops.cast(weights, "float32"))
    norms = ops.sqrt(ops.sum(squares, axis=others, keepdims=True))
    return ops.cast(magnitude_mask(norms, sparsity), weights.dtype)


def block_mask(
    weights: Any, sparsity: Any, block_size: tuple[int, int], pooling: str = "AVG"
) -> Any:
    """The mask that prunes whole `(rows, cols)` blocks of a 2-D weight.

    Each block is scored by the mean (`pooling="AVG"`) or the largest
    (`"MAX"`) magnitude of its weights, TensorFlow Model Optimization's two
    `block_pooling_type`s; the `sparsity` fraction of blocks with the smallest
    scores is pruned, as `magnitude_mask` does for single weights. Blocks start
    at the top left; where the weight's shape is not a multiple of the block
    size, the blocks at its right and bottom edges are smaller, and scored by
    the weights they have (zero padding would make them look small).

    Args:
        weights: a 2-D float tensor.
        sparsity: a float scalar (tensor) in [0, 1).
        block_size: `(rows, cols)`.
        pooling: `"AVG"` or `"MAX"`. Defaults to `"AVG"`.

    Returns:
        A tensor of `weights`' shape and dtype, 1 where a weight is kept.
    """
    rows, cols = (int(d) for d in weights.shape)
    block_rows, block_cols = block_size
    padded_rows = -(-rows // block_rows) * block_rows
    padded_cols = -(-cols // block_cols) * block_cols
    magnitudes = ops.abs(weights)
    padding = ((0, padded_rows - rows), (0, padded_cols - cols))
    if (padded_rows, padded_cols) != (rows, cols):
        magnitudes = ops.pad(magnitudes, padding)
    grid = (padded_rows // block_rows, padded_cols // block_cols)
    blocks = ops.reshape(magnitudes, (grid[0], block_rows, grid[1], block_cols))
    if pooling == "MAX":
        scores = ops.max(blocks, axis=(1, 3))
    else:
        # The mean over the block's own weights: the padding does not count.
        counts = np.pad(np.ones((rows, cols), "float32"), padding)
        counts = counts.reshape(grid[0], block_rows, grid[1], block_cols)
        scores = ops.divide(
            ops.sum(blocks, axis=(1, 3)),
            ops.cast(counts.sum(axis=(1, 3)), blocks.dtype),
        )
    kept = magnitude_mask(scores, sparsity)
    kept = ops.repeat(ops.repeat(kept, block_rows, axis=0), block_cols, axis=1)
    return ops.cast(kept[:rows, :cols], weights.dtype)


def m_by_n_mask(weights: Any, m: int, n: int, axis: int = -2) -> Any:
    """The mask that keeps the `m` largest of every `n` consecutive weights on `axis`.

    Along `axis` (the input axis of a kernel: `-2` for Dense and convolution
    kernels), the weights are cut into groups of `n` consecutive ones; in each
    group exactly `m` are kept, those of largest magnitude (the first ones on
    a tie).

    Args:
        weights: a float tensor whose size along `axis` is a multiple of `n`.
        m: how many weights each group keeps.
        n: the size of a group.
        axis: the axis the groups run along. Defaults to `-2`.

    Returns:
        A tensor of `weights`' shape and dtype, 1 where a weight is kept.
    """
    magnitudes = ops.moveaxis(ops.abs(weights), axis, -1)
    moved_shape = tuple(int(d) for d in magnitudes.shape)
    groups = ops.reshape(magnitudes, (-1, n))
    _, indices = ops.top_k(groups, m, sorted=False)
    kept = ops.sum(ops.one_hot(indices, n, dtype=weights.dtype), axis=-2)
    kept = ops.reshape(kept, moved_shape)
    return ops.moveaxis(kept, -1, axis)


def m_by_n_violations(weights: Any, m: int, n: int, axis: int = -2) -> int:
    """How many groups of `n` consecutive weights along `axis` have over `m` non-zeros.

    Args:
        weights: a weight (tensor or array) whose size along `axis` is a
            multiple of `n`.
        m: the most non-zero weights a group may have.
        n: the size of a group.
        axis: the axis the groups run along. Defaults to `-2`.

    Returns:
        The number of groups that break the M-by-N pattern; 0 when it holds.
    """
    values = np.moveaxis(np.asarray(ops.convert_to_numpy(weights)), axis, -1)
    groups = values.reshape(-1, n)
    return int(np.count_nonzero(np.count_nonzero(groups, axis=-1) > m))
