"""Overhead of `EarlyStopping` per epoch, against no callback and Keras' own.

Fits the same small MLP on scikit-learn's digits for a fixed 20 epochs with

    (a) no callback,
    (b) `keras.callbacks.EarlyStopping(patience=1000)`,
    (c) our `EarlyStopping(patience=1000)`,
    (d) our `EarlyStopping(criterion=GL(1000) | UP(50))`,
    (e) our `EarlyStopping(patience=1000, check_finite=False)`: (c) without the
        state watch,

none of which can stop within 20 epochs, so every fit does the same work. The
variants are interleaved over several rounds (each fit starts from the same
initial weights; the train function is compiled once beforehand) and the median
wall time of each is compared side by side. Timings are noisy on a busy
machine: read the ratios, not the digits.

Run from the repository root, on any Keras backend:

    python benchmarks/early_stopping_overhead.py
    KERAS_BACKEND=jax python benchmarks/early_stopping_overhead.py
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_bettermodels.callbacks import EarlyStopping
from keras_bettermodels.criteria import GL, UP

EPOCHS = 20
ROUNDS = 5
TRAIN_SIZE = 300
VALIDATION_SIZE = 500
BATCH_SIZE = 64

VARIANTS: dict[str, Callable[[], list[keras.callbacks.Callback]]] = {
    "(a) no callback": lambda: [],
    "(b) keras EarlyStopping(patience=1000)": lambda: [
        keras.callbacks.EarlyStopping(patience=1000)
    ],
    "(c) kbm EarlyStopping(patience=1000)": lambda: [EarlyStopping(patience=1000)],
    "(d) kbm EarlyStopping(GL(1000) | UP(50))": lambda: [
        EarlyStopping(criterion=GL(1000) | UP(50))
    ],
    # (c) against (e): the state watch (one fused reduction over every weight
    # and optimizer variable per epoch).
    "(e) kbm EarlyStopping(..., check_finite=False)": lambda: [
        EarlyStopping(patience=1000, check_finite=False)
    ],
}


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    end = TRAIN_SIZE + VALIDATION_SIZE
    return x[:TRAIN_SIZE], y[:TRAIN_SIZE], x[TRAIN_SIZE:end], y[TRAIN_SIZE:end]


def build_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    keras.utils.set_random_seed(0)
    x_train, y_train, x_val, y_val = load_data()
    model = build_model()
    initial_weights = model.get_weights()

    def fit(callbacks: list[keras.callbacks.Callback], epochs: int) -> float:
        model.set_weights(initial_weights)
        start = time.perf_counter()
        history = model.fit(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            epochs=epochs,
            batch_size=BATCH_SIZE,
            validation_batch_size=VALIDATION_SIZE,
            verbose=0,
            callbacks=callbacks,
        )
        elapsed = time.perf_counter() - start
        if len(history.history["loss"]) != epochs:
            raise RuntimeError(
                f"a fit stopped early after {len(history.history['loss'])} of "
                f"{epochs} epochs: the variants no longer do the same work"
            )
        return elapsed

    fit([], 2)  # compiles the train and test functions outside the timings
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(ROUNDS):
        for name, make_callbacks in VARIANTS.items():
            times[name].append(fit(make_callbacks(), EPOCHS))

    medians = {name: statistics.median(values) for name, values in times.items()}
    none, keras_own = (
        medians["(a) no callback"],
        medians["(b) keras EarlyStopping(patience=1000)"],
    )
    print(f"Keras backend: {keras.backend.backend()}")
    print(
        f"{EPOCHS} epochs per fit, {TRAIN_SIZE} training / {VALIDATION_SIZE} "
        f"validation samples, median of {ROUNDS} interleaved rounds"
    )
    header = (
        f"{'variant':<46} {'fit s':>7} {'ms/epoch':>9} "
        f"{'overhead ms/epoch':>18} {'vs (a)':>7} {'vs (b)':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, median in medians.items():
        overhead_ms = (median - none) / EPOCHS * 1000
        print(
            f"{name:<46} {median:>7.3f} {median / EPOCHS * 1000:>9.2f} "
            f"{overhead_ms:>+18.2f} {median / none:>7.3f} {median / keras_own:>7.3f}"
        )


if __name__ == "__main__":
    main()
