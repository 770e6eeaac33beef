"""A zoo of everyday models, the kind keras.io's examples build.

Every model keeps Keras' default initialisers (zero biases, Glorot kernels) and
ReLUs where users put them, and trains on data with exact zeros: scikit-learn's
digits (8×8 images, 49 % of pixels black), padded token ids, one-hot rows. That
puts ReLUs exactly on their kinks at initialisation, as in a user's first epoch.
Shapes are tiny, so the whole zoo runs in seconds on every backend.

`ZOO` maps a name to a builder; a builder returns a `ZooCase`: the model,
compiled, and a small batch `x`, `y` to train and check on. `PLANTED` maps the
name of some models to a builder of the same model with a wrong gradient in
one named layer (`tests.gradient_check.planted`'s layers). The next model a
user reports goes here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers

__all__ = ["PLANTED", "ZOO", "ZooCase", "digits_images"]

SAMPLES = 64


@dataclass
class ZooCase:
    """A compiled model and a batch of its data."""

    model: keras.Model
    x: Any
    y: Any
    #: the path prefix of the layer whose gradient is planted wrong, if any
    planted: str | None = None


def digits_images(samples: int = SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Digits as (n, 8, 8, 1) images in [0, 1] and labels: 49 % exact zeros."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x[:samples] / 16.0).reshape(-1, 8, 8, 1).astype("float32"), y[
        :samples
    ].astype("int32")


def _padded_ids(samples: int = SAMPLES, length: int = 10, vocab: int = 20) -> Any:
    """Token ids right-padded with 0, lengths 3 to `length`."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, vocab, size=(samples, length))
    lengths = rng.integers(3, length + 1, size=samples)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids.astype("int32")


def _classify(model: keras.Model, loss: str = "sparse_categorical_crossentropy"):
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def convnet(conv: Callable[..., Any] = layers.Conv2D) -> ZooCase:
    """keras.io's "Simple MNIST convnet", at digits' size."""
    x, y = digits_images()
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            conv(8, kernel_size=(2, 2), activation="relu", name="planted"),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    return ZooCase(_classify(model), x, y)


def conv_batchnorm() -> ZooCase:
    """Conv2D without bias, BatchNormalization, ReLU, global pooling."""
    x, y = digits_images()
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(8, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    return ZooCase(_classify(model), x, y)


def residual(conv: Callable[..., Any] = layers.Conv2D) -> ZooCase:
    """A functional residual block: Conv2D, ReLU, `Add`, ReLU."""
    x, y = digits_images()
    inputs = keras.Input((8, 8, 1))
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    shortcut = h
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = conv(8, 3, padding="same", name="planted")(h)
    h = layers.Activation("relu")(layers.Add()([h, shortcut]))
    h = layers.MaxPooling2D(2)(h)
    h = layers.Flatten()(h)
    outputs = layers.Dense(10, activation="softmax")(h)
    return ZooCase(_classify(keras.Model(inputs, outputs)), x, y)


def embedding_pooling() -> ZooCase:
    """Embedding on right-padded ids, global average pooling, a ReLU layer."""
    ids = _padded_ids()
    y = (ids[:, 0] % 2).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((ids.shape[1],), dtype="int32"),
            layers.Embedding(20, 8),
            layers.GlobalAveragePooling1D(),
            layers.Dense(8, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    return ZooCase(_classify(model, "binary_crossentropy"), ids, y)


def recurrent() -> ZooCase:
    """Embedding with `mask_zero=True`, LSTM, GRU on padded ids."""
    ids = _padded_ids(length=6)
    y = (ids[:, 0] % 3).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((ids.shape[1],), dtype="int32"),
            layers.Embedding(20, 6, mask_zero=True),
            layers.LSTM(6, return_sequences=True),
            layers.GRU(6),
            layers.Dense(3, activation="softmax"),
        ]
    )
    return ZooCase(_classify(model), ids, y)


def attention() -> ZooCase:
    """A transformer block: attention, `Add`, LayerNormalization, ReLU feed-forward."""
    ids = _padded_ids(length=6)
    y = (ids[:, 1] % 2).astype("int32")
    inputs = keras.Input((ids.shape[1],), dtype="int32")
    h = layers.Embedding(20, 8)(inputs)
    a = layers.MultiHeadAttention(num_heads=2, key_dim=4)(h, h)
    h = layers.LayerNormalization()(layers.Add()([h, a]))
    f = layers.Dense(16, activation="relu")(h)
    f = layers.Dense(8)(f)
    h = layers.LayerNormalization()(layers.Add()([h, f]))
    h = layers.GlobalAveragePooling1D()(h)
    outputs = layers.Dense(2, activation="softmax")(h)
    return ZooCase(_classify(keras.Model(inputs, outputs)), ids, y)


def multi_input_output() -> ZooCase:
    """An image and a one-hot row in; a class and a regression target out."""
    images, labels = digits_images()
    one_hot = np.eye(4, dtype="float32")[labels % 4]
    image_in = keras.Input((8, 8, 1), name="image")
    tag_in = keras.Input((4,), name="tag")
    h = layers.Conv2D(4, 3, activation="relu")(image_in)
    h = layers.Flatten()(h)
    h = layers.Concatenate()([h, layers.Dense(4, activation="relu")(tag_in)])
    h = layers.Dense(16, activation="relu")(h)
    digit = layers.Dense(10, activation="softmax", name="digit")(h)
    ink = layers.Dense(1, name="ink")(h)
    model = keras.Model(
        {"image": image_in, "tag": tag_in}, {"digit": digit, "ink": ink}
    )
    model.compile(
        optimizer="adam",
        loss={"digit": "sparse_categorical_crossentropy", "ink": "mse"},
        loss_weights={"digit": 1.0, "ink": 0.5},
    )
    x = {"image": images, "tag": one_hot}
    y = {"digit": labels, "ink": images.mean(axis=(1, 2, 3))[:, None]}
    return ZooCase(model, x, y)


def separable() -> ZooCase:
    """DepthwiseConv2D and SeparableConv2D with ReLU, as MobileNet-style nets have."""
    x, y = digits_images()
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            layers.SeparableConv2D(8, 3, activation="relu"),
            layers.GlobalMaxPooling2D(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    return ZooCase(_classify(model), x, y)


def one_hot_mlp(dense: Callable[..., Any] = layers.Dense) -> ZooCase:
    """One-hot categorical features through two ReLU layers."""
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 6, size=(SAMPLES, 3))
    x = np.concatenate([np.eye(6, dtype="float32")[codes[:, i]] for i in range(3)], 1)
    y = ((codes[:, 0] + codes[:, 1]) % 2).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((18,)),
            layers.Dense(16, activation="relu"),
            dense(8, activation="relu", name="planted"),
            layers.Dense(2, activation="softmax"),
        ]
    )
    return ZooCase(_classify(model), x, y)


@keras.saving.register_keras_serializable(package="keras_bettermodels_zoo")
class ActivityPenalty(layers.Layer):
    """Adds an L2 penalty on its inputs with `add_loss`, as keras.io's guide does."""

    def __init__(self, rate: float = 1e-2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs: Any) -> Any:
        self.add_loss(self.rate * keras.ops.mean(keras.ops.square(inputs)))
        return inputs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}


def with_add_loss(dense: Callable[..., Any] = layers.Dense) -> ZooCase:
    """A ReLU MLP on flattened digits with an `add_loss` activity penalty."""
    images, labels = digits_images()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            dense(16, activation="relu", name="planted"),
            ActivityPenalty(1e-2),
            layers.Dense(10, activation="softmax"),
        ]
    )
    return ZooCase(_classify(model), images.reshape(-1, 64), labels)


def conv1d_text() -> ZooCase:
    """Conv1D and global max pooling over embedded padded ids (keras.io's text CNN)."""
    ids = _padded_ids(length=12)
    y = (ids[:, 2] % 2).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((ids.shape[1],), dtype="int32"),
            layers.Embedding(20, 8),
            layers.Conv1D(8, 3, activation="relu"),
            layers.GlobalMaxPooling1D(),
            layers.Dense(8, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    return ZooCase(_classify(model, "binary_crossentropy"), ids, y)


ZOO: dict[str, Callable[[], ZooCase]] = {
    "convnet": convnet,
    "conv_batchnorm": conv_batchnorm,
    "residual": residual,
    "embedding_pooling": embedding_pooling,
    "recurrent": recurrent,
    "attention": attention,
    "multi_input_output": multi_input_output,
    "separable": separable,
    "one_hot_mlp": one_hot_mlp,
    "with_add_loss": with_add_loss,
    "conv1d_text": conv1d_text,
}


def _planted(
    build: Callable[..., ZooCase], layer: Callable[..., Any]
) -> Callable[[], ZooCase]:
    def planted() -> ZooCase:
        case = build(layer)
        case.planted = "planted"
        return case

    return planted


def _planted_layers() -> dict[str, Callable[[], ZooCase]]:
    from tests.gradient_check import planted

    return {
        "convnet": _planted(convnet, planted.ScaledKernelConv2D),
        "residual": _planted(residual, planted.ScaledKernelConv2D),
        "one_hot_mlp": _planted(one_hot_mlp, planted.WrongSignBiasDense),
        "with_add_loss": _planted(with_add_loss, planted.DetachedPenaltyDense),
    }


#: Models of the zoo with a wrong gradient planted in the layer named "planted".
PLANTED: dict[str, Callable[[], ZooCase]] = _planted_layers()
