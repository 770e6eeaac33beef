"""Small models, data and a per-step probe shared by the pruning tests."""

from __future__ import annotations

import importlib
import re

import keras
import numpy as np
import pytest
from keras import ops


def data(n: int = 64, features: int = 8, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = rng.integers(0, classes, size=n).astype("int32")
    return x, y


def mlp(features: int = 8, hidden: int = 16, classes: int = 3) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(hidden, activation="relu", name="hidden"),
            keras.layers.Dense(classes, name="head"),
        ],
        name="mlp",
    )


# What `fit` says when `UpdatePruningMasks` is missing.
MISSING_CALLBACK_MATCH = (
    r"training=True, but pruning is not switched on\. Add .*UpdatePruningMasks"
)


def compile_for_test(model: keras.Model, learning_rate: float = 0.01) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def pruned_model(schedule=None) -> keras.Model:
    """A compiled MLP whose first layer is pruned, every second step by default."""
    from keras_bettermodels.pruning import ConstantSparsity, PruneLowMagnitude

    schedule = schedule or ConstantSparsity(0.5, begin_step=0, frequency=2)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            PruneLowMagnitude(
                keras.layers.Dense(16, activation="relu"), schedule=schedule
            ),
            keras.layers.Dense(3),
        ]
    )
    return compile_for_test(model)


def pruning_step_of(model: keras.Model) -> int:
    """The pruning step of the model's first layer."""
    return int(numpy(model.layers[0].pruning_step))


def numpy(value) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(value))


def nonzeros_per_group(weight: np.ndarray, n: int = 4) -> np.ndarray:
    """Non-zeros per group of `n` consecutive weights along the input axis (-2)."""
    return np.count_nonzero(np.moveaxis(weight, -2, -1).reshape(-1, n), axis=-1)


class AfterEachStep(keras.callbacks.Callback):
    """Calls `probe(model)` after every training step, with the variables current.

    On JAX the trainer holds the state during `fit`; `jax_state_sync()` is the
    trainer's own way to let a callback read it.
    """

    def __init__(self, probe):
        super().__init__()
        self.probe = probe
        self.records = []

    def on_train_batch_end(self, batch, logs=None):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        self.records.append(self.probe(self.model))


def assert_moved(old_module: str, name: str, home: str) -> None:
    """`old_module.name` still resolves, to `home.name`, with a DeprecationWarning."""
    module = importlib.import_module(old_module)
    expected = (
        rf"`{re.escape(old_module)}\.{name}` is deprecated.*"
        rf"`from {re.escape(home)} import {name}`"
    )
    with pytest.warns(DeprecationWarning, match=expected):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(home), name)


def fit_one_epoch_in_steps_of_8(model, x, y, recorder: AfterEachStep) -> None:
    """One epoch in order, batches of 8, pruning on, `recorder` after each step."""
    from keras_bettermodels.callbacks import UpdatePruningMasks

    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[UpdatePruningMasks(), recorder],
    )
