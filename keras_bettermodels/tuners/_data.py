"""The retrain's data: training and validation data as one, and its callbacks.

Pure helpers for `keras_bettermodels.tuners.RandomSearch`. They read the
arguments of a `model.fit` call (as `search` receives them) and return those of
a fit on the whole data set: arrays and tensors concatenated, `tf.data`
datasets concatenated, or, with `validation_split`, the whole `x` / `y` unsplit;
every validation argument removed. Nothing here trains or prints.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from keras_bettermodels import _validation

__all__ = [
    "FIT_PARAMETERS",
    "VALIDATION_ARGUMENTS",
    "CannotCombine",
    "CannotCombineTypeError",
    "CannotCombineValueError",
    "FullData",
    "describe_callback",
    "fit_arguments",
    "full_training_data",
    "needs_validation_data",
    "split_callbacks",
]

# `keras.Model.fit`'s parameters, in order.
FIT_PARAMETERS = (
    "x",
    "y",
    "batch_size",
    "epochs",
    "verbose",
    "callbacks",
    "validation_split",
    "validation_data",
    "shuffle",
    "class_weight",
    "sample_weight",
    "initial_epoch",
    "steps_per_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)
# What the retrain leaves out: it holds no data out.
VALIDATION_ARGUMENTS = (
    "validation_split",
    "validation_data",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)

ARRAYS = "arrays"
SPLIT = "validation_split"
DATASET = "dataset"
TRAINING_ONLY = "training data only"

_logger = logging.getLogger(__name__)

_INFINITE = -1  # tf.data.INFINITE_CARDINALITY
_RETRAIN_YOURSELF = (
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
class FullData:
    """The arguments of a fit on training + validation data.

    Attributes:
        args: the positional arguments for `HyperModel.fit(hp, model, *args)`:
            `x` and `y`, if they were given positionally.
        kwargs: the keyword arguments, with every validation argument removed.
        kind: where the validation data came from and how it was added:
            `"arrays"` (concatenated), `"dataset"` (a `tf.data` dataset
            concatenated), `"validation_split"` (the whole `x` / `y`, unsplit)
            or `"training data only"` (there was no validation data).
        train_samples: the training samples, or `None` for a dataset.
        validation_samples: the validation samples, or `None` for a dataset
            and when there was no validation data.
        train_batches: batches per epoch of a training dataset, when its
            cardinality is known; `None` otherwise.
        validation_batches: the same for a validation dataset.
        notes: what was changed beyond adding the data, in sentences.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    kind: str
    train_samples: int | None = None
    validation_samples: int | None = None
    train_batches: int | None = None
    validation_batches: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def samples(self) -> int | None:
        """Training + validation samples, or `None` when a count is unknown."""
        if self.train_samples is None:
            return None
        return self.train_samples + (self.validation_samples or 0)

    @property
    def batches(self) -> int | None:
        """Training + validation batches of datasets, or `None`."""
        if self.train_batches is None:
            return None
        if self.kind == DATASET and self.validation_batches is None:
            return None
        return self.train_batches + (self.validation_batches or 0)


def fit_arguments(args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Names the arguments of a `model.fit` call by `keras.Model.fit`'s signature.

    Args:
        args: positional arguments, as `fit(x, y, ...)` receives them.
        kwargs: keyword arguments.

    Returns:
        A dict from parameter name to value, for the arguments given.

    Raises:
        TypeError: for more positional arguments than `fit` takes, or an
            argument given both ways.
    """
    if len(args) > len(FIT_PARAMETERS):
        raise TypeError(
            f"`fit` takes at most {len(FIT_PARAMETERS)} positional arguments. "
            f"Received: {len(args)}"
        )
    named = dict(zip(FIT_PARAMETERS, args, strict=False))
    for name in named:
        if name in kwargs:
            raise TypeError(f"`fit` got multiple values for argument `{name}`")
    named.update(kwargs)
    return named


def full_training_data(
    args: Sequence[Any], kwargs: dict[str, Any], *, concatenate: bool = True
) -> FullData:
    """Returns the arguments of a fit on training and validation data together.

    Arrays and tensors (NumPy, TensorFlow, JAX, PyTorch, pandas, SciPy sparse;
    nested in lists, tuples or dicts for several inputs) are concatenated
    sample-wise, validation after training; sample weights too, with weights of
    1 for the side that has none. A `tf.data.Dataset` is concatenated with the
    validation dataset. With `validation_split`, `x` and `y` already hold
    everything and are passed whole. Without validation data the training data
    is all there is. `validation_data` wins over `validation_split`, as in Keras.
    `steps_per_epoch`, if given, grows in proportion to the added data.

    Args:
        args: the positional arguments given to `search`.
        kwargs: the keyword arguments given to `search`.
        concatenate: `False` checks the data and counts it, without copying
            it; the result's `args` and `kwargs` are then those given, minus
            the validation arguments. Defaults to `True`.

    Returns:
        A `FullData`.

    Raises:
        CannotCombineTypeError: a `TypeError`, for data that cannot be
            combined with its validation data (a Python generator or
            `PyDataset`, a dataset with validation arrays, ...).
        CannotCombineValueError: a `ValueError`, for an infinite training
            dataset.
        ValueError: for validation data whose structure or per-sample shapes
            differ from the training data's.
    """
    named = fit_arguments(args, kwargs)
    x = named.get("x")
    validation_data = named.get("validation_data")
    split = named.get("validation_split") or 0.0
    if validation_data is not None:
        if _is_dataset(x):
            full = _datasets(x, validation_data, concatenate)
        elif _is_array_structure(x):
            full = _arrays(named, validation_data, concatenate)
        else:
            raise CannotCombineTypeError(
                f"{_validation.invalid_type('x', _ADDABLE, x)}. {_RETRAIN_YOURSELF}"
            )
    elif split:
        count = _samples(x) if _is_array_structure(x) else None
        train = None if count is None else math.floor(count * (1.0 - split))
        full = FullData(
            (),
            {},
            SPLIT,
            train_samples=train,
            validation_samples=None if count is None else count - (train or 0),
        )
    else:
        full = FullData(
            (),
            {},
            TRAINING_ONLY,
            train_samples=_samples(x) if _is_array_structure(x) else None,
            train_batches=_cardinality(x) if _is_dataset(x) else None,
        )
    if concatenate and full.kind in (ARRAYS, DATASET):
        named.update(full.kwargs)
    return _with_arguments(full, named, positional=min(len(args), 2))


_ADDABLE = (
    "arrays, tensors or a `tf.data.Dataset`, to which the validation data can "
    "be added for the retrain"
)


def _with_arguments(full: FullData, named: dict[str, Any], positional: int) -> FullData:
    """Returns `full` with the retrain's `args` and `kwargs` filled in."""
    named = {k: v for k, v in named.items() if k not in VALIDATION_ARGUMENTS}
    notes = list(full.notes)
    steps = named.get("steps_per_epoch")
    if steps is not None:
        grown = _grown_steps(steps, full)
        if grown is not None and grown != steps:
            named["steps_per_epoch"] = grown
            notes.append(
                f"`steps_per_epoch` grows from {steps} to {grown} in proportion "
                "to the added validation data."
            )
    args = tuple(named.pop(name) for name in FIT_PARAMETERS[:positional])
    return FullData(
        args,
        named,
        full.kind,
        full.train_samples,
        full.validation_samples,
        full.train_batches,
        full.validation_batches,
        tuple(notes),
    )


def _grown_steps(steps: Any, full: FullData) -> int | None:
    if not isinstance(steps, numbers.Integral) or full.kind == TRAINING_ONLY:
        return None
    if full.train_samples and full.validation_samples is not None:
        total, part = full.samples, full.train_samples
    elif full.train_batches and full.validation_batches is not None:
        total, part = full.batches, full.train_batches
    else:
        return None
    return math.ceil(int(steps) * (total or 0) / part)


# --------------------------------------------------------------------- arrays


def _arrays(named: dict[str, Any], validation_data: Any, concatenate: bool) -> FullData:
    import keras

    if _is_dataset(validation_data) or not isinstance(validation_data, tuple | list):
        raise CannotCombineTypeError(
            _validation.invalid_type(
                "validation_data",
                "a tuple `(x_val, y_val)` or `(x_val, y_val, sample_weight_val)` "
                "of arrays, like the training data",
                validation_data,
            )
            + f". {_RETRAIN_YOURSELF}"
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
    train, val = _samples(x), _samples(val_x)
    if weight is not None and val_weight is not None:
        _check_pair("sample_weight", weight, val_weight)
    full = FullData((), {}, ARRAYS, train_samples=train, validation_samples=val)
    if not concatenate:
        return full
    joined: dict[str, Any] = {"x": _concat_structure(x, val_x)}
    if y is not None:
        joined["y"] = _concat_structure(y, val_y)
    if weight is not None or val_weight is not None:
        import numpy as np

        weight = np.ones(train, "float32") if weight is None else weight
        val_weight = np.ones(val, "float32") if val_weight is None else val_weight
        joined["sample_weight"] = _concat_leaf(weight, val_weight)
    return FullData((), joined, ARRAYS, train, val)


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
                f"{_validation.invalid_type(name, _ADDABLE, leaf)}. {_RETRAIN_YOURSELF}"
            )
        if not _is_array(val_leaf):
            raise CannotCombineTypeError(
                _validation.invalid_type(
                    "validation_data", f"arrays for `{name}`, like x", val_leaf
                )
                + f". {_RETRAIN_YOURSELF}"
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


def _is_array_structure(x: Any) -> bool:
    import keras

    if x is None or _is_dataset(x):
        return False
    try:
        leaves = keras.tree.flatten(x)
    except (TypeError, ValueError) as error:  # a structure keras.tree rejects
        _logger.debug("Not an array structure, %s: %r", type(x), error)
        return False
    return bool(leaves) and all(_is_array(leaf) for leaf in leaves)


def _samples(x: Any) -> int | None:
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


def _is_dataset(value: Any) -> bool:
    if value is None or not _module(value).startswith("tensorflow"):
        return False
    import tensorflow as tf

    return isinstance(value, tf.data.Dataset)


def _cardinality(dataset: Any) -> int | None:
    count = int(dataset.cardinality())
    return count if count >= 0 else None


def _datasets(train: Any, val: Any, concatenate: bool) -> FullData:
    import tensorflow as tf

    if not _is_dataset(val):
        raise CannotCombineTypeError(
            _validation.invalid_type(
                "validation_data",
                "a `tf.data.Dataset` when `x` is one, so that the two can be "
                "concatenated for the retrain",
                val,
            )
            + f". {_RETRAIN_YOURSELF}"
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
    full = FullData(
        (),
        {},
        DATASET,
        train_batches=_cardinality(train),
        validation_batches=_cardinality(val),
        notes=(
            "The tf.data datasets are concatenated in order: each epoch reads "
            "the training batches, then the validation batches.",
        ),
    )
    if not concatenate:
        return full
    return FullData(
        (),
        {"x": train.concatenate(val)},
        DATASET,
        train_batches=full.train_batches,
        validation_batches=full.validation_batches,
        notes=full.notes,
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


# ------------------------------------------------------------------ callbacks


def needs_validation_data(callback: Any) -> bool:
    """Whether `callback` reads a validation metric that a retrain lacks.

    A callback with a `monitor` on a `val_*` metric needs validation data
    (`EarlyStopping`, `ReduceLROnPlateau`, a best-only `ModelCheckpoint`); a
    `ModelCheckpoint` that saves every epoch does not.

    Args:
        callback: a Keras callback.

    Returns:
        `True` if the callback needs validation data.
    """
    monitor = getattr(callback, "monitor", None)
    if not isinstance(monitor, str) or not monitor.startswith("val_"):
        return False
    if hasattr(callback, "save_best_only"):  # ModelCheckpoint
        return bool(callback.save_best_only)
    return True


def split_callbacks(callbacks: Sequence[Any] | None) -> tuple[list[Any], list[Any]]:
    """Splits callbacks into those a retrain keeps and those it must leave out.

    Args:
        callbacks: the callbacks given to `search`, or `None`.

    Returns:
        `(kept, dropped)`: the dropped ones need validation data.
    """
    kept: list[Any] = []
    dropped: list[Any] = []
    for callback in callbacks or ():
        (dropped if needs_validation_data(callback) else kept).append(callback)
    return kept, dropped


def describe_callback(callback: Any) -> str:
    """Names a callback and what it monitors: `EarlyStopping(monitor='val_loss')`."""
    monitor = getattr(callback, "monitor", None)
    name = type(callback).__name__
    return f"{name}(monitor={monitor!r})" if monitor is not None else name
