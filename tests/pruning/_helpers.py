"""Small models, data and a per-step probe shared by the pruning tests."""

from __future__ import annotations

import keras
import numpy as np
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


def compile_for_test(model: keras.Model, learning_rate: float = 0.01) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def numpy(value) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(value))


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
