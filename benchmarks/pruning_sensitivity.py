"""Pruning sensitivity of the digits MLP: the table and the plot in docs/pruning.md.

1. train the 64-256-256-10 MLP of `benchmarks/pruning.py` on scikit-learn's
   digits (1,200 training samples, the same shuffled split), briefly;
2. run `keras_bettermodels.pruning.sensitivity` on the 597 test samples:
   each Dense kernel magnitude-pruned alone at 25% to 99%, accuracy measured,
   the kernel restored;
3. print the table and the suggested sparsities (tolerance: 1 point of
   accuracy), and save the plot as `docs/img/pruning-sensitivity.png`.

Run from the repository root, on any Keras backend (about half a minute on a
laptop CPU):

    python benchmarks/pruning_sensitivity.py
    KERAS_BACKEND=jax python benchmarks/pruning_sensitivity.py --plot /tmp/s.png
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_bettermodels.pruning import sensitivity

REPO = Path(__file__).resolve().parents[1]
PLOT = REPO / "docs" / "img" / "pruning-sensitivity.png"
TRAIN_SIZE = 1200
EPOCHS = 10
SPARSITIES = (0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
TOLERANCE = 0.01


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The split of `benchmarks/pruning.py`: 1,200 training, 597 test samples."""
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:TRAIN_SIZE], y[:TRAIN_SIZE], x[TRAIN_SIZE:], y[TRAIN_SIZE:]


def build_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(256, activation="relu", name="dense_1"),
            keras.layers.Dense(256, activation="relu", name="dense_2"),
            keras.layers.Dense(10, activation="softmax", name="output"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--plot", type=Path, default=PLOT, help=f"where to save it ({PLOT})"
    )
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test = load_data()
    model = build_model()
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=EPOCHS, batch_size=32, verbose=0)
    trained = time.perf_counter() - start
    before = [w.copy() for w in model.get_weights()]

    start = time.perf_counter()
    report = sensitivity(
        model,
        x_test,
        y_test,
        sparsities=SPARSITIES,
        tolerance=TOLERANCE,
        batch_size=597,
        verbose=0,
    )
    scanned = time.perf_counter() - start
    unchanged = all(
        np.array_equal(old, new)
        for old, new in zip(before, model.get_weights(), strict=True)
    )

    print(
        f"backend {keras.backend.backend()}: trained {EPOCHS} epochs in "
        f"{trained:.1f} s; scan of {len(report.layers)} layers x "
        f"{len(SPARSITIES)} sparsities in {scanned:.1f} s; weights restored "
        f"exactly: {unchanged}"
    )
    print(report)
    print("suggested:", report.suggested)
    print("suggested at 2 points:", report.suggest(0.02))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    report.plot(ax=ax)
    ax.set_title(
        f"Digits MLP ({keras.backend.backend()}): each layer pruned alone, "
        "no retraining (circled: suggested)",
        fontsize=9,
    )
    ax.grid(True, alpha=0.3)
    figure.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
