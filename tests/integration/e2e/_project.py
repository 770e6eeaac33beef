"""A real project, in its own process: `python -m tests.integration.e2e._project OUT`.

One `fit` with every callback that writes logs, then the same callbacks in
`RandomSearch.search` and its retrain, on the backend `KERAS_BACKEND` names.
Logs go under `OUT/<backend>/{fit,search}/<callback>`; `OUT/<backend>.json`
lists what a TensorBoard over `OUT` must show: the runs of each tab, and what
each callback concluded.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

from keras_bettermodels.callbacks import (
    CacheTimingCallback,
    EarlyStopping,
    GradientCheckCallback,
    MixedPrecisionGuard,
)
from keras_bettermodels.criteria import GL
from keras_bettermodels.tuners import RandomSearch

EPOCHS, BATCH_SIZE = 3, 64


def _data() -> tuple[np.ndarray, ...]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")[:640]
    y = y.astype("int32")[:640]
    return x[:512], y[:512], x[512:], y[512:]


def _build(hp: Any = None) -> keras.Model:
    units = 32 if hp is None else hp.Choice("units", [16, 32])
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _callbacks(root: Path, dataset: Any, x: Any, y: Any) -> list[Any]:
    return [
        EarlyStopping(criterion=GL(50), log_dir=str(root / "early_stopping")),
        GradientCheckCallback(
            x[:16], y[:16], every_n_epochs=2, log_dir=str(root / "gradient_check")
        ),
        CacheTimingCallback(dataset=dataset, log_dir=str(root / "input_timing")),
        MixedPrecisionGuard(log_dir=str(root / "guard")),
    ]


def main(out: Path) -> None:
    backend = keras.backend.backend()
    keras.utils.set_random_seed(0)
    x, y, xv, yv = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH_SIZE).cache()
    # Validation as a dataset of the same spec, so the retrain can append it.
    validation = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(BATCH_SIZE)
    base = out / backend

    model = _build()
    fit_callbacks = _callbacks(base / "fit", dataset, x, y)
    model.fit(
        dataset,
        epochs=EPOCHS,
        validation_data=validation,
        callbacks=fit_callbacks,
        verbose=0,
    )

    tuner = RandomSearch(
        _build,
        objective="val_accuracy",
        max_trials=2,
        directory=str(out / f"{backend}-tuner"),
        project_name="e2e",
        seed=0,
    )
    search_callbacks = _callbacks(base / "search", dataset, x, y)
    tuner.search(
        dataset,
        epochs=EPOCHS,
        validation_data=validation,
        callbacks=search_callbacks,
        verbose=0,
    )
    trials = sorted(tuner.oracle.trials)
    runs = {
        name: sorted(
            [f"{backend}/fit/{name}"]
            + [f"{backend}/search/{name}/{trial}" for trial in [*trials, "retrain"]]
        )
        for name in ("gradient_check", "input_timing")
    }
    expected = {
        "backend": backend,
        "trials": trials,
        "runs": runs,
        "retrained": tuner.get_retrained_model() is not None,
        # The user's dirs hold one folder per trial, and the retrain's; the
        # retrain has no validation data, so it drops EarlyStopping.
        "user_dirs": {
            name: sorted(os.listdir(base / "search" / name))
            for name in ("gradient_check", "input_timing", "early_stopping", "guard")
        },
        "guard_findings": [f.code for f in fit_callbacks[3].findings],
    }
    (out / f"{backend}.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
