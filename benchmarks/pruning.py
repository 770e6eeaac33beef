"""Magnitude pruning on digits: accuracy, compressed size and training overhead.

Follows the workflow of TensorFlow Model Optimization's pruning guide, with
this package on Keras 3:

1. train a dense MLP (64-256-256-10) on scikit-learn's digits;
2. for each target sparsity (50%, 80%, 90%), wrap a copy of it with
   `prune_low_magnitude` (`PolynomialDecay` from 0 to the target over the
   first 60% of the fine-tuning steps), fine-tune it with `UpdatePruningMasks`
   and `strip_pruning` it;
3. compare test accuracy with the dense model, and with the dense model
   fine-tuned for as many epochs without pruning (same total training);
4. compare the size of the gzip-compressed weights (`np.savez`, then gzip)
   with the dense model's;
5. time an epoch of fine-tuning with and without the pruning wrappers, both
   compiled beforehand, interleaved over several rounds (median).

The goal: at 80% sparsity, test accuracy within 2 points of the dense model.
Timings are noisy on a busy machine: read the ratios, not the digits.

Run from the repository root, on any Keras backend:

    python benchmarks/pruning.py
    KERAS_BACKEND=jax python benchmarks/pruning.py
"""

from __future__ import annotations

import gzip
import io
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning import (
    PolynomialDecay,
    prune_low_magnitude,
    sparsity_report,
    strip_pruning,
)

TRAIN_SIZE = 1200
BATCH_SIZE = 32
DENSE_EPOCHS = 30
FINE_TUNE_EPOCHS = 10
TARGETS = (0.5, 0.8, 0.9)
GOAL_SPARSITY, GOAL_POINTS = 0.8, 2.0
TIMING_EPOCHS = 3
TIMING_ROUNDS = 5


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:TRAIN_SIZE], y[:TRAIN_SIZE], x[TRAIN_SIZE:], y[TRAIN_SIZE:]


def build_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def compile_model(model: keras.Model) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    predictions = np.argmax(model.predict(x, batch_size=512, verbose=0), axis=-1)
    return float(np.mean(predictions == y))


def gzipped_weights(model: keras.Model) -> int:
    buffer = io.BytesIO()
    np.savez(buffer, *model.get_weights())
    return len(gzip.compress(buffer.getvalue(), compresslevel=9))


def copy_of(model: keras.Model) -> keras.Model:
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def main() -> None:
    keras.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test = load_data()
    steps_per_epoch = int(np.ceil(TRAIN_SIZE / BATCH_SIZE))
    fine_tune_steps = FINE_TUNE_EPOCHS * steps_per_epoch
    frequency = 10
    end_step = int(0.6 * fine_tune_steps) // frequency * frequency

    dense = compile_model(build_model())
    dense.fit(x_train, y_train, epochs=DENSE_EPOCHS, batch_size=BATCH_SIZE, verbose=0)
    dense_accuracy = accuracy(dense, x_test, y_test)
    dense_size = gzipped_weights(dense)

    longer = compile_model(copy_of(dense))
    longer.fit(
        x_train, y_train, epochs=FINE_TUNE_EPOCHS, batch_size=BATCH_SIZE, verbose=0
    )
    rows = [
        ("dense", 0.0, dense_accuracy, dense_size),
        (
            f"dense +{FINE_TUNE_EPOCHS} epochs",
            0.0,
            accuracy(longer, x_test, y_test),
            gzipped_weights(longer),
        ),
    ]
    pruned_models = {}
    for target in TARGETS:
        schedule = PolynomialDecay(
            0.0, target, begin_step=0, end_step=end_step, frequency=frequency
        )
        pruned = compile_model(prune_low_magnitude(dense, schedule=schedule))
        pruned.fit(
            x_train,
            y_train,
            epochs=FINE_TUNE_EPOCHS,
            batch_size=BATCH_SIZE,
            verbose=0,
            callbacks=[UpdatePruningMasks()],
        )
        stripped = strip_pruning(pruned)
        measured = sparsity_report(stripped).sparsity
        rows.append(
            (
                f"pruned {target:.0%}",
                measured,
                accuracy(stripped, x_test, y_test),
                gzipped_weights(stripped),
            )
        )
        pruned_models[target] = pruned

    # Training time per epoch, with and without the wrappers, both compiled.
    timed = {"dense": longer, "pruned 80%": pruned_models[GOAL_SPARSITY]}
    callbacks = {"dense": list, "pruned 80%": lambda: [UpdatePruningMasks()]}
    times: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(TIMING_ROUNDS):
        for name, model in timed.items():
            start = time.perf_counter()
            model.fit(
                x_train,
                y_train,
                epochs=TIMING_EPOCHS,
                batch_size=BATCH_SIZE,
                verbose=0,
                callbacks=callbacks[name](),
            )
            times[name].append((time.perf_counter() - start) / TIMING_EPOCHS)
    epoch = {name: statistics.median(values) for name, values in times.items()}

    print(f"Keras backend: {keras.backend.backend()}")
    print(
        f"digits: {TRAIN_SIZE} training / {len(x_test)} test samples; MLP "
        f"64-256-256-10 trained {DENSE_EPOCHS} epochs, then pruned while "
        f"fine-tuned {FINE_TUNE_EPOCHS} epochs (PolynomialDecay from 0, "
        f"end_step={end_step} of {fine_tune_steps}, frequency={frequency})"
    )
    header = (
        f"{'model':<20} {'sparsity':>8} {'test acc':>9} {'vs dense':>9} "
        f"{'gzip bytes':>11} {'size ratio':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, sparsity, acc, size in rows:
        print(
            f"{name:<20} {sparsity:>8.1%} {acc:>9.2%} "
            f"{(acc - dense_accuracy) * 100:>+8.2f}p {size:>11d} "
            f"{size / dense_size:>10.3f}"
        )
    goal = next(r for r in rows if r[0] == f"pruned {GOAL_SPARSITY:.0%}")
    drop = (dense_accuracy - goal[2]) * 100
    verdict = "met" if drop <= GOAL_POINTS else "MISSED"
    print(
        f"goal (80% sparse within {GOAL_POINTS:g} points of dense): {verdict} "
        f"({drop:+.2f} points)"
    )
    print(
        f"training time per epoch: dense {epoch['dense'] * 1000:.1f} ms, pruned "
        f"{epoch['pruned 80%'] * 1000:.1f} ms, ratio "
        f"{epoch['pruned 80%'] / epoch['dense']:.3f} (median of {TIMING_ROUNDS} "
        f"interleaved rounds of {TIMING_EPOCHS} epochs)"
    )


if __name__ == "__main__":
    main()
