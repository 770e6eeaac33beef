"""Adding validation data to training data, for the retrain (private).

Arrays and tensors (NumPy, TensorFlow, JAX, PyTorch, pandas, SciPy sparse;
nested in lists, tuples or dicts) and `tf.data` datasets: whether validation
data can be appended to the training data (its structure, per-sample shapes,
element specs), how many samples or batches each side holds, and the
concatenation itself, done only when asked (`Joinable.join`). Nothing here
trains or prints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keras_bettermodels import _validation

__all__ = [
    "ADDABLE",
    "RETRAIN_YOURSELF",
    "CannotCombine",
    "CannotCombineTypeError",
    "CannotCombineValueError",
    "Joinable",
    "arrays",
    "cardinality",
    "datasets",
    "is_array_structure",
    "is_dataset",
    "samples",
]

_logger = logging.getLogger(__name__)

_INFINITE = -1  # tf.data.INFINITE_CARDINALITY
RETRAIN_YOURSELF = (
    "Pass `retrain_on_full_data=False` to the tuner and call "
    "`tuner.retrain(...)` with the whole data set instead."
)


class CannotCombine(Exception):
    """Data to which the validation data cannot be added for the retrain.

    `search` warns and skips the retrain on such data, which keras-tuner
    searches as usual; `retrain` raises.
    """


class CannotCombineTypeError(CannotCombine, TypeError):
    """Data of a type that cannot be concatenated (a generator, ...)."""


class CannotCombineValueError(CannotCombine, ValueError):
    """Data that cannot be concatenated as it is (an infinite dataset)."""


@dataclass(frozen=True)
class Joinable:
    """Validation data checked against the training data, not yet appended.

    Attributes:
        join: returns the appended data as `fit` keyword arguments (`x`, and
            `y` and `sample_weight` for arrays); copies the data.
        train_samples: the training samples, or `None` for a dataset.
        validation_samples: the validation samples, or `None` for a dataset.
        train_batches: batches per epoch of a training dataset, when its
            cardinality is known; `None` otherwise.
        validation_batches: the same for a validation dataset.
    """

    join: Callable[[], dict[str, Any]]
    train_samples: int | None = None
    validation_samples: int | None = None
    train_batches: int | None = None
    validation_batches: int | None = None


ADDABLE = (
    "arrays, tensors or a `tf.data.Dataset`, to which the validation data can "
    "be added for the retrain"
)


def arrays(named: dict[str, Any], validation_data: Any) -> Joinable:
    """Checks validation arrays against the training arrays in `named`.

    Raises:
        CannotCombineTypeError: for data that is not arrays or tensors.
        ValueError: for a structure or per-sample shapes that differ.
    """
    import keras

    if is_dataset(validation_data) or not isinstance(validation_data, tuple | list):
        raise CannotCombineTypeError(
            _validation.invalid_type(
                "validation_data",
                "a tuple `(x_val, y_val)` or `(x_val, y_val, sample_weight_val)` "
                "of arrays, like the training data",
                validation_data,
            )
            + f". {RETRAIN_YOURSELF}"
        )
    if not 1 <= len(validation_data) <= 3:
        raise ValueError(
            _validation.invalid_value(
                "validation_data",
                "a tuple `(x_val,)`, `(x_val, y_val)` or "
                f"`(x_val, y_val, sample_weight_val)`; got {len(validation_data)} "
                "elements",
                _Shapes(validation_data),
            )
        )
    val_x, val_y, val_weight = keras.utils.unpack_x_y_sample_weight(
        tuple(validation_data)
    )
    x, y, weight = named.get("x"), named.get("y"), named.get("sample_weight")
    _check_pair("x", x, val_x)
    _check_pair("y", y, val_y)
    train, val = samples(x), samples(val_x)
    if weight is not None and val_weight is not None:
        _check_pair("sample_weight", weight, val_weight)

    def join() -> dict[str, Any]:
        joined: dict[str, Any] = {"x": _concat_structure(x, val_x)}
        if y is not None:
            joined["y"] = _concat_structure(y, val_y)
        if weight is not None or val_weight is not None:
            import numpy as np

            ones: Any = np.ones(train, "float32") if weight is None else weight
            val_ones: Any = (
                np.ones(val, "float32") if val_weight is None else val_weight
            )
            joined["sample_weight"] = _concat_leaf(ones, val_ones)
        return joined

    return Joinable(join, train_samples=train, validation_samples=val)


class _Shapes:
    """Shows data by its shapes in an error message, not by its values."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __repr__(self) -> str:
        import keras

        try:
            return repr(keras.tree.map_structure(_shape_of, self.data))
        except (TypeError, ValueError) as error:  # a structure keras.tree rejects
            _logger.debug("Showing %s by its type: %r", type(self.data), error)
            return f"<{type(self.data).__name__}>"


def _shape_of(leaf: Any) -> Any:
    shape = getattr(leaf, "shape", None)
    if shape is None:
        return type(leaf).__name__
    return tuple(None if d is None else int(d) for d in shape)


def _check_pair(name: str, train: Any, val: Any) -> None:
    """Checks that `val` can be appended to `train`, sample-wise."""
    import keras

    if (train is None) != (val is None):
        missing = "validation" if val is None else "training"
        raise ValueError(
            f"Invalid value for argument `validation_data`. Expected "
            f"{'a `' + name + '` for' if val is None else 'no `' + name + '` in'} "
            f"the validation data, as in the training data: the {missing} data "
            f"has no `{name}`. Received: validation_data with {name}="
            f"{_Shapes(val)!r} for training {name}={_Shapes(train)!r}"
        )
    if train is None:
        return
    try:
        keras.tree.assert_same_structure(train, val)
    except (ValueError, TypeError) as error:
        raise ValueError(_shape_message(name, train, val, "structure")) from error
    for leaf, val_leaf in zip(
        keras.tree.flatten(train), keras.tree.flatten(val), strict=True
    ):
        if not _is_array(leaf):
            raise CannotCombineTypeError(
                f"{_validation.invalid_type(name, ADDABLE, leaf)}. {RETRAIN_YOURSELF}"
            )
        if not _is_array(val_leaf):
            raise CannotCombineTypeError(
                _validation.invalid_type(
                    "validation_data", f"arrays for `{name}`, like x", val_leaf
                )
                + f". {RETRAIN_YOURSELF}"
            )
        if not _same_sample_shape(_shape_of(leaf), _shape_of(val_leaf)):
            raise ValueError(_shape_message(name, train, val, "per-sample shape"))


def _same_sample_shape(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if len(a) != len(b) or not a:
        return False
    return all(
        p is None or q is None or p == q for p, q in zip(a[1:], b[1:], strict=True)
    )


def _shape_message(name: str, train: Any, val: Any, what: str) -> str:
    return (
        "Invalid value for argument `validation_data`. Expected validation "
        f"`{name}` with the {what} of the training `{name}`, so that the two can "
        "be concatenated for the retrain on the full data. Received: "
        f"validation_data with {name} shapes {_Shapes(val)!r} for training "
        f"{name} shapes {_Shapes(train)!r}"
    )


def _module(value: Any) -> str:
    return str(type(value).__module__)


def _is_array(value: Any) -> bool:
    import numpy as np

    if isinstance(value, np.ndarray):
        return True
    module = _module(value)
    return hasattr(value, "shape") and module.split(".")[0] in (
        "tensorflow",
        "jax",
        "jaxlib",
        "torch",
        "pandas",
        "scipy",
    )


def is_array_structure(x: Any) -> bool:
    import keras

    if x is None or is_dataset(x):
        return False
    try:
        leaves = keras.tree.flatten(x)
    except (TypeError, ValueError) as error:  # a structure keras.tree rejects
        _logger.debug("Not an array structure, %s: %r", type(x), error)
        return False
    return bool(leaves) and all(_is_array(leaf) for leaf in leaves)


def samples(x: Any) -> int | None:
    import keras

    for leaf in keras.tree.flatten(x):
        shape = getattr(leaf, "shape", None)
        if shape is not None and len(shape) and shape[0] is not None:
            return int(shape[0])
    return None


def _concat_structure(train: Any, val: Any) -> Any:
    import keras

    return keras.tree.map_structure(_concat_leaf, train, val)


def _concat_leaf(a: Any, b: Any) -> Any:
    """Appends `b` to `a` along the sample axis, in `a`'s own library."""
    import numpy as np

    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.concatenate([a, b])
    library = _module(a).split(".")[0]
    same = library == _module(b).split(".")[0]
    if same and getattr(a, "dtype", None) == getattr(b, "dtype", None):
        if library == "tensorflow":
            import tensorflow as tf

            if type(a).__name__ == "SparseTensor":
                return tf.sparse.concat(0, [a, b])
            return tf.concat([a, b], axis=0)
        if library in ("jax", "jaxlib") and not _module(a).startswith(
            "jax.experimental.sparse"
        ):
            import jax.numpy as jnp

            return jnp.concatenate([a, b])
        if library == "torch" and a.device == b.device:
            import torch

            return torch.cat([a, b])
    if same and library == "pandas":
        import pandas

        return pandas.concat([a, b], ignore_index=True)
    if same and library == "scipy":
        import scipy.sparse

        return scipy.sparse.vstack([a, b], format=a.format)
    return np.concatenate([_to_numpy(a), _to_numpy(b)])


def _to_numpy(value: Any) -> Any:
    import numpy as np

    if _module(value).startswith("torch"):
        return value.detach().cpu().numpy()
    if hasattr(value, "todense") and not isinstance(value, np.ndarray):
        value = value.todense()
    return np.asarray(value)


# ------------------------------------------------------------------- datasets


def is_dataset(value: Any) -> bool:
    if value is None or not _module(value).startswith("tensorflow"):
        return False
    import tensorflow as tf

    return isinstance(value, tf.data.Dataset)


def cardinality(dataset: Any) -> int | None:
    count = int(dataset.cardinality())
    return count if count >= 0 else None


def datasets(train: Any, val: Any) -> Joinable:
    """Checks a validation dataset against the training dataset `train`.

    Raises:
        CannotCombineTypeError: for validation data that is no dataset.
        CannotCombineValueError: for an infinite training dataset.
        ValueError: for element specs that differ.
    """
    import tensorflow as tf

    if not is_dataset(val):
        raise CannotCombineTypeError(
            _validation.invalid_type(
                "validation_data",
                "a `tf.data.Dataset` when `x` is one, so that the two can be "
                "concatenated for the retrain",
                val,
            )
            + f". {RETRAIN_YOURSELF}"
        )
    if int(train.cardinality()) == _INFINITE:
        raise CannotCombineValueError(
            _validation.invalid_value(
                "x",
                "a finite `tf.data.Dataset`: the validation data is appended "
                "after the training data, which an infinite dataset never "
                "reaches",
                train,
                "Remove `.repeat()` (Keras repeats datasets itself), or pass "
                "`retrain_on_full_data=False` and call `tuner.retrain(...)` "
                "with a dataset of all the data.",
            )
        )
    train_spec, val_spec = train.element_spec, val.element_spec
    try:
        tf.nest.assert_same_structure(train_spec, val_spec)
        compatible = all(
            _compatible_specs(t, v)
            for t, v in zip(
                tf.nest.flatten(train_spec), tf.nest.flatten(val_spec), strict=True
            )
        )
    except (ValueError, TypeError):
        compatible = False
    if not compatible:
        raise ValueError(
            "Invalid value for argument `validation_data`. Expected a dataset "
            "whose elements have the structure, dtypes and per-sample shapes of "
            "the training dataset's, so that the two can be concatenated for "
            f"the retrain on the full data. Received: validation_data with "
            f"element_spec={val_spec} for training element_spec={train_spec}"
        )
    return Joinable(
        lambda: {"x": train.concatenate(val)},
        train_batches=cardinality(train),
        validation_batches=cardinality(val),
    )


def _compatible_specs(train: Any, val: Any) -> bool:
    if type(train) is not type(val) or getattr(train, "dtype", None) != getattr(
        val, "dtype", None
    ):
        return False
    shape_a, shape_b = getattr(train, "shape", None), getattr(val, "shape", None)
    if shape_a is None or shape_b is None:
        return True
    if shape_a.rank is None or shape_b.rank is None:
        return True
    if shape_a.rank != shape_b.rank:
        return False
    return bool(shape_a[1:].is_compatible_with(shape_b[1:]))
