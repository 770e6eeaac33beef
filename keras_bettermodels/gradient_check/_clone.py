"""The float64 copy of a model that a gradient check differentiates.

A float32 check is no check: rounding alone gives relative errors up to 1e-2 on
a correct gradient. Keras layers, loss objects and the compiled-loss wrapper all
carry their own dtype, fixed when they are created, so the copy is rebuilt from
the model's config with every float dtype in it turned into float64, under
`keras.config.set_floatx("float64")` and a float64 global dtype policy (and,
on JAX, with 64-bit types enabled), then compiled there with the same loss.
The user's model, its weights and its optimizer are only read.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import types
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_bettermodels._compat import gradient_check as _compat
from keras_bettermodels._compat.layers import flatten_layers
from keras_bettermodels.gradient_check import _inputs

_log = logging.getLogger(__name__)

__all__ = [
    "Float64Clone",
    "ModelNotRebuildableError",
    "float64_scope",
    "get_clone",
]

_FLOAT_NAMES = {"float16", "bfloat16", "float32", "float64"}
_POLICY_CLASSES = {"DTypePolicy", "FloatDTypePolicy"}
# What a layer may hold that its config names by class or function name.
_COMPONENT_TYPES = (
    types.FunctionType,
    keras.regularizers.Regularizer,
    keras.initializers.Initializer,
    keras.constraints.Constraint,
)


class ModelNotRebuildableError(ValueError):
    """The model cannot be rebuilt in float64 from its config."""


@contextlib.contextmanager
def float64_scope() -> Iterator[None]:
    """Makes float64 Keras' default float type for the duration of the block.

    Sets `keras.config.floatx()` and the global dtype policy to float64, on
    the JAX backend enables 64-bit types, and steps out of the global
    `keras.distribution` (`DataParallel`, `ModelParallel`), so that the copy
    is made on one device rather than laid out over all of them; restores all
    four afterwards, also when the block raises.
    """
    previous_floatx = keras.config.floatx()
    # The raw attribute: `keras.config.dtype_policy()` would cache a float32
    # policy where none was set.
    previous_policy = _compat.raw_dtype_policy()
    previous_distribution = keras.distribution.distribution()
    with contextlib.ExitStack() as stack:
        try:
            # Outside the distribution, as a TensorFlow callback runs outside
            # the strategy's scope: a float64 copy on every device would cost
            # each of them twice the model's float32 size, for no gain.
            keras.distribution.set_distribution(None)
            keras.config.set_floatx("float64")
            keras.config.set_dtype_policy("float64")
            stack.enter_context(_compat.float64_promotion())
            if keras.backend.backend() == "jax":
                import jax

                stack.enter_context(jax.enable_x64(True))
            yield
        finally:
            keras.distribution.set_distribution(previous_distribution)
            _compat.set_raw_dtype_policy(previous_policy)
            keras.config.set_floatx(previous_floatx)


def _float64_config(config: Any) -> Any:
    """Returns a copy of a serialized config with every float dtype float64.

    Dtype policies (`{"class_name": "DTypePolicy", ...}`, mixed ones included)
    become float64, and so do float `"dtype"` entries (input layers, symbolic
    tensors); integer dtypes (token ids) stay as they are. Keras' weight
    initializers become `"zeros"`: the copy's weights are overwritten.
    """
    if isinstance(config, dict):
        if config.get("class_name") in _POLICY_CLASSES and isinstance(
            config.get("config"), dict
        ):
            return {**config, "config": {**config["config"], "name": "float64"}}
        converted = {}
        for key, value in config.items():
            if key.endswith("_initializer") and _is_keras_initializer(value):
                # The weights are copied from the model: random initial
                # values would only cost time (on JAX, a compilation each).
                converted[key] = "zeros"
            elif key == "dtype" and _is_float_name(value):
                converted[key] = "float64"
            else:
                converted[key] = _float64_config(value)
        return converted
    if isinstance(config, list | tuple):
        return type(config)(_float64_config(value) for value in config)
    return config


def _is_float_name(value: Any) -> bool:
    return isinstance(value, str) and (
        value in _FLOAT_NAMES or value.startswith("mixed_")
    )


def _is_keras_initializer(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return (
        isinstance(value, dict)
        and str(value.get("module") or "").startswith("keras")
        and "initializers" in str(value.get("module"))
    )


def _custom_objects(model: keras.Model) -> dict[str, Any]:
    """The classes and functions the model is made of, by every name they go by.

    Lets an unregistered custom layer, regularizer or activation be rebuilt:
    the model object itself tells which class each name stands for.
    """
    objects: dict[str, Any] = {}

    def add(obj: Any) -> None:
        target = obj if isinstance(obj, type | types.FunctionType) else type(obj)
        name = getattr(target, "__name__", None)
        module = getattr(target, "__module__", "") or ""
        if name is None or module.startswith("keras."):
            return
        objects.setdefault(name, target)
        registered = keras.saving.get_registered_name(target)
        objects.setdefault(registered, target)

    for layer in flatten_layers(model):
        add(layer)
        for value in vars(layer).values():
            if isinstance(value, _COMPONENT_TYPES):
                add(value)
    return objects


def _not_rebuildable(model: keras.Model, reason: str) -> ModelNotRebuildableError:
    name = type(model).__name__
    return ModelNotRebuildableError(
        f"check_gradients rebuilds the model in float64 from its config, and "
        f"`{name}` could not be rebuilt the same: {reason}. Add a "
        f"`get_config()` method to `{name}` (and to its custom layers) that "
        "returns every argument of `__init__`, so that "
        f"`{name}.from_config(model.get_config())` builds the same model "
        "(and a `from_config()` classmethod if an argument is itself a Keras "
        "object). See https://keras.io/guides/serialization_and_saving/."
    )


def _seed_generators(model: keras.Model) -> list[Any]:
    generators: list[Any] = []
    for layer in flatten_layers(model):
        generators.extend(_compat.seed_generators(layer))
    return generators


def _explicit_attention(clone: keras.Model) -> None:
    """Routes the copy's attention layers around JAX's fused attention kernel.

    `jax.nn.dot_product_attention` computes its softmax in float32 whatever
    the input dtype. Keras' attention layers call it unless attention dropout
    is on; a dropout rate of the smallest positive float selects their
    explicit einsum-and-softmax path (float64 throughout), while their dropout
    layer, built with rate 0, still passes everything through unchanged.
    """
    tiny = float(np.finfo(np.float64).tiny)
    for layer in flatten_layers(clone, include_self=False):
        _compat.set_attention_dropout(layer, tiny)


def _float64_loss(loss: Any) -> Any:
    """The loss spec with each `Loss` object copied to compute in float64."""

    def convert(item: Any) -> Any:
        if isinstance(item, keras.losses.Loss):
            item = copy.copy(item)
            _compat.set_loss_dtype(item, "float64")
        return item

    if isinstance(loss, dict):
        return {key: convert(value) for key, value in loss.items()}
    if isinstance(loss, list | tuple):
        return type(loss)(convert(value) for value in loss)
    return convert(loss)


@dataclass
class Float64Clone:
    """A float64 copy of a model, compiled with the loss the check uses.

    Attributes:
        model: the copy.
        trainable: indices, in `model.weights`, of the trainable variables.
        generators: the copy's seed generators (Dropout and other random
            layers), in the order of the original's.
        loss: the loss spec the copy was compiled with (identity is compared).
        compile_config: the original's compile config object when cloned.
        signature: the original's variables (shapes, dtypes, trainable) when
            cloned; a change rebuilds the copy.
        functions: the backend's compiled loss functions per `training`
            flag, made on first use.
    """

    model: keras.Model
    trainable: list[int]
    generators: list[Any]
    loss: Any
    compile_config: Any
    signature: tuple[Any, ...]
    functions: Any = None


# The float64 copy is kept (weakly) with each model, so that a check repeated
# during training (GradientCheckCallback) neither rebuilds nor retraces it.
_cache: weakref.WeakKeyDictionary[keras.Model, Float64Clone] = (
    weakref.WeakKeyDictionary()
)


def _signature(model: keras.Model) -> tuple[Any, ...]:
    """What the copy depends on: the variables, what is trainable, the dtypes."""
    trainable_ids = {id(v) for v in model.trainable_variables}
    return tuple(
        (tuple(v.shape), str(v.dtype), id(v) in trainable_ids) for v in model.weights
    )


def _trainable_indices(model: keras.Model) -> list[int]:
    index = {id(v): i for i, v in enumerate(model.weights)}
    return [index[id(v)] for v in model.trainable_variables if id(v) in index]


def _build_clone(model: keras.Model, x: Any) -> keras.Model:
    try:
        config = keras.saving.serialize_keras_object(model)
    except Exception as error:  # any failure means "no config"
        raise _not_rebuildable(
            model, f"its config could not be made ({type(error).__name__}: {error})"
        ) from error
    config = _float64_config(config)
    # Built below on the data, compiled by the caller with a float64 loss.
    config.pop("compile_config", None)
    config.pop("build_config", None)
    try:
        clone = keras.saving.deserialize_keras_object(
            config, custom_objects=_custom_objects(model), safe_mode=False
        )
    except Exception as error:
        raise _not_rebuildable(
            model,
            f"`from_config` failed ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''})",
        ) from error
    if not isinstance(clone, keras.Model):
        raise _not_rebuildable(model, f"it was rebuilt as a {type(clone).__name__}")
    if not clone.built:
        # A subclassed model is built by calling it, as Keras does.
        try:
            (
                clone(x, training=False)
                if _compat.call_has_training_arg(clone)
                else clone(x)
            )
        except Exception as error:
            raise _inputs.not_accepted(x, error) from error
    return clone


def _match(model: keras.Model, clone: keras.Model) -> None:
    """Makes the copy's variables match the original's, or says why they can't."""
    # Layers frozen after construction: copy the flags.
    ours = list(flatten_layers(model))
    theirs = list(flatten_layers(clone))
    if len(ours) == len(theirs):
        for original, copied in zip(ours, theirs, strict=True):
            if (
                type(original) is type(copied)
                and copied.trainable != original.trainable
            ):
                copied.trainable = original.trainable
    originals, copies = model.weights, clone.weights
    if [tuple(v.shape) for v in originals] != [tuple(v.shape) for v in copies]:
        raise _not_rebuildable(
            model,
            f"the rebuilt model has variables of shapes "
            f"{[tuple(v.shape) for v in copies]}, the model "
            f"{[tuple(v.shape) for v in originals]}",
        )
    for original, copied in zip(originals, copies, strict=True):
        if copied.trainable != original.trainable:
            copied.trainable = original.trainable
    if _trainable_indices(model) != _trainable_indices(clone):
        raise _not_rebuildable(model, "its trainable variables differ from the model's")
    for original, copied in zip(originals, copies, strict=True):
        original_dtype = keras.backend.standardize_dtype(original.dtype)
        copied_dtype = keras.backend.standardize_dtype(copied.dtype)
        if "float" in original_dtype and copied_dtype != "float64":
            raise ValueError(
                f"The variable `{original.path}` is {copied_dtype} in the float64 "
                f"copy of the model: its layer fixes the dtype of its weights. "
                "A gradient check needs float64 throughout; create the weight "
                "with the layer's own dtype (`self.add_weight(...)` without "
                "`dtype`, or `dtype=self.variable_dtype`)."
            )


def get_clone(model: keras.Model, x: Any, loss: Any) -> Float64Clone:
    """Returns the float64 copy of `model`, compiled with `loss`, its weights set.

    Must be called inside `float64_scope()`. The copy is cached with the model
    and reused while the model's variables, its compiled loss and `loss` stay
    the same; its weights are copied from the model at every call.

    Args:
        model: the user's model; only read.
        x: the (float64) inputs, to build a copy that is built by calling it.
        loss: the `loss` argument of `check_gradients` (`None`: the model's
            compiled loss).

    Returns:
        The `Float64Clone`.

    Raises:
        ModelNotRebuildableError: if the model cannot be rebuilt from its
            config into the same variables.
    """
    compile_config = _compat.compile_config(model)
    signature = _signature(model)
    cached = _cache.get(model)
    if not (
        cached is not None
        and (cached.loss is loss or (isinstance(loss, str) and cached.loss == loss))
        and cached.compile_config is compile_config
        and cached.signature == signature
    ):
        cached = _new_clone(model, x, loss, compile_config, signature)
        _cache[model] = cached
    _copy_weights(model, cached)
    return cached


def _new_clone(
    model: keras.Model,
    x: Any,
    loss: Any,
    compile_config: Any,
    signature: tuple[Any, ...],
) -> Float64Clone:
    clone = _build_clone(model, x)
    _match(model, clone)
    if loss is not None:
        loss_spec, loss_weights = loss, None
    else:
        loss_spec = getattr(model, "loss", None)
        loss_weights = (
            compile_config.config.get("loss_weights")
            if compile_config is not None
            else None
        )
    clone.compile(
        optimizer="sgd", loss=_float64_loss(loss_spec), loss_weights=loss_weights
    )
    if keras.backend.backend() == "jax":
        _explicit_attention(clone)
    generators = _seed_generators(clone)
    if keras.backend.backend() == "torch":
        # An unseeded generator sends torch's dropout to its global RNG, which
        # the state we pass does not pin.
        _compat.set_unseeded_generators_to_zero(generators)
    return Float64Clone(
        model=clone,
        trainable=_trainable_indices(clone),
        generators=generators,
        loss=loss,
        compile_config=compile_config,
        signature=signature,
    )


def _copy_weights(model: keras.Model, cached: Float64Clone) -> None:
    values = [original.value for original in model.weights]
    if keras.backend.backend() == "jax" and not all(
        len(value.sharding.device_set) == 1
        and value.sharding.device_set == copied.value.sharding.device_set
        for value, copied in zip(values, cached.model.weights, strict=True)
    ):
        # Laid out over other devices than the copy's one: through the host.
        values = [_float64_numpy(value) for value in values]
    elif keras.backend.backend() == "jax":
        # One compiled cast on the device instead of one op per variable.
        values = _jax_float64_cast()(values)
    else:
        # Cast where the weights are: no NumPy copy of a whole variable.
        values = [
            keras.ops.cast(value, "float64")
            if "float" in keras.backend.standardize_dtype(value.dtype)
            else value
            for value in values
        ]
    for copied, value in zip(cached.model.weights, values, strict=True):
        copied.assign(value)
    originals = _seed_generators(model)
    if len(originals) == len(cached.generators):
        for original, copied in zip(originals, cached.generators, strict=True):
            copied.state.assign(original.state.value)


def _float64_numpy(value: Any) -> np.ndarray:
    array = keras.ops.convert_to_numpy(value)
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


@functools.cache
def _jax_float64_cast() -> Any:
    """Compiled: a list of JAX arrays, the floating ones cast to float64."""
    import jax
    import jax.numpy as jnp

    def cast(values: list[Any]) -> list[Any]:
        return [
            v.astype(jnp.float64) if jnp.issubdtype(v.dtype, jnp.floating) else v
            for v in values
        ]

    return jax.jit(cast)


def build_loss(cached: Float64Clone, x: Any, y: Any, sample_weight: Any) -> None:
    """Builds the copy's compiled loss (and its metrics) before it is traced.

    The compiled loss creates its per-output trackers on first use; inside a
    traced function those would be state the trace did not get as an
    argument. Keras' trainers build it symbolically first; so does this.
    """
    model = cached.model
    if _compat.compile_loss_built(model) is not False:
        return
    try:
        _compat.symbolic_build(model, (x, y, sample_weight))
    except Exception as error:
        # The first evaluation builds the loss then, and reports a real
        # problem with `y` in plain words (`_check._first_evaluation`).
        _log.debug(
            "The float64 copy's loss could not be built symbolically (%s: %s); "
            "it is built on the first evaluation.",
            type(error).__name__,
            error,
        )


def seed_generators(cached: Float64Clone, seed: int) -> None:
    """Sets the copy's random layers to a state derived from `seed`."""
    for index, generator in enumerate(cached.generators):
        state = np.array([seed + 7919 * index, 0])
        generator.state.assign(state.astype(generator.state.dtype))
