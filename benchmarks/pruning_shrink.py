"""Structured pruning that pays: units and filters pruned, then `shrink`, on digits.

The second part of the pruning benchmarks (`benchmarks/pruning.py` measures
unstructured pruning's accuracy and size). For an MLP (64-1024-1024-10) and a
small conv net (8x8 digits: Conv 32 - pool - Conv 64 - Dense 128 - 10), each
trained on scikit-learn's digits (nothing downloaded):

1. for 50% and 75% of the hidden units and filters: prune them one-shot
   (masks computed, no training) and read the test accuracy ("one-shot");
   then prune a fresh copy gradually while fine-tuning (`PolynomialDecay`,
   `structure="units"` / `"filters"`, the output layer left dense) and read
   it again ("fine-tuned");
2. `strip_pruning`, then `shrink`: check that the shrunk model predicts what
   the stripped one does, and compare parameters and gzip-compressed weights
   (`np.savez`, then gzip, as tfmot's guide reports sizes);
3. time inference of the dense model and the shrunk one, side by side in one
   run, interleaved, at batch 1 and 256 (`predict_on_batch`, compiled
   beforehand; median of several rounds).

The goal: the shrunk MLP at 75% at least 1.7 times faster than the dense one.
Timings are noisy on a busy machine: read the ratios, not the digits.

    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python benchmarks/pruning_shrink.py
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
    ConstantSparsity,
    PolynomialDecay,
    prune_low_magnitude,
    shrink,
    strip_pruning,
)

TRAIN_SIZE = 1200
BATCH_SIZE = 32
DENSE_EPOCHS = 20
FINE_TUNE_EPOCHS = 8
TARGETS = (0.5, 0.75)
GOAL_SPEEDUP = 1.7
TIMING_BATCHES = (1, 256)
TIMING_ROUNDS = 7
CALLS_PER_ROUND = {1: 200, 256: 40}


def load_data() -> tuple[np.ndarray, ...]:
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:TRAIN_SIZE], y[:TRAIN_SIZE], x[TRAIN_SIZE:], y[TRAIN_SIZE:]


def build_mlp() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(1024, activation="relu", name="hidden_1"),
            keras.layers.Dense(1024, activation="relu", name="hidden_2"),
            keras.layers.Dense(10, name="head"),
        ],
        name="mlp",
    )


def build_conv() -> keras.Model:
    inputs = keras.Input(shape=(64,))
    h = keras.layers.Reshape((8, 8, 1))(inputs)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_1")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv_2")(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(128, activation="relu", name="hidden")(h)
    return keras.Model(inputs, keras.layers.Dense(10, name="head")(h), name="conv")


def compile_model(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
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


def prune(model: keras.Model, schedule) -> keras.Model:
    """Hidden units of Dense layers and filters of convolutions; the head stays."""
    pruned = prune_low_magnitude(model, schedule, structure="units")
    if any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers):
        pruned = prune_low_magnitude(pruned, schedule, structure="filters")
    return pruned


def one_shot(dense: keras.Model, target: float, x, y) -> keras.Model:
    """Masks computed at the first step, weights untouched (learning rate 0)."""
    pruned = compile_model(prune(dense, ConstantSparsity(target, 0, 1, 1)), 0.0)
    pruned.fit(
        x[:BATCH_SIZE],
        y[:BATCH_SIZE],
        epochs=1,
        verbose=0,
        callbacks=[UpdatePruningMasks()],
    )
    return strip_pruning(pruned)


def fine_tuned(dense: keras.Model, target: float, x, y) -> keras.Model:
    steps = FINE_TUNE_EPOCHS * int(np.ceil(len(x) / BATCH_SIZE))
    end_step = int(0.6 * steps) // 10 * 10
    schedule = PolynomialDecay(
        0.0, target, begin_step=0, end_step=end_step, frequency=10
    )
    pruned = compile_model(prune(dense, schedule))
    pruned.fit(
        x,
        y,
        epochs=FINE_TUNE_EPOCHS,
        batch_size=BATCH_SIZE,
        verbose=0,
        callbacks=[UpdatePruningMasks()],
    )
    return strip_pruning(pruned)


def time_inference(models: dict[str, keras.Model], x: np.ndarray) -> dict:
    """Seconds per call of `predict_on_batch`, per model and batch size (median)."""
    times: dict[tuple[str, int], list[float]] = {}
    for batch in TIMING_BATCHES:
        inputs = np.resize(x, (batch, x.shape[1])).astype("float32")
        for model in models.values():
            model.predict_on_batch(inputs)  # compiled before timing
        for _ in range(TIMING_ROUNDS):
            for name, model in models.items():
                calls = CALLS_PER_ROUND[batch]
                start = time.perf_counter()
                for _ in range(calls):
                    model.predict_on_batch(inputs)
                elapsed = (time.perf_counter() - start) / calls
                times.setdefault((name, batch), []).append(elapsed)
    return {key: statistics.median(values) for key, values in times.items()}


def run(kind: str, build, data) -> list[dict]:
    x_train, y_train, x_test, y_test = data
    keras.utils.set_random_seed(0)
    dense = compile_model(build())
    dense.fit(x_train, y_train, epochs=DENSE_EPOCHS, batch_size=BATCH_SIZE, verbose=0)
    rows = [
        {
            "model": f"{kind} dense",
            "params": dense.count_params(),
            "one_shot": None,
            "accuracy": accuracy(dense, x_test, y_test),
            "gzip": gzipped_weights(dense),
            "diff": 0.0,
        }
    ]
    timed = {"dense": dense}
    for target in TARGETS:
        shot = one_shot(dense, target, x_train, y_train)
        stripped = fine_tuned(dense, target, x_train, y_train)
        small = shrink(stripped)
        diff = float(
            np.max(
                np.abs(
                    small.predict(x_test, verbose=0)
                    - stripped.predict(x_test, verbose=0)
                )
            )
        )
        name = f"{kind} {target:.0%}"
        rows.append(
            {
                "model": name,
                "params": small.count_params(),
                "one_shot": accuracy(shot, x_test, y_test),
                "accuracy": accuracy(small, x_test, y_test),
                "gzip": gzipped_weights(small),
                "diff": diff,
            }
        )
        timed[f"{target:.0%}"] = small
    seconds = time_inference(timed, x_test)
    for row, key in zip(rows, timed, strict=True):
        for batch in TIMING_BATCHES:
            row[f"ms{batch}"] = seconds[(key, batch)] * 1000
            row[f"speedup{batch}"] = seconds[("dense", batch)] / seconds[(key, batch)]
    return rows


def main() -> None:
    data = load_data()
    rows = run("MLP", build_mlp, data) + run("conv", build_conv, data)
    print(
        f"Keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{os.cpu_count()} CPUs; digits {TRAIN_SIZE} train / {len(data[2])} test"
    )
    header = (
        f"{'model':<10} {'params':>8} {'one-shot':>8} {'fine-tuned':>10} "
        f"{'gzip':>8} {'b=1 ms':>7} {'x':>5} {'b=256 ms':>8} {'x':>5} "
        f"{'max |diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    dense_gzip = {}
    for row in rows:
        kind = row["model"].split()[0]
        dense_gzip.setdefault(kind, row["gzip"])
        shot = "-" if row["one_shot"] is None else f"{row['one_shot']:.2%}"
        print(
            f"{row['model']:<10} {row['params']:>8d} {shot:>8} "
            f"{row['accuracy']:>10.2%} {row['gzip'] / dense_gzip[kind]:>8.3f} "
            f"{row['ms1']:>7.3f} {row['speedup1']:>5.2f} {row['ms256']:>8.3f} "
            f"{row['speedup256']:>5.2f} {row['diff']:>10.1e}"
        )
    goal = next(r for r in rows if r["model"] == "MLP 75%")
    speedup = min(goal["speedup1"], goal["speedup256"])
    print(
        f"goal (MLP at 75% >= {GOAL_SPEEDUP}x faster at both batch sizes): "
        f"{'met' if speedup >= GOAL_SPEEDUP else 'MISSED'} "
        f"(batch 1: {goal['speedup1']:.2f}x, batch 256: {goal['speedup256']:.2f}x)"
    )


if __name__ == "__main__":
    main()
