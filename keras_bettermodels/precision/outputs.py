"""`float32_outputs`: the same model, with its outputs and softmax in float32."""

from __future__ import annotations

from typing import Any

from keras_bettermodels import _validation
from keras_bettermodels.precision.audit import is_softmax, output_heads

__all__ = ["float32_outputs"]

_LOW_PRECISION = ("float16", "bfloat16")


def _head_layers_to_convert(model: Any) -> set[str]:
    """Names of the head layers that have to compute in float32.

    An output that is float16 / bfloat16: every low-precision layer of its
    head (the softmax sits in one of them). A float32 output whose softmax
    computes in low precision: the layers from the output back to the softmax.
    """
    names: set[str] = set()
    for head in output_heads(model):
        layers = list(head.layers)  # the output layer first
        if head.dtype not in _LOW_PRECISION:
            softmax = next(
                (i for i, layer in enumerate(layers) if is_softmax(layer)), None
            )
            if softmax is None or str(layers[softmax].compute_dtype) not in (
                _LOW_PRECISION
            ):
                continue
            layers = layers[: softmax + 1]
        names.update(
            layer.name for layer in layers if str(layer.compute_dtype) in _LOW_PRECISION
        )
    return names


def float32_outputs(model: Any) -> Any:
    """Returns the model with its outputs, and their softmax, computed in float32.

    Mixed precision computes every layer in float16 (or bfloat16) unless told
    otherwise; the outputs and a final softmax should stay float32. This
    rebuilds the model with `dtype="float32"` on each output's head (the layers
    from the last `Dense` / convolution to the output: a `Dense(10,
    activation="softmax")`, or a `Dense(10)` and its `Activation("softmax")`),
    keeps every other layer as it is, and copies all weights over. A model
    whose outputs are already float32 is returned unchanged (the same object).

    The new model is compiled again from `model.get_compile_config()` when
    `model` was compiled (a fresh optimizer state; under `mixed_float16`,
    Keras wraps the optimizer in a `LossScaleOptimizer` as usual).

    Args:
        model: a built Functional or Sequential `keras.Model`.

    Returns:
        `model` itself when its outputs are float32, else a new model of the
        same class with the same weights and float32 outputs.

    Raises:
        TypeError: if `model` is not a `keras.Model`.
        ValueError: if `model` is not built, or is a subclassed model (which
            Keras cannot rebuild layer by layer: pass `dtype="float32"` to its
            output layer in its code instead).

    Example:

    ```python
    keras.config.set_dtype_policy("mixed_float16")
    model = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(4096, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),  # float16 softmax
    ])
    model = float32_outputs(model)  # the last Dense now computes in float32
    ```
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid_type("model", "a keras.Model", model))
    if not model.built:
        raise ValueError(
            _validation.invalid_value(
                "model",
                "a built model",
                model,
                "Build it first: give it a `keras.Input` or call "
                "`model.build(input_shape)`.",
            )
        )
    from keras_bettermodels._compat.precision import functional_model_class

    if not isinstance(model, keras.Sequential | functional_model_class()):
        raise ValueError(
            _validation.invalid_value(
                "model",
                "a Functional or Sequential model",
                model,
                "A subclassed model cannot be rebuilt layer by layer: pass "
                '`dtype="float32"` to its output layer, or end it with '
                '`keras.layers.Activation("softmax", dtype="float32")`.',
            )
        )
    names = _head_layers_to_convert(model)
    if not names:
        return model

    def clone_layer(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name in names:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    compile_config = model.get_compile_config() if model.compiled else None
    if compile_config:
        clone.compile_from_config(compile_config)
    return clone
