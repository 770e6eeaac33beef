"""TrainingHealth's cost: `fit` with and without it, side by side, on a CPU.

Two models: the demo's MLP on scikit-learn's digits (64 → 256 → 256 → 10) and
a small conv net on the digits as 8×8 images. Each is fitted in alternating
rounds without and with `TrainingHealth(x[:64], y[:64])` at its default
interval (`every_n_steps=100`), after one warm-up fit of each (compilations of
the training step and of the probe excluded: the probe is kept between fits of
the same model). Prints the median wall time of each and their ratio; the goal
is at most 1.03. Timings on a busy machine are noisy: read the ratios.

Run from the repository root:

    KERAS_BACKEND=jax python benchmarks/training_health.py
    KERAS_BACKEND=torch python benchmarks/training_health.py --rounds 3 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y.astype("int32")


def _mlp() -> tuple[Any, Any, Any]:
    from keras_bettermodels.demo import _build_model

    x, y = _digits()
    return _build_model(x.shape[1]), x, y


def _convnet() -> tuple[Any, Any, Any]:
    import keras

    x, y = _digits()
    x = x.reshape(-1, 8, 8, 1)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, x, y


def _time_fit(model: Any, x: Any, y: Any, epochs: int, callbacks: list[Any]) -> float:
    start = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks)
    return time.perf_counter() - start


def measure(build: Any, rounds: int, epochs: int) -> tuple[float, float, int]:
    """(median seconds without, median seconds with, samples per fit)."""
    from keras_bettermodels.callbacks import TrainingHealth

    model, x, y = build()
    health = TrainingHealth(x[:64], y[:64], verbose=0)
    _time_fit(model, x, y, 1, [])  # warm-up: the training step
    _time_fit(model, x, y, 1, [health])  # warm-up: the probe
    without, with_health = [], []
    for _ in range(rounds):
        without.append(_time_fit(model, x, y, epochs, []))
        with_health.append(_time_fit(model, x, y, epochs, [health]))
    return (
        statistics.median(without),
        statistics.median(with_health),
        len(health.report().steps),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    import keras

    print(
        f"backend={keras.backend.backend()} rounds={args.rounds} epochs={args.epochs}"
    )
    print(f"{'model':<10} {'without s':>10} {'with s':>10} {'ratio':>7} {'samples':>8}")
    for name, build in (("demo MLP", _mlp), ("conv net", _convnet)):
        without, with_health, samples = measure(build, args.rounds, args.epochs)
        ratio = with_health / without
        print(
            f"{name:<10} {without:>10.3f} {with_health:>10.3f} "
            f"{ratio:>7.3f} {samples:>8}"
        )


if __name__ == "__main__":
    main()
