"""Small correct models that, together, use more than 15 built-in layer types.

Each builder returns `(model, x, y, sample_weight)` with the model compiled.
Activations are smooth (tanh, gelu, softplus) where a ReLU would put kinks in
the way; max pooling is kept (random inputs have no ties). Recurrent layers use
Glorot initializers: the orthogonal default costs a QR compilation on JAX, and
the check does not care how the weights were drawn.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, regularizers

SEED = 7


def image_model():
    """Conv2D, BatchNormalization, pooling, Dropout, L1 / L2 regularizers."""
    rng = np.random.default_rng(SEED)
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


def sequence_model():
    """Token ids: Embedding, LSTM, GRU, LayerNormalization, MultiHeadAttention."""
    rng = np.random.default_rng(SEED)
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


def two_input_two_output_model():
    """Conv1D, SimpleRNN, Concatenate, Add, two losses, sample weights."""
    rng = np.random.default_rng(SEED)
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


BUILDERS = {
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
