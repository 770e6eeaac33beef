"""The package's callbacks on two devices, with nothing home-made in between.

On TensorFlow the model trains under `tf.distribute.MirroredStrategy`, on JAX
under `keras.distribution.DataParallel`: the ordinary Keras ways to train on
several GPUs. With no GPUs at hand, the script splits the CPU in two — two
logical CPUs for TensorFlow, two XLA host devices for JAX — which must be done
before the framework starts, so it comes first. On a machine with accelerators,
leave that part out: the strategy and the distribution find them.

The callbacks go to `fit` as on one device: `EarlyStopping` with Prechelt's
criteria restores the best weights on every replica, `CacheTimingCallback`
times the distributed steps, `GradientCheckCallback` checks a float64 copy of
the model on one device, outside the strategy.

Keras 3 has no distribution API for PyTorch (`keras.distribution` is
TensorFlow's and JAX's): there the script trains on one device.

Run it from the repository root:

    KERAS_BACKEND=tensorflow python examples/scaling_out.py
    KERAS_BACKEND=jax python examples/scaling_out.py

`KBM_QUICK=1` trains on 256 samples for 6 epochs (the tests use it).
"""

import contextlib
import os

DEVICES = 2
BACKEND = os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Two devices out of one CPU, before the framework starts.
if BACKEND == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * DEVICES
    )
elif BACKEND == "jax":
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={DEVICES}"
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from keras_bettermodels.callbacks.cache_timing import CacheTimingCallback  # noqa: E402
from keras_bettermodels.callbacks.early_stopping import EarlyStopping  # noqa: E402
from keras_bettermodels.callbacks.gradient_check import (  # noqa: E402
    GradientCheckCallback,
)
from keras_bettermodels.criteria import GL, UP  # noqa: E402

QUICK = os.environ.get("KBM_QUICK") == "1"
EPOCHS = 6 if QUICK else 30
TRAIN = 256 if QUICK else 1024  # samples: multiples of the device count
BATCH_SIZE = 64  # the global batch: 32 samples on each device

if BACKEND == "tensorflow":
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(DEVICES)])
    building = strategy.scope  # build and compile here; `fit` needs no scope
    training = contextlib.nullcontext
    replicas = strategy.num_replicas_in_sync
elif BACKEND == "jax":
    import jax

    distribution = keras.distribution.DataParallel(devices=jax.devices())
    building = training = distribution.scope  # or set_distribution(...) once
    replicas = len(jax.devices())
else:
    building = training = contextlib.nullcontext
    replicas = 1


def copies(variable):
    """A variable's value on every device that holds it."""
    value = variable.value
    if BACKEND == "tensorflow" and isinstance(value, tf.distribute.DistributedValues):
        return [v.numpy() for v in value.values]
    if BACKEND == "jax":
        return [np.asarray(shard.data) for shard in value.addressable_shards]
    return [keras.ops.convert_to_numpy(value)]


class KeepWeights(keras.callbacks.Callback):
    """Keeps the weights of every epoch, to check what was restored."""

    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


# Digits, with half the training labels scrambled: the model soon overfits.
x, y = load_digits(return_X_y=True)
x, y = (x / 16.0).astype("float32"), y.astype("int32")
rng = np.random.default_rng(0)
x_train, y_train = x[:TRAIN], y[:TRAIN].copy()
noisy = rng.random(len(y_train)) < 0.5
y_train[noisy] = rng.integers(0, 10, int(noisy.sum()))
x_val, y_val = x[1280:1536], y[1280:1536]

with building():
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

stopper = EarlyStopping(
    criterion=GL(5) | UP(2, strip_length=1), restore_best_weights=True
)
timer = CacheTimingCallback(batch_size=BATCH_SIZE, verbose=0)
checker = GradientCheckCallback(x_train[:32], y_train[:32], seed=0, verbose=0)
kept = KeepWeights()
with training():
    model.fit(
        x_train,
        y_train,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        validation_data=(x_val, y_val),
        callbacks=[stopper, timer, checker, kept],
        verbose=0,
    )

print(f"Backend {BACKEND}: trained on {replicas} device(s).")
print(
    "EarlyStopping:",
    stopper.stopping_reason or f"no rule fired in {EPOCHS} epochs.",
)
best = kept.weights[stopper.best_epoch]
on_every_replica = all(
    all(np.array_equal(copy, expected) for copy in copies(variable))
    for variable, expected in zip(model.weights, best, strict=True)
)
print(
    f"restored the best epoch's weights on every replica: {on_every_replica} "
    f"(epoch {stopper.best_epoch + 1}, on {len(copies(model.weights[0]))} "
    "device(s))"
)
report = checker.reports[0]
print(
    f"Gradient check on a float64 copy, on one device: relative error "
    f"{report.relative_error:.1e} ({report.verdict})"
)
timing = timer.report()
print(
    f"CacheTimingCallback timed {sum(e.steps for e in timing.epochs)} global "
    f"steps of {BATCH_SIZE} samples in {len(timing.epochs)} epochs."
)
