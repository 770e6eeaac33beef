"""The logs the browser tests open: real `fit` runs with the package's callbacks.

Real fits:

- `mlp`: a correct model, checked by `GradientCheckCallback` at the start and
  after each of two epochs; `buggy`: a layer whose weight penalty is cut off
  from backprop by `stop_gradient` (a planted bug);
- `cached` and `uncached`: the same model fit on a `tf.data` pipeline whose
  `map` sleeps, with and without `.cache()`, timed by `CacheTimingCallback`;
- `early_stopping`: GL / P_k / PQ from `EarlyStopping(criterion=GL(...))`, for
  TensorBoard's Scalars tab.

Written with `summary.write_json`, for what a fit cannot produce on demand: a
check that crossed a kink (`kinked`), a run and a variable named with HTML
(TensorFlow refuses such layer names), a report from a newer content version,
reports with fields missing or of the wrong type (`sparse`), a JAX-like run
whose second epoch compiled again beside 40 ms steady epochs (`recompiled`),
and the loss scale under the tag `MixedPrecisionGuard` writes.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from pathlib import Path
from typing import Any

from keras_bettermodels.tensorboard import metadata, summary
from tests.tensorboard import _reports

XSS = _reports.XSS
SLEEP_PER_SAMPLE = 0.004
SAMPLES, BATCH_SIZE, EPOCHS = 96, 16, 4
KINKED = {
    0: _reports.gradient_check_report(
        {"dense/kernel": 3e-9, "dense/bias": 2e-9, "dense_1/kernel": 8e-8}
    ),
    5: _reports.gradient_check_report(
        {"dense/kernel": 4e-9, "dense/bias": 2e-8, "dense_1/kernel": 2e-6},
        kinks=("dense_1/kernel",),
    ),
}
HOSTILE = _reports.gradient_check_report({f"{XSS}/kernel": 3e-9})
# Reports with fields missing or of the wrong type: each field shows as "—".
SPARSE = "sparse"
SPARSE_GRADIENT_CHECK = {"verdict": "great", "variables": "not a list", "kinks": 3}
SPARSE_TIMING = {"cached": None, "epochs": [None, {"time": "NaN"}], "advice": "one"}
RECOMPILED = "recompiled"


def _recompiled_report() -> dict[str, Any]:
    """3 s first epoch, 1.2 s recompiling second, 40 ms steady ones (issue 15)."""
    from keras_bettermodels.timing.analysis import EpochTiming, summarize

    times = [3.0, 1.2, 0.04, 0.042, 0.038]
    first_steps = [2.5, 1.1, 0.004, 0.004, 0.004]
    epochs = [
        EpochTiming(index, time, 0.0, 10, 0.001, first, 320)
        for index, (time, first) in enumerate(zip(times, first_steps, strict=True))
    ]
    return summarize(epochs, batch_size=32, backend="jax").to_dict()


@functools.cache
def _stop_gradient_penalty_layer() -> type:
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="kbm_browser_tests")
    class StopGradientPenalty(keras.layers.Dense):
        """A Dense layer whose weight penalty backprop cannot see: a bug."""

        def call(self, inputs):
            self.add_loss(ops.sum(ops.square(ops.stop_gradient(self.kernel))))
            return super().call(inputs)

    return StopGradientPenalty


def _gradient_check_fit(log_dir: Path, *, buggy: bool) -> None:
    import keras
    import numpy as np

    from keras_bettermodels.callbacks.gradient_check import GradientCheckCallback

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    last = _stop_gradient_penalty_layer()(1) if buggy else keras.layers.Dense(1)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), last]
    )
    model.compile(optimizer="sgd", loss="mse")
    checker = GradientCheckCallback(
        x[:16],
        y[:16],
        every_n_epochs=None if buggy else 1,
        verbose=0,
        seed=0,
        log_dir=log_dir,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the buggy check warns with its table
        model.fit(x, y, epochs=2, verbose=0, callbacks=[checker])


def _timing_fit(log_dir: Path, *, cached: bool) -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_bettermodels.callbacks.cache_timing import CacheTimingCallback

    def slow(x, y):
        def read(value):
            time.sleep(SLEEP_PER_SAMPLE)  # stands for opening and decoding a file
            return value

        x = tf.py_function(read, [x], tf.float32)
        x.set_shape([8])
        return x, y

    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 8)).astype("float32")
    y = rng.normal(size=(SAMPLES, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).map(slow)
    if cached:
        dataset = dataset.cache()
    dataset = dataset.batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    timer = CacheTimingCallback(dataset=dataset, verbose=0, log_dir=log_dir)
    model.fit(dataset, epochs=EPOCHS, verbose=0, shuffle=False, callbacks=[timer])


def _early_stopping_fit(log_dir: Path) -> None:
    import keras
    import numpy as np

    from keras_bettermodels.callbacks.early_stopping import EarlyStopping
    from keras_bettermodels.criteria import GL

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    stopper = EarlyStopping(criterion=GL(1000.0), log_dir=log_dir)
    model.fit(x, y, validation_split=0.25, epochs=6, verbose=0, callbacks=[stopper])


def write_logs(root: Path) -> dict[str, Any]:
    """Writes every run under `root`; returns the reports, read back from the files.

    Returns:
        `{"gradient_check": {run: {step: report}}, "timing": {run: report}}`
        (the latest timing report of each run).
    """
    for step, report in KINKED.items():
        _reports.write_gradient_check(root / "kinked", step, report)
    _reports.write_gradient_check(root / XSS, 0, HOSTILE)
    _reports.write_gradient_check(root / SPARSE, 0, SPARSE_GRADIENT_CHECK)
    _reports.write_timing(root / SPARSE, 0, SPARSE_TIMING)
    _reports.write_timing(
        root / f"timing {XSS}",
        0,
        _reports.timing_report([1.0, 0.5], cached=True, advice=(XSS,)),
    )
    _reports.write_timing(
        root / "newer",
        0,
        _reports.timing_report([1.0, 0.5], cached=True),
        version=metadata.PROTOCOL_VERSION + 1,
    )
    _reports.write_timing(root / RECOMPILED, 4, _recompiled_report())
    for step, scale in enumerate([32768.0, 16384.0, 16384.0]):
        summary.write_scalars(
            root / "mixed_precision", step, {"mixed_precision/loss_scale": scale}
        )
    _gradient_check_fit(root / "mlp", buggy=False)
    _gradient_check_fit(root / "buggy", buggy=True)
    _timing_fit(root / "cached", cached=True)
    _timing_fit(root / "uncached", cached=False)
    _early_stopping_fit(root / "early_stopping")
    summary.close_all()
    timing = read_reports(root, metadata.INPUT_TIMING_PLUGIN)
    return {
        "gradient_check": read_reports(root, metadata.GRADIENT_CHECK_PLUGIN),
        "timing": {run: reports[max(reports)] for run, reports in timing.items()},
    }


def read_reports(root: Path, plugin_name: str) -> dict[str, dict[int, dict[str, Any]]]:
    """Run -> step -> report, for `plugin_name`, read from the event files."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    found: dict[str, dict[int, dict[str, Any]]] = {}
    for run in sorted(os.listdir(root)):
        events = EventAccumulator(str(root / run), size_guidance={"tensors": 0})
        events.Reload()
        for tag in events.Tags()["tensors"]:
            plugin_data = events.SummaryMetadata(tag).plugin_data
            if plugin_data.plugin_name != plugin_name:
                continue
            if metadata.headline_of(plugin_data.content) is not None:
                continue  # the headline beside each report
            found[run] = {
                event.step: summary.read_json(event.tensor_proto)
                for event in events.Tensors(tag)
            }
    return found
