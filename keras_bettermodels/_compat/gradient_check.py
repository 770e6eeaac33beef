"""Keras internals the gradient check needs, one function each.

Checked against Keras 3.15.1 (JAX 0.7+, PyTorch 2.x, TensorFlow 2.21). Each
function has a test in `tests/_compat/test_gradient_check.py` that fails when
the internal moves. Public Keras APIs are used where they exist
(`keras.saving.serialize_keras_object`, `keras.dtype_policies.get`,
`keras.distribution.distribution`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras

__all__ = [
    "call_has_training_arg",
    "compile_config",
    "compile_loss_built",
    "float64_promotion",
    "global_seed_generator",
    "losses_override",
    "raw_dtype_policy",
    "seed_generators",
    "set_attention_dropout",
    "set_global_seed_generator",
    "set_loss_dtype",
    "set_raw_dtype_policy",
    "set_unseeded_generators_to_zero",
    "skip_tracing_warning",
    "symbolic_build",
]

_GLOBAL_SEED_GENERATOR = "global_seed_generator"


def _global_state() -> Any:
    from keras.src.backend.common import global_state

    return global_state


def raw_dtype_policy() -> Any:
    """The global dtype policy as set, or `None` (3.15.1: `global_state`).

    `keras.config.dtype_policy()` would create and cache a float32 policy
    where none was set; this reads without side effects.
    """
    return _global_state().get_global_attribute("dtype_policy", None)


def set_raw_dtype_policy(policy: Any) -> None:
    """Sets the global dtype policy back to `policy`, `None` included."""
    _global_state().set_global_attribute("dtype_policy", policy)


def global_seed_generator() -> Any:
    """Keras' global `SeedGenerator` (unseeded `keras.random` calls), or `None`.

    3.15.1: `keras.src.random.seed_generator.GLOBAL_SEED_GENERATOR` in
    `global_state`; `None` until first use (and after `set_random_seed`).
    """
    return _global_state().get_global_attribute(_GLOBAL_SEED_GENERATOR, None)


def set_global_seed_generator(generator: Any) -> None:
    """Puts back Keras' global `SeedGenerator` (`None`: not yet made)."""
    _global_state().set_global_attribute(_GLOBAL_SEED_GENERATOR, generator)


@contextlib.contextmanager
def float64_promotion() -> Iterator[None]:
    """Keeps float64 float64 in Keras' type promotion on JAX and PyTorch.

    Keras 3's `result_type` turns float64 into float32 on every backend but
    TensorFlow (to follow JAX's default of 32-bit types), so on JAX and
    PyTorch `ops.matmul`, `ops.maximum`, `ops.tanh` and others silently
    compute a float64 model in float32 (keras-team/keras#23223, #23704). The
    table it reads (3.15.1: `keras.src.backend.common.dtypes.
    BIT64_TO_BIT32_DTYPE`) is patched for the block and restored afterwards.
    """
    from keras.src.backend.common import dtypes

    table = getattr(dtypes, "BIT64_TO_BIT32_DTYPE", None)
    if not isinstance(table, dict) or table.get("float64", "float64") == "float64":
        yield
        return
    previous = table["float64"]
    table["float64"] = "float64"
    try:
        yield
    finally:
        table["float64"] = previous


def seed_generators(layer: Any) -> list[Any]:
    """The layer's own `SeedGenerator`s (3.15.1: `Layer._seed_generators`)."""
    return list(getattr(layer, "_seed_generators", []))


def set_unseeded_generators_to_zero(generators: list[Any]) -> None:
    """Gives seed 0 to generators made without one (3.15.1: `_initial_seed`).

    On PyTorch an unseeded generator sends dropout to torch's global
    generator, which the state the check passes does not pin.
    """
    for generator in generators:
        if generator._initial_seed is None:
            generator._initial_seed = 0


def call_has_training_arg(model: Any) -> bool:
    """Whether `model.call` takes `training` (3.15.1: `_call_has_training_arg`)."""
    return bool(model._call_has_training_arg)


def set_attention_dropout(layer: Any, rate: float) -> bool:
    """Sets a built attention layer's dropout rate where it is 0.

    3.15.1: `MultiHeadAttention._dropout`, `GroupQueryAttention.dropout`.
    Returns whether the layer was changed.
    """
    if isinstance(layer, keras.layers.MultiHeadAttention) and layer._dropout == 0:
        layer._dropout = rate
        return True
    if isinstance(layer, keras.layers.GroupQueryAttention) and layer.dropout == 0:
        layer.dropout = rate
        return True
    return False


def set_loss_dtype(loss: Any, dtype: str) -> None:
    """Makes a `keras.losses.Loss` compute in `dtype` (3.15.1: `_dtype_policy`,
    `_dtype`, which `Loss.__init__` fixes)."""
    loss._dtype_policy = keras.dtype_policies.get(dtype)
    loss._dtype = dtype


def compile_config(model: Any) -> Any:
    """The model's compile-config object, compared by identity (3.15.1:
    `Model._compile_config`; `get_compile_config()` returns a new dict)."""
    return getattr(model, "_compile_config", None)


def compile_loss_built(model: Any) -> bool | None:
    """Whether the compiled loss is built; `None` without one (3.15.1:
    `Trainer._compile_loss`)."""
    compile_loss = getattr(model, "_compile_loss", None)
    return None if compile_loss is None else bool(compile_loss.built)


def symbolic_build(model: Any, data_batch: tuple[Any, Any, Any]) -> None:
    """Builds the compiled loss and metrics as `fit` does (3.15.1:
    `Trainer._symbolic_build`)."""
    model._symbolic_build(data_batch=data_batch)


@contextlib.contextmanager
def losses_override(model: Any, losses: list[Any]) -> Iterator[None]:
    """`compute_loss` counts `losses` instead of `model.losses` in the block.

    3.15.1: `Layer._losses_override`, which the JAX trainer sets around
    `stateless_compute_loss`.
    """
    model._losses_override = losses
    try:
        yield
    finally:
        model._losses_override = []


def skip_tracing_warning(function: Any) -> None:
    """Silences TensorFlow's retracing warning for one `tf.function`.

    Each model gets its own functions, traced once each: not the retracing
    TensorFlow warns about (it counts by source code). 3.15.1 / TF 2.21:
    `Function._omit_frequent_tracing_warning`.
    """
    function._omit_frequent_tracing_warning = True
