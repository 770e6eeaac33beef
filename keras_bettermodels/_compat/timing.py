"""tf.data internals the pipeline inspection reads (checked: TensorFlow 2.21).

`keras_bettermodels.timing.pipeline` walks a `tf.data` pipeline without
serializing it (which would copy every in-memory tensor): each dataset's
inputs, its mapped function's graph and the arguments of `batch`, `cache` and
`repeat` are private attributes of TensorFlow's dataset classes. They are read
here only; `tests/_compat/test_timing.py` fails loudly if one moves.

Nothing here imports TensorFlow: a dataset only exists once it is imported.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = [
    "batch_size_argument",
    "cache_filename_argument",
    "dataset_inputs",
    "dataset_type",
    "map_function_graph_def",
    "repeat_count_argument",
]

# The module that defines `tf.data.Dataset` (`DatasetV2`); TensorFlow 2.21.
_DATASET_MODULE = "tensorflow.python.data.ops.dataset_ops"


def dataset_type() -> type | None:
    """`tf.data.Dataset`'s class if TensorFlow is imported, else `None`.

    Looked up in `sys.modules` so that asking never imports TensorFlow.
    """
    module = sys.modules.get(_DATASET_MODULE)
    return None if module is None else module.DatasetV2


def dataset_inputs(dataset: Any) -> list[Any]:
    """The datasets `dataset` reads from (`DatasetV2._inputs()`).

    Raises:
        NotImplementedError: for a dataset class that does not list its inputs
            (the base class's `_inputs`).
    """
    return list(dataset._inputs())


def map_function_graph_def(dataset: Any) -> Any | None:
    """The `GraphDef` of a `map`'s traced function, or `None` for no `map`.

    `_MapDataset` / `_ParallelMapDataset` / `_MapAndBatchDataset` keep a
    `StructuredFunctionWrapper` in `_map_func`, whose `function` is a
    `ConcreteFunction`.

    Raises:
        AttributeError: if the wrapper no longer holds a traced function.
    """
    wrapper = getattr(dataset, "_map_func", None)
    if wrapper is None:
        return None
    return wrapper.function.graph.as_graph_def()


def batch_size_argument(dataset: Any) -> Any | None:
    """The `batch_size` tensor of a `batch` / `padded_batch`, or `None`."""
    return getattr(dataset, "_batch_size", None)


def cache_filename_argument(dataset: Any) -> Any:
    """The `filename` tensor of a `cache` (empty for a memory cache)."""
    return getattr(dataset, "_filename", b"")


def repeat_count_argument(dataset: Any) -> Any:
    """The `count` tensor of a `repeat` (-1 repeats forever)."""
    return dataset._count
