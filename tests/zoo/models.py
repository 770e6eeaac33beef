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

`SMOOTH` is the other kind: small correct models that, together, use more
than 15 built-in layer types, so that a gradient check's false alarms show.
Each builder returns `(model, x, y, sample_weight)` with the model compiled.
Activations are smooth (tanh, gelu, softplus) where a ReLU would put kinks in
the way; max pooling is kept (random inputs have no ties). Recurrent layers
use Glorot initializers: the orthogonal default costs a QR compilation on JAX,
and the check does not care how the weights were drawn. `layer_types` names
the built-in layer types (and regularizers) of a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers, regularizers

__all__ = ["PLANTED", "SMOOTH", "ZOO", "ZooCase", "digits_images", "layer_types"]

SAMPLES = 64
#: The seed of the `SMOOTH` models' data.
SMOOTH_SEED = 7


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


# -- smooth models over many layer types (`SMOOTH`) --------------------------


def image_model() -> tuple[keras.Model, Any, Any, Any]:
    """Conv2D, BatchNormalization, pooling, Dropout, L1 / L2 regularizers."""
    rng = np.random.default_rng(SMOOTH_SEED)
    inputs = keras.Input((6, 6, 2))
    h = layers.Conv2D(3, 3, padding="same", kernel_regularizer=regularizers.L2(1e-2))(
        inputs
    )
    h = layers.BatchNormalization()(h)
    h = layers.Activation("tanh")(h)
    h = layers.MaxPooling2D(2)(h)
    h = layers.DepthwiseConv2D(2, padding="same", activation="softplus")(h)
    h = layers.AveragePooling2D(3)(h)
    h = layers.Flatten()(h)
    h = layers.Dropout(0.3, seed=1)(h)
    outputs = layers.Dense(
        4, activation="softmax", kernel_regularizer=regularizers.L1(1e-2)
    )(h)
    model = keras.Model(inputs, outputs)
    model.compile(loss="sparse_categorical_crossentropy")
    x = rng.normal(size=(8, 6, 6, 2)).astype("float32")
    y = rng.integers(0, 4, size=(8,))
    return model, x, y, None


def sequence_model() -> tuple[keras.Model, Any, Any, Any]:
    """Token ids: Embedding, LSTM, GRU, LayerNormalization, MultiHeadAttention."""
    rng = np.random.default_rng(SMOOTH_SEED)
    tokens = keras.Input((5,), dtype="int32")
    h = layers.Embedding(12, 6)(tokens)
    h = layers.LSTM(6, return_sequences=True, recurrent_initializer="glorot_uniform")(h)
    h = layers.GRU(6, return_sequences=True, recurrent_initializer="glorot_uniform")(h)
    h = layers.LayerNormalization()(h)
    h = layers.MultiHeadAttention(num_heads=2, key_dim=3)(h, h)
    h = layers.GlobalAveragePooling1D()(h)
    outputs = layers.Dense(1, activation="sigmoid")(h)
    model = keras.Model(tokens, outputs)
    model.compile(loss="binary_crossentropy")
    x = rng.integers(0, 12, size=(6, 5)).astype("int32")
    y = rng.integers(0, 2, size=(6, 1)).astype("float32")
    return model, x, y, None


def two_input_two_output_model() -> tuple[keras.Model, Any, Any, Any]:
    """Conv1D, SimpleRNN, Concatenate, Add, two losses, sample weights."""
    rng = np.random.default_rng(SMOOTH_SEED)
    series = keras.Input((8, 2), name="series")
    features = keras.Input((3,), name="features")
    h = layers.Conv1D(4, 3, activation="gelu")(series)
    h = layers.AveragePooling1D(2)(h)
    h = layers.SimpleRNN(4, recurrent_initializer="glorot_uniform")(h)
    g = layers.Dense(4, activation="tanh")(features)
    joined = layers.Concatenate()([h, layers.Add()([h, g])])
    value = layers.Dense(1, name="value")(joined)
    label = layers.Dense(3, activation="softmax", name="label")(joined)
    model = keras.Model([series, features], {"value": value, "label": label})
    model.compile(
        loss={"value": "mse", "label": "sparse_categorical_crossentropy"},
        loss_weights={"value": 0.5, "label": 1.0},
    )
    x = [
        rng.normal(size=(6, 8, 2)).astype("float32"),
        rng.normal(size=(6, 3)).astype("float32"),
    ]
    y = {
        "value": rng.normal(size=(6, 1)).astype("float32"),
        "label": rng.integers(0, 3, size=(6,)),
    }
    sample_weight = rng.uniform(0.5, 2.0, size=(6,)).astype("float32")
    return model, x, y, sample_weight


#: Smooth correct models over 15+ built-in layer types: builder -> (model, x, y,
#: sample_weight), the model compiled.
SMOOTH: dict[str, Callable[[], tuple[Any, ...]]] = {
    "image": image_model,
    "sequence": sequence_model,
    "two_inputs_two_outputs": two_input_two_output_model,
}


def layer_types(model: keras.Model) -> set[str]:
    """The built-in layer classes of a model's layers, plus its regularizers.

    Only the model's own layers count, not those inside them (the cells of an
    LSTM, the projections of an attention layer).
    """
    names = {
        type(layer).__name__
        for layer in model.layers
        if type(layer).__module__.startswith("keras.")
        and not isinstance(layer, keras.layers.InputLayer)
    }
    for layer in model._flatten_layers(include_self=False):
        for attribute in ("kernel_regularizer", "bias_regularizer"):
            regularizer = getattr(layer, attribute, None)
            if regularizer is not None:
                names.add(type(regularizer).__name__)
    return names
