"""The model's state, watched and kept on the device.

Two things the callbacks that protect a run (`MixedPrecisionGuard`,
`EarlyStopping` with `check_finite` / `restore_best_weights`) share:

- `first_nonfinite_variable`: are all the model's variables (trainable and
  not, BatchNormalization's moving statistics included) and all its
  optimizer's variables finite? One fused reduction on the device answers
  with one scalar; only when the answer is no does it find out which
  variable, with one more small transfer (a flag per variable).
- `Snapshot`: a copy of the same variables, kept on the device (never a NumPy
  copy on the host), and put back with `Variable.assign`.
- `take_weights`: a `Snapshot` of a `keras.Model`; of anything else that has
  `get_weights` / `set_weights` (Keras' own `EarlyStopping` takes such
  objects), a `WeightsCopy`: what `get_weights()` returned, put back with
  `set_weights`, as Keras does.

Neither reads more than a scalar (or a flag per variable) back to the host.

- `NonfiniteLossWatch`: the earliest batch of an epoch whose training loss was
  not finite, recorded from batch hooks that Keras may run on a thread pool,
  out of order.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from keras_bettermodels import _validation

__all__ = [
    "NONFINITE_KINDS",
    "NonfiniteLossWatch",
    "NonfiniteVariable",
    "Snapshot",
    "WeightsCopy",
    "first_nonfinite_variable",
    "state_variables",
    "take_weights",
]

#: What a non-finite variable can be.
NONFINITE_KINDS = ("weight", "optimizer variable")


@dataclass(frozen=True)
class NonfiniteVariable:
    """A model or optimizer variable that holds a NaN or an infinity.

    Args:
        path: the variable's `path`, e.g. `"sequential/first/kernel"`.
        kind: `"weight"` (a model variable, trainable or not) or
            `"optimizer variable"` (a slot, the learning rate, a loss scale).
    """

    path: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind} `{self.path}`"


def _optimizer(model: keras.Model) -> Any:
    """The model's optimizer, if it has one and it is built; else `None`."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", False):
        return None
    return optimizer


def state_variables(
    model: keras.Model, *, optimizer: bool = True
) -> tuple[list[Any], list[Any]]:
    """The model's variables and (if asked and built) its optimizer's.

    Returns:
        `(weights, optimizer_variables)`: `model.weights` (trainable, then
        non-trainable) and the built optimizer's `variables` (empty without
        one, or with `optimizer=False`).
    """
    weights = list(model.weights)
    built = _optimizer(model) if optimizer else None
    return weights, ([] if built is None else list(built.variables))


def _is_float(variable: Any) -> bool:
    dtype = keras.backend.standardize_dtype(variable.dtype)
    return "float" in dtype


def _flags(values: Sequence[Any]) -> tuple[Any, Any]:
    """`(all finite, one flag per value)`, both on the device."""
    ops = keras.ops
    if keras.backend.backend() == "jax":
        # Compiled, `sum(v * 0)` is one float reduction over `v`, 0 when all
        # of it is finite and NaN otherwise (NaN * 0 and inf * 0 are NaN, and
        # a sum keeps a NaN, unlike a max): half the time of a boolean
        # `all(isfinite(v))` on a CPU, one read of `v` on a GPU either way.
        # Eager (TensorFlow, PyTorch) it would write `v * 0` out first.
        flags = ops.isfinite(ops.stack([ops.sum(value * 0) for value in values]))
    else:
        flags = ops.stack([ops.all(ops.isfinite(value)) for value in values])
    return ops.all(flags), flags


def _copies(values: Sequence[Any]) -> list[Any]:
    return [_device_copy(value) for value in values]


@functools.cache
def _on_device(function: Callable[..., Any], backend: str) -> Callable[..., Any]:
    """`function` as one compiled XLA program on JAX (one launch for all the
    variables, instead of one or two per variable); as it is elsewhere, where
    each kernel runs eagerly on the device."""
    if backend != "jax":
        return function
    import jax

    return jax.jit(function)


def _finite_flags(variables: Sequence[Any]) -> tuple[Any, Any]:
    """Is every entry finite? One boolean for all, and one per variable."""
    values = [v.value for v in variables]
    return _on_device(_flags, keras.backend.backend())(values)


def first_nonfinite_variable(model: keras.Model) -> NonfiniteVariable | None:
    """The first variable of `model` or of its optimizer that is not finite.

    Checks every model variable (`model.weights`: trainable and non-trainable,
    BatchNormalization's moving mean and variance included) and, when the
    model has a built optimizer, every optimizer variable (its slots, learning
    rate, iteration counter, a `LossScaleOptimizer`'s scale). Integer
    variables are finite by construction and skipped.

    The check is one fused reduction on the device (`all(isfinite(v))` per
    variable, combined into one scalar) before one scalar reaches the host;
    only when it is `False` does one more transfer (a flag per variable) say
    which one. The weights are never copied to the host.

    Args:
        model: a Keras model, built or not (an unbuilt model has no
            variables: `None`).

    Returns:
        The first non-finite variable, weights first and then the optimizer's
        variables, each in their own order; `None` when all are finite.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid_type("model", "a keras.Model", model))
    weights, optimizer_variables = state_variables(model)
    labelled = [(v, "weight") for v in weights if _is_float(v)] + [
        (v, "optimizer variable") for v in optimizer_variables if _is_float(v)
    ]
    if not labelled:
        return None
    finite, flags = _finite_flags([v for v, _ in labelled])
    # The one scalar that crosses to the host when all is well.
    if bool(keras.ops.convert_to_numpy(finite)):
        return None
    host_flags = keras.ops.convert_to_numpy(flags)
    for (variable, kind), finite in zip(labelled, host_flags, strict=True):
        if not finite:
            return NonfiniteVariable(path=variable.path, kind=kind)
    return None  # pragma: no cover - the scalar said one is not finite


def _device_copy(value: Any) -> Any:
    if keras.backend.backend() == "torch":
        import torch

        with torch.no_grad():
            return value.detach().clone()
    return keras.ops.copy(value)


def _build_optimizer(model: keras.Model) -> None:
    """Builds the model's optimizer now, so that a snapshot holds its state.

    Keras does so before training on JAX and PyTorch; on TensorFlow it waits
    for the first step (inside the distribution strategy's scope).
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or optimizer.built or not model.built:
        return
    if keras.backend.backend() == "tensorflow":
        with model.distribute_strategy.scope():
            optimizer.build(model.trainable_variables)
    else:
        optimizer.build(model.trainable_variables)


class Snapshot:
    """A copy of a model's variables (and its optimizer's), kept on the device.

    `take` copies every variable in `model.weights` (trainable and not) and,
    with `optimizer=True`, every variable of the model's optimizer (building
    the optimizer first when the model is built and the optimizer is not, as
    TensorFlow leaves it until the first step, so that the copy holds its
    state). The copies stay where the variables live (a device copy, never a
    NumPy array on the host); `restore` assigns them back.

    Example:

    ```python
    snapshot = Snapshot.take(model)
    model.fit(x, y, epochs=1)
    snapshot.restore(model)  # weights and optimizer state as they were
    ```
    """

    def __init__(
        self, weights: list[Any], optimizer_variables: list[Any] | None
    ) -> None:
        self._weights = weights
        self._optimizer_variables = optimizer_variables

    @classmethod
    def take(cls, model: keras.Model, *, optimizer: bool = True) -> Snapshot:
        """Copies the model's state on the device.

        Args:
            model: a Keras model.
            optimizer: also copy the optimizer's variables (its slots,
                iteration counter, learning rate, loss scale). Defaults to
                `True`.

        Returns:
            The snapshot.
        """
        if not isinstance(model, keras.Model):
            raise TypeError(_validation.invalid_type("model", "a keras.Model", model))
        if optimizer:
            _build_optimizer(model)
        weights, optimizer_variables = state_variables(model, optimizer=optimizer)
        kept = optimizer and _optimizer(model) is not None
        values = [v.value for v in weights + (optimizer_variables if kept else [])]
        copies = _on_device(_copies, keras.backend.backend())(values)
        return cls(copies[: len(weights)], copies[len(weights) :] if kept else None)

    @property
    def has_optimizer_state(self) -> bool:
        """Whether the snapshot holds the optimizer's variables."""
        return self._optimizer_variables is not None

    def restore(self, model: keras.Model) -> None:
        """Puts the kept values back into `model` (and its optimizer).

        Args:
            model: the model the snapshot was taken of (or one with the same
                variables, in the same order).

        Raises:
            ValueError: when the model's (or its optimizer's) variables no
                longer match the snapshot's in number or shape.
        """
        weights, optimizer_variables = state_variables(
            model, optimizer=self.has_optimizer_state
        )
        pairs = [("model", weights, self._weights)]
        if self._optimizer_variables is not None:
            pairs.append(("optimizer", optimizer_variables, self._optimizer_variables))
        for what, variables, values in pairs:
            _check_match(what, variables, values)
        for _, variables, values in pairs:
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)


class WeightsCopy:
    """What `model.get_weights()` returned, put back with `model.set_weights`.

    Keras' `EarlyStopping(restore_best_weights=True)` keeps and restores the
    weights this way, so it takes any object with these two methods, not only
    a `keras.Model` (Keras' own tests drive it with such a stand-in). This is
    the fallback for those objects, where no `Snapshot` can be taken: the
    weights are kept as `get_weights` returns them (for a Keras layer, NumPy
    copies on the host), and nothing of an optimizer is kept.
    """

    #: A `WeightsCopy` never holds an optimizer's state.
    has_optimizer_state = False

    def __init__(self, weights: Any) -> None:
        self._weights = weights

    @classmethod
    def take(cls, model: Any) -> WeightsCopy:
        """Keeps what `model.get_weights()` returns."""
        return cls(model.get_weights())

    def restore(self, model: Any) -> None:
        """Calls `model.set_weights` with the kept weights."""
        model.set_weights(self._weights)


def take_weights(model: Any, *, optimizer: bool = True) -> Snapshot | WeightsCopy:
    """Keeps `model`'s state: on the device for a `keras.Model`, else Keras' way.

    Args:
        model: a `keras.Model` (a `Snapshot` is taken), or any object with
            `get_weights` and `set_weights` (a `WeightsCopy`, as Keras'
            `EarlyStopping` keeps weights).
        optimizer: for a `keras.Model`, also keep its optimizer's variables.
            Defaults to `True`.

    Returns:
        A `Snapshot` or a `WeightsCopy`; either puts the state back with
        `restore(model)`.

    Raises:
        TypeError: if `model` is neither.
    """
    if isinstance(model, keras.Model):
        return Snapshot.take(model, optimizer=optimizer)
    if callable(getattr(model, "get_weights", None)) and callable(
        getattr(model, "set_weights", None)
    ):
        return WeightsCopy.take(model)
    raise TypeError(
        _validation.invalid_type(
            "model",
            "a keras.Model, or an object with `get_weights` and `set_weights`",
            model,
        )
    )


def _check_match(what: str, variables: list[Any], values: list[Any]) -> None:
    shapes = [tuple(v.shape) for v in variables]
    kept = [tuple(value.shape) for value in values]
    if shapes != kept:
        raise ValueError(
            _validation.invalid_value(
                "model",
                f"a model whose {what} variables match the snapshot's "
                f"({len(kept)} variables)",
                f"<{len(shapes)} {what} variables>",
                "Take the snapshot again after the model or its optimizer was built.",
            )
        )


class NonfiniteLossWatch:
    """The earliest batch of an epoch whose training loss is NaN or infinite.

    Keras runs an `async_safe` callback's batch-end hooks on a thread pool
    (JAX, PyTorch), possibly out of order: `record` takes a lock, reads only
    the loss Keras has already made a Python float, and keeps the earliest
    bad batch. Copies (keras-tuner deep-copies callbacks) get a new lock.

    Attributes:
        first_batch: the 0-based earliest batch with a non-finite loss since
            the last `reset`, or `None`.
        steps: the number of batches seen since the last `reset`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first_batch: int | None = None
        self.steps = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forgets the last epoch: call it at each epoch's start."""
        with self._lock:
            self.first_batch = None
            self.steps = 0

    def record(self, batch: int, loss: Any) -> bool:
        """Records one batch's loss (`None`: the batch logged none).

        Returns:
            `True` the first time in this epoch that a loss is not finite (the
            caller stops training then); `False` otherwise, an earlier batch
            found later included.
        """
        with self._lock:
            self.steps = max(self.steps, batch + 1)
            first = self.first_batch
            if first is not None and first < batch:
                return False
            if loss is None or math.isfinite(float(loss)):
                return False
            self.first_batch = batch
            return first is None
