"""The fits behind `_scenarios.py`: each callback on two devices and on one.

Imports Keras at the top: import this module only after `_scenarios.py` has
given the framework its two devices (logical CPUs for TensorFlow, XLA host
devices for JAX), which must happen before the framework starts.

Every scenario trains the same model from the same weights on the same data
twice: on one device (the reference) and on two (`tf.distribute.
MirroredStrategy` or `keras.distribution.DataParallel`), and returns what each
callback decided and measured in both runs, as JSON-ready dicts with the same
keys, for the tests to compare.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_bettermodels import criteria
from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.callbacks.cache_timing import CacheTimingCallback
from keras_bettermodels.callbacks.early_stopping import EarlyStopping
from keras_bettermodels.callbacks.gradient_check import GradientCheckCallback
from keras_bettermodels.callbacks.mixed_precision import MixedPrecisionGuard
from keras_bettermodels.criteria import GL, PQ, UP, Patience
from keras_bettermodels.gradient_check import _clone
from keras_bettermodels.pruning import ConstantSparsity, prune_low_magnitude

REPLICAS = 2
SEED = 1
RUNS = ("reference", "distributed")

# Early stopping: digits with 50 % of the training labels replaced by random
# ones, so that the model fits the noise after a few epochs and the validation
# loss turns up (at epoch 3 on TensorFlow and JAX alike).
TRAIN, VALIDATION, NOISE = 256, 128, 0.5
BATCH, VALIDATION_BATCH = 64, 128
REFERENCE_EPOCHS = 7
CHECK_EVERY = 2
CHECK_SAMPLES = 32

# Mixed precision: 4 steps an epoch; the loss scale starts far too high (the
# first steps are skipped until it fits float16), and the activations overflow
# float16 from the first step of the last epoch on.
MP_SAMPLES, MP_BATCH, MP_EPOCHS, MP_INITIAL_SCALE = 256, 64, 4, 2.0**20
MP_OVERFLOW_EPOCH, MP_GAIN = 3, 1e5

# Pruning: 50 % of the hidden kernel, the mask recomputed every other step.
PRUNE_SAMPLES, PRUNE_BATCH, PRUNE_EPOCHS, SPARSITY = 128, 32, 2, 0.5

#: What the tests need to know of the setup (written to the results).
SETUP = {
    "replicas": REPLICAS,
    "batch_size": BATCH,
    "steps_per_epoch": TRAIN // BATCH,
    "check_every": CHECK_EVERY,
    "mp_steps_per_epoch": MP_SAMPLES // MP_BATCH,
    "mp_epochs": MP_EPOCHS,
    "mp_overflow_epoch": MP_OVERFLOW_EPOCH,
    "mp_initial_scale": MP_INITIAL_SCALE,
    "prune_steps": PRUNE_EPOCHS * PRUNE_SAMPLES // PRUNE_BATCH,
    "sparsity": SPARSITY,
}


# Backends ---------------------------------------------------------------------


class TensorFlowDevices:
    """`tf.distribute.MirroredStrategy` over the logical CPUs `/cpu:0` and `/cpu:1`.

    The model is built and compiled in the strategy's scope, and `fit` runs
    outside it, as Keras' distributed-training guide does.
    """

    name = "tensorflow"

    def __init__(self) -> None:
        import tensorflow as tf

        self.tf = tf
        self.strategy = tf.distribute.MirroredStrategy(
            [f"/cpu:{index}" for index in range(REPLICAS)]
        )

    @contextlib.contextmanager
    def building(self, run: str) -> Iterator[None]:
        if run == "distributed":
            with self.strategy.scope():
                yield
        else:
            yield

    @contextlib.contextmanager
    def training(self, run: str) -> Iterator[None]:
        yield

    def replicas(self, variable: Any) -> list[np.ndarray]:
        """The variable's value on every device that holds a copy of it."""
        value = variable.value
        if isinstance(value, self.tf.distribute.DistributedValues):
            return [np.asarray(component.numpy()) for component in value.values]
        return [np.asarray(value.numpy())]

    def devices(self, variable: Any) -> list[str]:
        value = variable.value
        if isinstance(value, self.tf.distribute.DistributedValues):
            return [component.device for component in value.values]
        return [value.device]

    def training_data(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """A cached, batched, prefetched `tf.data` pipeline, as users feed `fit`."""
        tf = self.tf
        dataset = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .cache()
            .batch(BATCH)
            .prefetch(tf.data.AUTOTUNE)
        )
        return {"fit": {"x": dataset}, "timer": {"dataset": dataset}}


class JaxDevices:
    """`keras.distribution.DataParallel` over the XLA host devices `cpu:0`, `cpu:1`.

    The distribution is set for the whole run, model creation and `fit`.
    """

    name = "jax"

    def __init__(self) -> None:
        import jax

        devices = jax.devices()[:REPLICAS]
        if len(devices) < REPLICAS:
            raise RuntimeError(
                f"JAX sees {len(devices)} device(s); XLA_FLAGS must ask for "
                f"{REPLICAS} before JAX starts. "
                f"XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}"
            )
        self.distribution = keras.distribution.DataParallel(devices=devices)

    @contextlib.contextmanager
    def building(self, run: str) -> Iterator[None]:
        with self.training(run):
            yield

    @contextlib.contextmanager
    def training(self, run: str) -> Iterator[None]:
        if run == "distributed":
            with self.distribution.scope():
                yield
        else:
            yield

    def replicas(self, variable: Any) -> list[np.ndarray]:
        return [np.asarray(shard.data) for shard in variable.value.addressable_shards]

    def devices(self, variable: Any) -> list[str]:
        return [str(shard.device) for shard in variable.value.addressable_shards]

    def training_data(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        return {
            "fit": {"x": x, "y": y, "batch_size": BATCH},
            "timer": {"batch_size": BATCH},
        }


Devices = TensorFlowDevices | JaxDevices


# Helpers ----------------------------------------------------------------------


class Recorder(keras.callbacks.Callback):
    """Keeps the weights at every epoch end, and the optimizer's loss scale."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: list[list[np.ndarray]] = []
        self.scales: list[float | None] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.weights.append([np.array(w) for w in self.model.get_weights()])
        optimizer = self.model.optimizer
        scale = None
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            scale = float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))
        self.scales.append(scale)


def _max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    if len(a) != len(b):
        return float("inf")
    return max(
        (float(np.max(np.abs(x - y), initial=0.0)) for x, y in zip(a, b, strict=True)),
        default=0.0,
    )


def _replica_report(devices: Devices, model: keras.Model, expected: Any) -> dict:
    """How the model's variables look on each device, against `expected` weights."""
    variables = model.weights
    per_replica = [devices.replicas(v) for v in variables]
    copies = {len(values) for values in per_replica}
    spread = max(
        _max_difference(values[:1] * len(values), values) for values in per_replica
    )
    report: dict[str, Any] = {
        "copies": sorted(copies),
        "devices": devices.devices(variables[0]),
        "max_difference_between_replicas": spread,
    }
    if expected is not None:
        report["max_difference_to_expected"] = max(
            _max_difference([values[i] for values in per_replica], expected)
            for i in range(min(copies))
        )
    return report


def _history(history: keras.callbacks.History) -> dict[str, list[float]]:
    return {key: [float(v) for v in values] for key, values in history.history.items()}


class Stopwatch:
    """Wall-clock and CPU seconds (of every thread of this process) since made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> dict[str, float]:
        return {
            "seconds": time.perf_counter() - self.wall,
            "cpu_seconds": time.process_time() - self.cpu,
        }


def _timed(function: Callable[[], dict]) -> dict:
    watch = Stopwatch()
    result = function()
    result.update(watch.read())
    return result


# Early stopping, cache timing, gradient check, TensorBoard ---------------------


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    rng = np.random.default_rng(0)
    x_train, y_train = x[:TRAIN], y[:TRAIN].copy()
    noisy = rng.random(TRAIN) < NOISE
    y_train[noisy] = rng.integers(0, 10, int(noisy.sum()))
    x_val = x[1024 : 1024 + VALIDATION]
    y_val = y[1024 : 1024 + VALIDATION]
    return x_train, y_train, x_val, y_val


def _dense(units: int, index: int, **kwargs: Any) -> keras.layers.Dense:
    """A Dense layer with seeded initial weights.

    Seeded initializers, not `keras.utils.set_random_seed`, which imports
    TensorFlow on every backend (seconds, in the JAX process).
    """
    initializer = keras.initializers.GlorotUniform(seed=SEED + index)
    return keras.layers.Dense(units, kernel_initializer=initializer, **kwargs)


def _classifier() -> keras.Model:
    model = keras.Sequential(
        [keras.Input((64,)), _dense(256, 0, activation="relu"), _dense(10, 1)]
    )
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def plan_criteria(val: list[float], train: list[float]) -> dict[str, Any]:
    """Thresholds that make every criterion fire at one epoch of the reference run.

    All the stoppers share one `fit`, which ends when the first fires; so that
    each one's own decision shows, they are tuned on the reference run's logs
    to fire together, two epochs after the best one: Keras' `patience=2` and
    `Patience(2)` by construction, `UP(2, strip_length=1)` after two rises,
    `GL` and `PQ` with thresholds halfway between their values there and
    before. A criterion that fires earlier or later on the other device ends
    that run earlier or shows no stop.
    """
    best = int(np.argmin(val))
    target = best + 2
    if target >= len(val) or not val[best] < val[best + 1] < val[target]:
        raise RuntimeError(
            f"The reference run did not overfit as planned: val_loss={val}"
        )
    gl = [criteria.generalization_loss(val[:t]) for t in range(1, target + 2)]
    strip = next(k for k in range(2, target + 2) if (target + 1) % k == 0)

    def pq(t: int) -> float:  # at strip end t (1-based)
        p_k = criteria.training_progress(train[:t], strip)
        return criteria.generalization_loss(val[:t]) / p_k if p_k else 0.0

    # GL and PQ are 0 at an improving epoch: the maxima are over the others.
    earlier = [pq(t) for t in range(strip, target + 1, strip)]
    return {
        "best_epoch": best,
        "target_epoch": target,
        "gl_alpha": (gl[target] + max(gl[:target])) / 2,
        "pq_alpha": (pq(target + 1) + max(earlier, default=0.0)) / 2,
        "pq_strip": strip,
    }


def stoppers(plan: dict[str, Any], log_dir: Path | None) -> dict[str, EarlyStopping]:
    """One EarlyStopping per rule, named; `GL` restores the best weights."""
    gl = GL(plan["gl_alpha"])
    up = UP(2, strip_length=1)
    return {
        "patience": EarlyStopping(patience=2),
        "Patience": EarlyStopping(criterion=Patience(2)),
        "GL": EarlyStopping(criterion=gl, restore_best_weights=True, log_dir=log_dir),
        "PQ": EarlyStopping(
            criterion=PQ(plan["pq_alpha"], strip_length=plan["pq_strip"])
        ),
        "UP": EarlyStopping(criterion=up),
        "GL&UP": EarlyStopping(criterion=gl & up),
    }


def decision(stopper: EarlyStopping) -> dict[str, Any]:
    reason = stopper.stopping_reason
    return {
        "stopped_epoch": int(stopper.stopped_epoch),
        "criterion": None if reason is None else reason.criterion,
        "best_epoch": int(stopper.best_epoch),
        "GL": [entry["GL"] for entry in stopper.criterion_history],
    }


def replay(stopper: EarlyStopping, history: dict[str, list[float]]) -> dict:
    """Feeds a run's epoch logs to `stopper` on a plain one-device model."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    stopper.set_model(model)
    model.stop_training = False
    stopper.on_train_begin()
    for epoch in range(len(history["loss"])):
        stopper.on_epoch_end(epoch, {key: v[epoch] for key, v in history.items()})
        if model.stop_training:
            break
    stopper.on_train_end()
    return decision(stopper)


def _timing(timer: CacheTimingCallback) -> dict[str, Any]:
    report = timer.report().to_dict()
    return {
        "epochs": [epoch.to_dict() for epoch in timer.epochs],
        "cached": report["cached"],
        "prefetched": report["prefetched"],
        "batch_size": report["batch_size"],
        "cache_partial": report["cache_partial"],
        "compile_time": timer.compile_time,
        "samples_per_second": timer.samples_per_second,
    }


def _monitors(
    devices: Devices, log_dir: Path, data: dict[str, Any], x: Any, y: Any
) -> tuple[CacheTimingCallback, GradientCheckCallback, Recorder, list[Any]]:
    """The callbacks both early-stopping runs carry besides the stoppers."""
    timer = CacheTimingCallback(
        verbose=0, log_dir=log_dir / "cache_timing", **data["timer"]
    )
    checker = GradientCheckCallback(
        x[:CHECK_SAMPLES],
        y[:CHECK_SAMPLES],
        every_n_epochs=CHECK_EVERY,
        seed=0,
        verbose=0,
        log_dir=log_dir / "gradient_check",
    )
    extra = []
    if devices.name == "tensorflow":  # Keras' own, through tf.summary
        extra.append(
            keras.callbacks.TensorBoard(
                log_dir=str(log_dir / "keras"), write_graph=False, profile_batch=0
            )
        )
    return timer, checker, Recorder(), extra


def _fit_report(
    devices: Devices,
    model: keras.Model,
    history: keras.callbacks.History,
    timer: CacheTimingCallback,
    checker: GradientCheckCallback,
    watch: Stopwatch,
) -> dict[str, Any]:
    clone = _clone._cache[model].model
    return {
        **watch.read(),
        "history": _history(history),
        "timing": _timing(timer),
        "gradient_check": {
            "steps": checker.steps,
            "relative_errors": [r.relative_error for r in checker.reports],
            "verdicts": [r.verdict for r in checker.reports],
            "clone_dtype": keras.backend.standardize_dtype(clone.weights[0].dtype),
            "clone_devices": devices.devices(clone.weights[0]),
            "model_devices": devices.devices(model.weights[0]),
        },
    }


def early_stopping(devices: Devices, log_root: Path) -> dict[str, Any]:
    """EarlyStopping (every rule), CacheTiming and GradientCheck in one `fit`.

    The reference trains `REFERENCE_EPOCHS` epochs on one device without
    stoppers; what each stopper decides on one device is what it decides when
    fed those epochs' logs. The distributed run carries the stoppers
    themselves, tuned to fire together (`plan_criteria`).
    """
    x, y, x_val, y_val = digits()
    validation = {
        "validation_data": (x_val, y_val),
        "validation_batch_size": VALIDATION_BATCH,
    }
    data = devices.training_data(x, y)
    common = {"shuffle": False, "verbose": 0, **validation, **data["fit"]}

    reference = _classifier()
    initial = reference.get_weights()
    timer, checker, recorder, extra = _monitors(
        devices, log_root / "reference", data, x, y
    )
    watch = Stopwatch()
    history = reference.fit(
        epochs=REFERENCE_EPOCHS, callbacks=[timer, checker, recorder, *extra], **common
    )
    one = _fit_report(devices, reference, history, timer, checker, watch)
    plan = plan_criteria(one["history"]["val_loss"], one["history"]["loss"])
    one["decisions"] = {
        name: replay(stopper, one["history"])
        for name, stopper in stoppers(plan, None).items()
    }

    log_dir = log_root / "distributed"
    with devices.building("distributed"):
        model = _classifier()
        model.set_weights(initial)
    named = stoppers(plan, log_dir / "early_stopping")
    timer, checker, recorder, extra = _monitors(devices, log_dir, data, x, y)
    watch = Stopwatch()
    with devices.training("distributed"):
        history = model.fit(
            epochs=REFERENCE_EPOCHS,
            callbacks=[*named.values(), timer, checker, recorder, *extra],
            **common,
        )
        restored_val_loss = float(
            model.evaluate(x_val, y_val, batch_size=VALIDATION_BATCH, verbose=0)
        )
    two = _fit_report(devices, model, history, timer, checker, watch)
    two["decisions"] = {name: decision(stopper) for name, stopper in named.items()}
    two["restored_val_loss"] = restored_val_loss
    two["restored"] = _replica_report(
        devices, model, recorder.weights[named["GL"].best_epoch]
    )
    return {
        "plan": plan,
        "reference": one,
        "distributed": two,
        # The distributed run's own logs, fed to fresh stoppers on one device.
        "replayed": {
            name: replay(stopper, two["history"])
            for name, stopper in stoppers(plan, None).items()
        },
    }


# Mixed precision ----------------------------------------------------------------


class Amplify(keras.layers.Layer):
    """Multiplies its input by `gain`, a non-trainable weight; 1e5 overflows float16."""

    def build(self, input_shape: Any) -> None:
        self.gain = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="gain"
        )

    def call(self, inputs: Any) -> Any:
        return inputs * keras.ops.cast(self.gain, inputs.dtype)


class PlantOverflow(keras.callbacks.Callback):
    """Sets `layer.gain` to `value` at the start of epoch `epoch`."""

    def __init__(self, layer: Amplify, epoch: int, value: float) -> None:
        super().__init__()
        self.layer, self.epoch, self.value = layer, epoch, value

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if epoch == self.epoch:
            self.layer.gain.assign(self.value)


def _amplified() -> tuple[keras.Model, Amplify]:
    amplify = Amplify()
    model = keras.Sequential(
        [
            keras.Input((16,)),
            _dense(32, 0, activation="relu"),
            amplify,
            _dense(32, 1, activation="relu"),
            _dense(8, 2),
            keras.layers.Activation("softmax", dtype="float32"),
        ]
    )
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(0.05), initial_scale=MP_INITIAL_SCALE
    )
    model.compile(optimizer, "sparse_categorical_crossentropy")
    return model, amplify


def mixed_precision(devices: Devices, log_root: Path) -> dict[str, Any]:
    """MixedPrecisionGuard: skipped steps, the loss scale, a rescued NaN epoch."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(MP_SAMPLES, 16)).astype("float32")
    y = rng.integers(0, 8, MP_SAMPLES).astype("int32")
    result: dict[str, Any] = {}
    initial = None
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        for run in RUNS:
            with devices.building(run):
                model, amplify = _amplified()
                if initial is None:
                    initial = model.get_weights()
                model.set_weights(initial)
            guard = MixedPrecisionGuard(
                batch_size=MP_BATCH, verbose=0, log_dir=log_root / run / "guard"
            )
            recorder = Recorder()
            overflow = PlantOverflow(amplify, MP_OVERFLOW_EPOCH, MP_GAIN)
            watch = Stopwatch()
            with devices.training(run):
                history = model.fit(
                    x,
                    y,
                    batch_size=MP_BATCH,
                    epochs=MP_EPOCHS,
                    shuffle=False,
                    verbose=0,
                    # The guard first, so the recorder sees what it restored.
                    callbacks=[guard, overflow, recorder],
                )
            report = guard.loss_scale_report
            optimizer = model.optimizer
            result[run] = {
                **watch.read(),
                "history": _history(history),
                "codes": [finding.code for finding in guard.findings],
                "runtime_findings": [
                    finding.message
                    for finding in guard.findings
                    if finding.code
                    in ("skipped-steps", "loss-scale-collapse", "nonfinite-loss")
                ],
                "nonfinite_epoch": guard.nonfinite_epoch,
                "restored_epoch": guard.restored_epoch,
                "stopped_epoch": guard.stopped_epoch,
                "checks": [
                    {
                        "step": check.step,
                        "steps_run": check.steps_run,
                        "skipped": check.skipped,
                        "scale": check.scale,
                    }
                    for check in report.checks
                ],
                "skipped_steps": report.skipped_steps,
                "recorded_scales": recorder.scales,
                "scale_replicas": [
                    float(v) for v in devices.replicas(optimizer.dynamic_scale)
                ],
                "iterations_replicas": [
                    int(v) for v in devices.replicas(optimizer.iterations)
                ],
                "restored": _replica_report(
                    devices, model, recorder.weights[MP_OVERFLOW_EPOCH - 1]
                ),
            }
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return result


# Pruning ------------------------------------------------------------------------


def pruning(devices: Devices, log_root: Path) -> dict[str, Any]:
    """UpdatePruningMasks: the masks, the step and the zeros on every replica."""
    rng = np.random.default_rng(0)
    x = rng.random((PRUNE_SAMPLES, 8)).astype("float32")
    y = rng.integers(0, 3, PRUNE_SAMPLES).astype("int32")
    result: dict[str, Any] = {}
    initial = None
    for run in RUNS:
        with devices.building(run):
            # One pruned layer: tracing each costs a second on TensorFlow.
            model = prune_low_magnitude(
                keras.Sequential(
                    [keras.Input((8,)), _dense(16, 0, name="hidden"), _dense(3, 1)]
                ),
                schedule=ConstantSparsity(SPARSITY, begin_step=0, frequency=2),
                layers=["hidden"],
            )
            model.compile("adam", "sparse_categorical_crossentropy")
            if initial is None:
                initial = model.get_weights()
            model.set_weights(initial)
        callback = UpdatePruningMasks()
        watch = Stopwatch()
        with devices.training(run):
            model.fit(
                x,
                y,
                batch_size=PRUNE_BATCH,
                epochs=PRUNE_EPOCHS,
                shuffle=False,
                verbose=0,
                callbacks=[callback],
            )
        times = watch.read()
        layers = []
        for wrapper in callback.wrappers:
            masks = devices.replicas(wrapper.pruning_mask)
            kernels = devices.replicas(wrapper.pruned_weight)
            steps = devices.replicas(wrapper.pruning_step)
            layers.append(
                {
                    "name": wrapper.name,
                    "devices": devices.devices(wrapper.pruning_mask),
                    "masks": [mask.tolist() for mask in masks],
                    "steps": [int(step) for step in steps],
                    "zeros_where_pruned": [
                        bool(np.all(kernel[mask == 0] == 0))
                        for kernel, mask in zip(kernels, masks, strict=True)
                    ],
                }
            )
        result[run] = {**times, "step": callback.step, "layers": layers}
    return result


SCENARIOS: dict[str, Callable[[Devices, Path], dict[str, Any]]] = {
    "early_stopping": early_stopping,
    "mixed_precision": mixed_precision,
    "pruning": pruning,
}


def run_all(devices: Devices, log_root: Path, only: list[str] | None = None) -> dict:
    """Runs the scenarios (all, or those named in `only`); returns their results."""
    results: dict[str, Any] = {}
    for name, scenario in SCENARIOS.items():
        if only and name not in only:
            continue
        results[name] = _timed(lambda s=scenario, n=name: s(devices, log_root / n))
    return results
