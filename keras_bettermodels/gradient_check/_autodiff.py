"""J and ∇J of the float64 copy: the one step that differs by backend.

J is what training minimises, computed the way Keras' JAX trainer computes it
on every backend: a `stateless_call(..., return_losses=True)` gives the
predictions and the losses made during the call (weight regularizers and
`add_loss` penalties), which are handed to the model's `compute_loss` (the
compiled loss, or the model's own override) through `_losses_override`, so
that each counts once. Every evaluation gets the same non-trainable state, so
seeded random layers draw the same masks and batch normalization uses the
batch's statistics in training mode.

The value-and-gradient step is `tf.GradientTape` in a `tf.function` on
TensorFlow, `jax.value_and_grad` under `jax.jit` on JAX, and `torch.autograd`
on PyTorch, where the global generator is also reseeded before each
evaluation.

The probes that move θ and evaluate J are in `_probes`, the same on every
backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from keras_bettermodels._compat import gradient_check as _compat

__all__ = ["LossFunctions", "make_loss_functions"]


def _loss(
    model: keras.Model,
    training: bool,
    trainable: Sequence[Any],
    non_trainable: Sequence[Any],
    metrics_variables: Sequence[Any],
    x: Any,
    y: Any,
    sample_weight: Any,
) -> Any:
    kwargs = {"training": training} if _compat.call_has_training_arg(model) else {}
    y_pred, _, losses = model.stateless_call(
        list(trainable), list(non_trainable), x, return_losses=True, **kwargs
    )
    with _compat.losses_override(model, list(losses) if losses else []):
        loss, _ = model.stateless_compute_loss(
            list(trainable),
            list(non_trainable),
            list(metrics_variables),
            x=x,
            y=y,
            y_pred=y_pred,
            sample_weight=sample_weight,
            training=training,
        )
    return loss


class LossFunctions:
    """J(θ) and (J(θ), ∇J(θ)) for one float64 model on the current backend.

    Trainable values go in as backend tensors (from `trainable_tensors`); J
    and ∇J come out as backend tensors, on the device.
    """

    def __init__(self, model: keras.Model, training: bool) -> None:
        self.model = model
        self.training = training
        self.backend = keras.backend.backend()
        self._value: Callable[..., Any]
        self._value_and_grad: Callable[..., Any]
        self._torch_seed: int | None = None
        getattr(self, f"_make_{self.backend}")()

    # -- backends ---------------------------------------------------------

    def _bound(self) -> Callable[..., Any]:
        def loss(*args: Any) -> Any:
            return _loss(self.model, self.training, *args)

        return loss

    def _make_tensorflow(self) -> None:
        import tensorflow as tf

        loss = self._bound()

        def value_and_grad(trainable: list[Any], *rest: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(trainable)
                value = loss(trainable, *rest)
            grads = tape.gradient(
                value, trainable, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            return value, grads

        self._value = tf.function(loss)
        self._value_and_grad = tf.function(value_and_grad)
        for function in (self._value, self._value_and_grad):
            _compat.skip_tracing_warning(function)

    def _make_jax(self) -> None:
        import jax

        loss = self._bound()
        self._value = jax.jit(loss)
        self._value_and_grad = jax.jit(jax.value_and_grad(loss))

    def _make_torch(self) -> None:
        import torch

        loss = self._bound()

        def value(*args: Any) -> Any:
            self._reseed_torch()
            with torch.no_grad():
                return loss(*args)

        def value_and_grad(trainable: list[Any], *rest: Any) -> Any:
            self._reseed_torch()
            leaves = [t.detach().requires_grad_(True) for t in trainable]
            result = loss(leaves, *rest)
            raw = torch.autograd.grad(result, leaves, allow_unused=True)
            grads = [
                torch.zeros_like(leaf) if grad is None else grad
                for leaf, grad in zip(leaves, raw, strict=True)
            ]
            return result.detach(), grads

        self._value = value
        self._value_and_grad = value_and_grad

    def _reseed_torch(self) -> None:
        if self._torch_seed is not None:
            import torch

            torch.manual_seed(self._torch_seed)

    # -- public -----------------------------------------------------------

    def set_torch_seed(self, seed: int | None) -> None:
        """On PyTorch, reseed the global generator with `seed` before each call."""
        self._torch_seed = seed

    def trainable_tensors(self, variables: Sequence[Any]) -> list[Any]:
        """θ as every evaluation gets it: the variables' float64 values.

        The copy's own device tensors (float64 already), detached from
        autograd on PyTorch; no copy through NumPy.
        """
        values = [keras.ops.cast(v.value, "float64") for v in variables]
        if self.backend == "torch":
            values = [value.detach() for value in values]
        return values

    def value_tensor(self, trainable: Sequence[Any], state: Sequence[Any]) -> Any:
        """J at the trainable values `trainable`, as a device scalar (not awaited).

        `state` is from `bind`.
        """
        return self._value(list(trainable), *state)

    def value(self, trainable: Sequence[Any], state: Sequence[Any]) -> float:
        """J at the trainable values `trainable`, as a Python float."""
        return float(keras.ops.convert_to_numpy(self.value_tensor(trainable, state)))

    def value_and_grad(
        self, trainable: Sequence[Any], state: Sequence[Any]
    ) -> tuple[Any, list[Any]]:
        """J (a backend scalar, to check its dtype) and ∇J, as backend tensors.

        Dispatched, not awaited: the probes use them on the device.
        """
        value, grads = self._value_and_grad(list(trainable), *state)
        return value, list(grads)

    def bind(
        self, x: Any, y: Any, sample_weight: Any
    ) -> tuple[list[Any], list[Any], Any, Any, Any]:
        """The arguments after θ of every evaluation: state, metrics state, data."""
        model = self.model
        to_tensor = self._data_tensor
        return (
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.metrics_variables],
            keras.tree.map_structure(to_tensor, x),
            None if y is None else keras.tree.map_structure(to_tensor, y),
            (
                None
                if sample_weight is None
                else keras.tree.map_structure(to_tensor, sample_weight)
            ),
        )

    def _data_tensor(self, value: Any) -> Any:
        return None if value is None else keras.ops.convert_to_tensor(value)


def make_loss_functions(model: keras.Model, training: bool) -> LossFunctions:
    """The `LossFunctions` of a float64 model, in training mode or not."""
    return LossFunctions(model, training)
