"""Keras internals the pruning package needs, one function each.

Checked against Keras 3.15.1 (JAX, TensorFlow and PyTorch backends).
`tests/_compat/test_pruning.py` fails loudly when one of them moves.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import keras

__all__ = [
    "autocast_disabled",
    "current_stateless_scope",
    "find_training_frame",
    "input_shape_argument",
    "is_functional",
    "set_input_shape_argument",
    "set_jax_trainer_state",
    "set_train_function",
    "train_function",
]

# The names of the trainer methods whose frames hold the model being trained
# (and, on JAX, its detached `state`). Keras 3.15.1.
TRAINING_METHODS = ("fit", "train_on_batch")

# The order of the JAX trainer's state tuple. Keras 3.15.1,
# `keras/src/backend/jax/trainer.py` (`JAXTrainer.jax_state_sync`).
JAX_STATE_KEYS = (
    "trainable_variables",
    "non_trainable_variables",
    "optimizer_variables",
    "metrics_variables",
)


def is_functional(model: Any) -> bool:
    """Whether `model` is a functional model (Sequential ones included).

    Keras has no public class for functional models. Keras 3.15.1:
    `keras.src.models.functional.Functional`.
    """
    from keras.src.models.functional import Functional

    return isinstance(model, keras.Sequential | Functional)


def input_shape_argument(layer: Any) -> tuple[Any, ...] | None:
    """The `input_shape=` (or `input_dim=`) `layer` was created with, or `None`.

    Keras 3.15.1: `Layer.__init__` keeps it in `_input_shape_arg` (set only
    when one is given; `input_dim=d` as `(d,)`), and `Sequential.add` makes an
    `InputLayer` from its first layer's.
    """
    shape = getattr(layer, "_input_shape_arg", None)
    return None if shape is None else tuple(shape)


def set_input_shape_argument(layer: Any, shape: tuple[Any, ...]) -> None:
    """Gives `layer` an input shape, as if created with `input_shape=shape`.

    Without the warning Keras gives for that argument (the user already had
    it for the layer the shape comes from). Keras 3.15.1:
    `Layer._input_shape_arg`, read by `Sequential.add`.
    """
    layer._input_shape_arg = tuple(shape)


def train_function(model: Any) -> Any:
    """The model's compiled training step as `fit` built it, or `None`.

    Keras 3.15.1: `Trainer.train_function`, set by `make_train_function()`
    (JAX, TensorFlow and PyTorch trainers) and reused while not `None`.
    """
    return getattr(model, "train_function", None)


def set_train_function(model: Any, function: Any) -> None:
    """Replaces the model's compiled training step; `None` makes the next
    `fit` (or `train_on_batch`) build a new one.

    Keras 3.15.1: `Trainer.train_function`, which `make_train_function()`
    returns as is unless it is `None` (or `force=True`).
    """
    model.train_function = function


def current_stateless_scope() -> Any:
    """The active `keras.StatelessScope`, or `None` outside one.

    Keras 3.15.1: `keras.src.backend.common.stateless_scope`.
    """
    from keras.src.backend.common.stateless_scope import (
        get_stateless_scope,
        in_stateless_scope,
    )

    return get_stateless_scope() if in_stateless_scope() else None


@contextlib.contextmanager
def autocast_disabled() -> Iterator[None]:
    """A scope in which variables read in their own dtype (no mixed-precision cast).

    Keras 3.15.1: `keras.src.backend.common.variables.AutocastScope(None)`.
    """
    from keras.src.backend.common.variables import AutocastScope

    with AutocastScope(None):
        yield


def find_training_frame(start: FrameType | None = None) -> tuple[Any, Any] | None:
    """The model whose `fit` (or `train_on_batch`) is running, and its frame's `state`.

    Walks the Python stack up from `start` (the caller by default) to
    the trainer's `fit` or `train_on_batch` frame. On JAX, that frame's local
    `state` holds the variable values the trainer detached from the model.
    Keras 3.15.1: `Trainer.fit` / `train_on_batch`, local names `self` and
    `state` (`keras/src/backend/jax/trainer.py`).

    Returns:
        `(model, state)`, `state` being `None` where the frame has none, or
        `None` when no training frame is on the stack.
    """
    frame: FrameType | None = start if start is not None else sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.Model) and frame.f_code.co_name in TRAINING_METHODS:
            return owner, frame.f_locals.get("state")
        frame = frame.f_back
    return None


def set_jax_trainer_state(model: Any, state: tuple[Any, ...] | list[Any]) -> None:
    """Writes the JAX trainer's detached `state` back into `model`'s variables.

    Runs outside any stateless scope (where assignments would only be
    recorded). Keras 3.15.1: `JAXTrainer._jax_state`, `_jax_state_synced`,
    `jax_state_sync()` and the global attribute `"stateless_scope"` of
    `keras.src.backend.common.global_state`.
    """
    from keras.src.backend.common import global_state

    model._jax_state = dict(zip(JAX_STATE_KEYS, state, strict=True))
    model._jax_state_synced = False
    scope = global_state.get_global_attribute("stateless_scope")
    global_state.set_global_attribute("stateless_scope", None)
    try:
        model.jax_state_sync()
    finally:
        global_state.set_global_attribute("stateless_scope", scope)
