"""The batch a gradient check runs on: checked, and cast to float64.

Floating inputs, targets and sample weights become float64 NumPy arrays;
integer ones (token ids, class labels) pass through unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import keras
import numpy as np

from keras_bettermodels import _validation

__all__ = ["Described", "as_float64_batch", "check_inputs_fit", "describe"]

_log = logging.getLogger(__name__)


class Described:
    """A value shown in an error message by its description, not its repr."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _leaf_description(value: Any) -> str:
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"<array of shape {tuple(shape)} and dtype {dtype}>"
    return repr(value)


def describe(value: Any) -> Described:
    """A short description of a batch (shapes and dtypes) for error messages."""
    if isinstance(value, dict):
        text = (
            "{"
            + ", ".join(f"{k!r}: {_leaf_description(v)}" for k, v in value.items())
            + "}"
        )
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_leaf_description(v) for v in value) + "]"
    else:
        text = _leaf_description(value)
    return Described(text)


def not_accepted(x: Any, error: Exception) -> ValueError:
    """The error for inputs `x` that the model raised `error` on."""
    return ValueError(
        _validation.invalid_value(
            "x",
            "inputs that the model accepts",
            describe(x),
            f"Calling the model on them raised {type(error).__name__}: {error}",
        )
    )


def _to_array(name: str, value: Any, original: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        raise TypeError(_expected_arrays(name, original))
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value))
    except Exception as error:  # anything not array-like
        raise TypeError(_expected_arrays(name, original)) from error
    if array.dtype == object or array.ndim == 0:
        raise TypeError(_expected_arrays(name, original))
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return array
    raise TypeError(_expected_arrays(name, original))


def _expected_arrays(name: str, value: Any) -> str:
    return _validation.invalid_type(
        name,
        "one batch of numeric data: a NumPy array or backend tensor, or a list, "
        "tuple or dict of them (not a dataset or generator; take one batch "
        "from it)",
        value,
    )


def as_float64_batch(name: str, value: Any) -> Any:
    """Checks a batch and returns it as NumPy arrays, floats cast to float64.

    Args:
        name: the argument's name, for error messages.
        value: an array, a tensor, or a (nested) list, tuple or dict of them.

    Returns:
        The same structure with NumPy arrays.

    Raises:
        TypeError: if it is not numeric array data.
    """
    if value is None:
        return None
    if hasattr(value, "element_spec") or (
        hasattr(value, "__next__") and not hasattr(value, "shape")
    ):
        raise TypeError(_expected_arrays(name, value))
    if isinstance(value, dict | list | tuple):
        return keras.tree.map_structure(
            lambda leaf: _to_array(name, leaf, value), value
        )
    return _to_array(name, value, value)


def batch_size(name: str, value: Any) -> int | None:
    """The common leading dimension of a batch's arrays, if they agree."""
    sizes = {leaf.shape[0] for leaf in keras.tree.flatten(value) if leaf is not None}
    if len(sizes) > 1:
        raise ValueError(
            _validation.invalid_value(
                name,
                "arrays with the same number of samples (first dimension)",
                describe(value),
            )
        )
    return sizes.pop() if sizes else None


def check_batch_sizes(x: Any, y: Any, sample_weight: Any) -> None:
    """Checks that `y` and `sample_weight` have as many samples as `x`."""
    samples = batch_size("x", x)
    if samples == 0:
        raise ValueError(
            _validation.invalid_value("x", "at least one sample", describe(x))
        )
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is None:
            continue
        size = batch_size(name, value)
        if samples is not None and size is not None and size != samples:
            raise ValueError(
                _validation.invalid_value(
                    name,
                    f"as many samples as `x` ({samples})",
                    describe(value),
                )
            )


def check_inputs_fit(model: keras.Model, x: Any) -> None:
    """Checks `x` against the model's declared inputs, when it declares them.

    Only functional and Sequential models built from `keras.Input` declare
    their inputs; for the others a misfit shows up when the model is called.

    Raises:
        ValueError: if the number of inputs or a known dimension differs.
    """
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError):
        inputs = []
    if not inputs:
        _check_against_build_shape(model, x)
        return
    expected_shapes = [tuple(t.shape) for t in inputs]
    if isinstance(x, dict):
        names = [t.name for t in inputs]
        if set(x) - set(names):
            raise ValueError(
                _validation.invalid_value(
                    "x",
                    f"a dict keyed by the model's input names {names}",
                    describe(x),
                )
            )
        return
    leaves = list(x) if isinstance(x, list | tuple) else [x]
    expected = (
        f"{len(inputs)} input{'s' if len(inputs) > 1 else ''} of shape"
        f"{'s' if len(inputs) > 1 else ''} "
        + ", ".join(str(shape) for shape in expected_shapes)
    )
    if len(leaves) != len(inputs) or any(not hasattr(leaf, "shape") for leaf in leaves):
        raise ValueError(_validation.invalid_value("x", expected, describe(x)))
    for leaf, shape in zip(leaves, expected_shapes, strict=True):
        if abs(len(leaf.shape) - len(shape)) == 1:
            continue  # Keras adds or drops a last dimension of 1 itself.
        if len(leaf.shape) != len(shape) or any(
            want is not None and got != want
            for got, want in zip(leaf.shape, shape, strict=True)
        ):
            raise ValueError(_validation.invalid_value("x", expected, describe(x)))


def _check_against_build_shape(model: keras.Model, x: Any) -> None:
    """For a subclassed model: checks one input array against the shape it was built on.

    Subclassed layers take their sizes from the first input they see, so the
    float64 copy, built by calling it on `x`, would quietly come out another
    shape.
    """
    try:
        built = (model.get_build_config() or {}).get("input_shape")
    except Exception as error:
        # Only a pre-check: the copy, built on `x`, is compared with the
        # model variable by variable (`_clone._match`) in any case.
        _log.debug(
            "The build config of %s could not be read (%s: %s); its input shape "
            "is not checked before the float64 copy is built.",
            type(model).__name__,
            type(error).__name__,
            error,
        )
        return
    if (
        not isinstance(built, list | tuple)
        or not built
        or not all(d is None or isinstance(d, int) for d in built)
        or not hasattr(x, "shape")
    ):
        return
    shape = tuple(x.shape)
    if len(shape) != len(built) or any(
        want is not None and got != want
        for got, want in zip(shape[1:], built[1:], strict=True)
    ):
        expected = (
            f"inputs of shape {(None, *tuple(built)[1:])}, as the model was built"
        )
        raise ValueError(_validation.invalid_value("x", expected, describe(x)))
