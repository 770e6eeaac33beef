"""Input timing's touches on internals: tf.data's, and the JAX trainer's state.

tf.data internals the pipeline inspection reads (checked: TensorFlow 2.21):
`keras_bettermodels.timing.pipeline` walks a `tf.data` pipeline without
serializing it (which would copy every in-memory tensor): each dataset's
inputs, its mapped function's graph and the arguments of `batch`, `cache` and
`repeat` are private attributes of TensorFlow's dataset classes. They are read
here only; `tests/_compat/test_timing.py` fails loudly if one moves.

`wait_for_device(model)` (checked: Keras 3.15.1 with JAX 0.10.2, TensorFlow
2.21, PyTorch 2.13) blocks until the training steps `fit` dispatched have run;
on JAX it reads the trainer's state (`model._jax_state`), a private attribute.
`tests/_compat/test_device_wait.py` fails loudly if it moves.

Importing this module imports neither Keras nor a backend: a dataset only
exists once TensorFlow is imported, and `wait_for_device` imports the backend
Keras already runs on.
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
    "wait_for_device",
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


def wait_for_device(model: Any) -> None:
    """Blocks until the device has run the steps dispatched to it so far.

    JAX dispatches every step asynchronously, and TensorFlow and PyTorch do
    on a GPU: the host reaches `on_test_begin` while the device may still be
    running the epoch's last training steps. Per backend:

    - JAX: blocks on the trainer's state, the outputs of the last step run
      (Keras 3.15.1 sets `model._jax_state` after every step of `fit` and
      `evaluate` and clears it when `evaluate` ends; while it is `None`, the
      model's variables hold the state). Arrays a later step donated are
      skipped.
    - TensorFlow: `tf.test.experimental.sync_devices()`, TensorFlow's own
      wait for every device's pending ops.
    - PyTorch: `torch.cuda.synchronize()` when CUDA is in use,
      `torch.mps.synchronize()` on Apple's GPU; nothing on the CPU, where
      PyTorch runs every op before it returns.

    Args:
        model: the model `fit` trains, or `None` (JAX then has nothing to
            wait on).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        _block_on_jax_state(model)
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.test.experimental.sync_devices()
    elif backend == "torch":
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        elif torch.backends.mps.is_available():
            torch.mps.synchronize()


def _block_on_jax_state(model: Any) -> None:
    import jax
    import keras

    if model is None:
        return
    state = getattr(model, "_jax_state", None)
    if not state:
        # Outside a step loop the variables hold the state; a purged
        # variable (`_value = None`, mid-epoch) has nothing to wait on.
        state = [getattr(variable, "_value", None) for variable in model.variables]
    # `keras.tree`, not `jax.tree_util`: Keras wraps the state dict and its
    # lists in its tracking containers, which JAX takes for leaves.
    arrays = [
        leaf
        for leaf in keras.tree.flatten(state)
        if isinstance(leaf, jax.Array) and not leaf.is_deleted()
    ]
    jax.block_until_ready(arrays)
