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

On JAX a directional probe stays on the device: one small compiled function
unpacks the direction's random signs and returns θ+εv, θ−εv and ∇J·v for
the variables it moves; J is then evaluated at both (two dispatches of the
compiled J, back to back) and the numbers come back together. θ, ∇J and the
moved copies never go through NumPy, and nothing is compiled per direction
(the small function once per variable shape, and once for all variables).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

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
    kwargs = {"training": training} if model._call_has_training_arg else {}
    y_pred, _, losses = model.stateless_call(
        list(trainable), list(non_trainable), x, return_losses=True, **kwargs
    )
    model._losses_override = list(losses) if losses else []
    try:
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
    finally:
        model._losses_override = []
    return loss


class LossFunctions:
    """J(θ) and (J(θ), ∇J(θ)) for one float64 model on the current backend.

    Trainable values go in as backend tensors (made with `to_tensor`), values
    come out as Python floats and gradients as float64 NumPy arrays.
    """

    def __init__(self, model: keras.Model, training: bool) -> None:
        self.model = model
        self.training = training
        self.backend = keras.backend.backend()
        self._value: Callable[..., Any]
        self._value_and_grad: Callable[..., Any]
        self._move: Callable[..., Any] | None = None
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
        # Each model gets its own functions, traced once each: not the
        # "retracing" TensorFlow warns about (it counts by source code).
        for function in (self._value, self._value_and_grad):
            function._omit_frequent_tracing_warning = True  # type: ignore[attr-defined]

    def _make_jax(self) -> None:
        import jax

        loss = self._bound()
        self._value = jax.jit(loss)
        self._value_and_grad = jax.jit(jax.value_and_grad(loss))

        self._move = _jax_move()

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

    @property
    def fused(self) -> bool:
        """Whether `directional` probes on the device (JAX) rather than the host."""
        return self._move is not None

    def to_tensor(self, value: np.ndarray) -> Any:
        """A NumPy array as a backend tensor of the same dtype."""
        return keras.ops.convert_to_tensor(value)

    def to_numpy(self, value: Any) -> np.ndarray:
        """A backend tensor as a float64 NumPy array."""
        return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)

    def trainable_tensors(self, variables: Sequence[Any]) -> list[Any]:
        """θ as every evaluation gets it: the variables' values in float64.

        On JAX the variables' own device arrays; elsewhere tensors made from
        float64 NumPy copies (which the host-side probes move).
        """
        if self.fused:
            import jax.numpy as jnp

            values = [v.value for v in variables]
            return [
                t if t.dtype == jnp.float64 else jnp.asarray(t, jnp.float64)
                for t in values
            ]
        return [self.to_tensor(self.to_numpy(v.value)) for v in variables]

    def value(self, trainable: Sequence[Any], state: Sequence[Any]) -> float:
        """J at the trainable values `trainable`; `state` is from `bind`."""
        return float(keras.ops.convert_to_numpy(self._value(list(trainable), *state)))

    def value_and_grad(
        self, trainable: Sequence[Any], state: Sequence[Any]
    ) -> tuple[Any, list[Any]]:
        """J (a backend scalar, to check its dtype) and ∇J, as backend tensors.

        Dispatched, not awaited (on JAX): convert what is needed with
        `to_numpy`, or pass the gradients to `directional`.
        """
        value, grads = self._value_and_grad(list(trainable), *state)
        return value, list(grads)

    def directional(
        self,
        trainable: Sequence[Any],
        grads: Sequence[Any],
        state: Sequence[Any],
        indices: Sequence[int],
        packed: Sequence[np.ndarray],
        scale: float,
        epsilon: float,
    ) -> tuple[float, float, float]:
        """J(θ+εv), J(θ−εv) and ∇J·v, computed on the device (JAX only).

        Args:
            trainable: θ, from `trainable_tensors`.
            grads: ∇J at θ, from `value_and_grad`.
            state: from `bind`.
            indices: the variables v moves (it is zero in the others).
            packed: per moved variable, its entries' signs as bits
                (`np.packbits` order, 1 for +); v is ±`scale` there.
            scale: the size of v's entries, 1/√n over the n moved entries.
            epsilon: the step ε.

        Returns:
            `(plus, minus, analytic)` as Python floats.
        """
        if self._move is None:
            raise RuntimeError("`directional` runs on the JAX backend only.")
        plus, minus = list(trainable), list(trainable)
        moved_plus, moved_minus, dots = self._move(
            tuple(trainable[i] for i in indices),
            tuple(grads[i] for i in indices),
            tuple(packed),
            np.float64(scale),
            np.float64(epsilon),
        )
        for index, up, down in zip(indices, moved_plus, moved_minus, strict=True):
            plus[index], minus[index] = up, down
        # Both passes are dispatched before the first wait for a number.
        j_plus = self._value(plus, *state)
        j_minus = self._value(minus, *state)
        analytic = sum(float(d) for d in np.asarray(dots))
        return float(j_plus), float(j_minus), analytic

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


def _signs_to_direction(
    xp: Any, bits: Any, shape: tuple[int, ...], dtype: Any, scale: Any
) -> Any:
    """v from packed sign bits: ±`scale`, with the arithmetic of `_check._unpack`."""
    count = int(np.prod(shape, dtype=np.int64))
    signs = xp.unpackbits(bits)[:count].astype(dtype)
    return (signs * (2 * scale) - scale).reshape(shape)


@functools.cache
def _jax_move() -> Callable[..., Any]:
    """The moved variables both ways along v, and their parts of ∇J·v, compiled.

    `(θs, gs, bits, scale, ε) -> (θs + εv, θs − εv, [g·v per variable])` for
    the variables v moves, with v made from the packed sign bits. Shared by
    all models: compiled once per tuple of shapes (one per variable, one for
    all of them together), whatever the number of directions.
    """
    import jax
    import jax.numpy as jnp

    def move(
        thetas: tuple[Any, ...],
        grads: tuple[Any, ...],
        packed: tuple[Any, ...],
        scale: Any,
        epsilon: Any,
    ) -> Any:
        plus, minus, dots = [], [], []
        for theta, grad, bits in zip(thetas, grads, packed, strict=True):
            v = _signs_to_direction(jnp, bits, theta.shape, theta.dtype, scale)
            # (v·h) + θ, as `_check` moves θ on the host.
            plus.append(v * epsilon + theta)
            minus.append(v * -epsilon + theta)
            dots.append(jnp.vdot(grad, v))
        return tuple(plus), tuple(minus), jnp.stack(dots)

    return jax.jit(move)


def make_loss_functions(model: keras.Model, training: bool) -> LossFunctions:
    """The `LossFunctions` of a float64 model, in training mode or not."""
    return LossFunctions(model, training)
