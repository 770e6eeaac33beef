"""Models and callbacks the precision and guard tests share."""

from __future__ import annotations

import keras
import numpy as np


def article_model(
    hidden: int = 4096, *, float32_softmax: bool = True, compile: bool = True
) -> keras.Model:
    """The seed article's example: 784 inputs, two Dense(hidden), 10 classes.

    With `float32_softmax` the softmax is `Activation("softmax",
    dtype="float32")` as in the article; without it, the last Dense computes
    the softmax under the global policy.
    """
    inputs = keras.Input(shape=(784,))
    x = keras.layers.Dense(hidden, activation="relu")(inputs)
    x = keras.layers.Dense(hidden, activation="relu")(x)
    if float32_softmax:
        x = keras.layers.Dense(10)(x)
        outputs = keras.layers.Activation("softmax", dtype="float32")(x)
    else:
        outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    if compile:
        model.compile(
            optimizer="adam",
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model


class Amplify(keras.layers.Layer):
    """Multiplies its input by `gain`, a non-trainable weight tests can set.

    `gain` = 1 passes activations through; 1e5 pushes float16 activations past
    65504 (to infinity); NaN poisons float32 ones too.
    """

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.gain = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="gain"
        )

    def call(self, inputs: object) -> object:
        return inputs * keras.ops.cast(self.gain, inputs.dtype)


def amplified_model(
    *, auto_scale_loss: bool, optimizer: object = None
) -> tuple[keras.Model, Amplify]:
    """A small classifier with an `Amplify` layer in the middle."""
    amplify = Amplify()
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, activation="relu"),
            amplify,
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(4),
            keras.layers.Activation("softmax", dtype="float32"),
        ]
    )
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        auto_scale_loss=auto_scale_loss,
    )
    return model, amplify


class Overflow(keras.callbacks.Callback):
    """Sets `layer.gain` to `value` at the start of epoch `epoch` (0-based).

    Also keeps a copy of the weights at every epoch end, to compare with.
    """

    def __init__(self, layer: Amplify, epoch: int, value: float) -> None:
        super().__init__()
        self.layer, self.epoch, self.value = layer, epoch, value
        self.weights_at: dict[int, list[np.ndarray]] = {}

    def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
        if epoch == self.epoch:
            self.layer.gain.assign(self.value)

    def on_epoch_end(self, epoch: int, logs: object = None) -> None:
        self.weights_at[epoch] = [w.copy() for w in self.model.get_weights()]


class NanToZero(keras.layers.Layer):
    """Maps NaN activations to 0, as TensorFlow's `relu` does on AVX-512 CPUs.

    Behind it, NaN weights no longer reach the loss: the loss stays finite on
    every backend and every machine while the weights are NaN.
    """

    def call(self, inputs: object) -> object:
        return keras.ops.where(
            keras.ops.isnan(inputs), keras.ops.zeros_like(inputs), inputs
        )


def nan_hiding_model(optimizer: object = None) -> keras.Model:
    """Dense `first` -> BatchNormalization `norm` -> `NanToZero` -> classifier."""
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, name="first"),
            keras.layers.BatchNormalization(name="norm"),
            NanToZero(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(4),
            keras.layers.Activation("softmax", dtype="float32"),
        ],
        name="sequential",
    )
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
    )
    return model


class PlantNaN(keras.callbacks.Callback):
    """Writes NaN into the first entry of the variable at `path`, at the start
    of epoch `epoch` (0-based); keeps a copy of the weights at every epoch end.
    """

    def __init__(self, path: str, epoch: int, value: float = float("nan")) -> None:
        super().__init__()
        self.path, self.epoch, self.value = path, epoch, value
        self.weights_at: dict[int, list[np.ndarray]] = {}

    def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
        if epoch != self.epoch:
            return
        (variable,) = [v for v in self.model.weights if v.path == self.path]
        array = keras.ops.convert_to_numpy(variable).copy()
        array.reshape(-1)[0] = self.value
        variable.assign(array)

    def on_epoch_end(self, epoch: int, logs: object = None) -> None:
        self.weights_at[epoch] = [w.copy() for w in self.model.get_weights()]


def data(samples: int = 256, features: int = 16, classes: int = 4, seed: int = 0):
    """Random inputs and labels: enough to train on for a few steps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)).astype("float32")
    y = rng.integers(0, classes, samples).astype("int32")
    return x, y


def has_nan(weights: list[np.ndarray]) -> bool:
    return any(np.isnan(w).any() for w in weights)


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x, y) for x, y in zip(a, b, strict=True)
    )
