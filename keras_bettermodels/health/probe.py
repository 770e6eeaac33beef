"""The per-layer statistics, computed on the device in one program per sample.

`HealthProbe(model)` builds, once per `fit`, a functional view of the model
(`keras.Model(model.input, [model.output, each weighted layer's output])`:
the same layers and variables, no copy) and one compiled program that, from
the model's current state and a sample batch:

1. runs a stateless forward pass in inference mode (`training=False`:
   Dropout off, BatchNormalization on its moving statistics, so the sample is
   deterministic and no random state moves) returning the layers' outputs;
2. evaluates the loss the way Keras' trainers do (`stateless_compute_loss`,
   with the losses of the call, regularizers and `add_loss` included) and its
   gradient with respect to every trainable weight — `jax.value_and_grad`
   under `jax.jit` on JAX, `tf.GradientTape` in a `tf.function` on
   TensorFlow, `torch.autograd` on PyTorch;
3. reduces each layer's outputs, gradient and weights to a few numbers.

Only a small vector (10 numbers a layer, and the loss) crosses to the host.
The training step is not touched: the program reads the variables' values
between steps. A model without a graph (a subclassed model) gets gradients
and weights but no activations. Layers are the model's own top-level layers
with weights, in forward order; a nested model is one layer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_bettermodels._compat import gradient_check as _compat
from keras_bettermodels.health.findings import FLOAT16_TINY
from keras_bettermodels.health.report import STATISTICS, LayerStats

__all__ = ["HealthProbe"]

#: `keras.optimizers.LossScaleOptimizer`'s default `initial_scale`.
DEFAULT_LOSS_SCALE = 2.0**15

_LOG = logging.getLogger(__name__)
# Stands for "not measured" on the device (every statistic is >= 0).
_MISSING = -1.0


def _weighted_layers(model: keras.Model) -> list[Any]:
    return [layer for layer in model.layers if layer.weights]


def _graph_ends(model: keras.Model) -> tuple[Any, Any]:
    """The model's symbolic inputs and outputs, in the structure it is called with.

    A functional model has them as `input` / `output`; a `Sequential` built
    from an `Input` only as the lists `inputs` / `outputs` (one each).
    """
    try:
        return model.input, model.output
    except AttributeError:
        inputs, outputs = model.inputs, model.outputs
        if not inputs or not outputs or len(inputs) != 1 or len(outputs) != 1:
            raise
        return inputs[0], outputs[0]


def _floats(tensors: Sequence[Any]) -> list[Any]:
    ops = keras.ops
    return [
        ops.cast(t, "float32")
        for t in tensors
        if "float" in keras.backend.standardize_dtype(t.dtype)
    ]


def _flat(tensors: list[Any]) -> Any:
    """One vector of all the values: each statistic is then one reduction."""
    ops = keras.ops
    parts = [ops.reshape(t, (-1,)) for t in tensors]
    return parts[0] if len(parts) == 1 else ops.concatenate(parts)


def loss_scale(model: keras.Model) -> float:
    """The loss scale a float16 backward pass of `model` runs (or would run) at.

    A `LossScaleOptimizer`'s initial scale; 1 under a float16 policy without
    one (`auto_scale_loss=False`); else the scale `compile` gives a
    `mixed_float16` model by default (`LossScaleOptimizer`'s 2^15), for what
    would happen under `mixed_float16`.
    """
    optimizer = getattr(model, "optimizer", None)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return float(optimizer.initial_scale)
    policy = model.dtype_policy.name
    if "float16" in policy and "bfloat16" not in policy:
        return 1.0
    return DEFAULT_LOSS_SCALE


def _value_stats(tensors: list[Any], scale: float = 1.0) -> list[Any]:
    """[max |v| (+inf if any is not finite), min non-zero |v|, tiny share].

    Tiny: below float16's smallest subnormal once multiplied by `scale`.
    """
    ops = keras.ops
    if not tensors:
        return [ops.convert_to_tensor(_MISSING, "float32")] * 3
    a = ops.abs(_flat(tensors))
    nonzero = a > 0
    peak = ops.max(ops.where(ops.isfinite(a), a, math.inf))
    low = ops.min(ops.where(nonzero, a, math.inf))
    tiny = ops.sum(ops.cast(nonzero & (a < FLOAT16_TINY / scale), "float32"))
    share = tiny / ops.maximum(ops.sum(ops.cast(nonzero, "float32")), 1.0)
    return [peak, low, share]


def _dead_fraction(tensors: list[Any]) -> Any:
    ops = keras.ops
    if not tensors:
        return ops.convert_to_tensor(_MISSING, "float32")
    first = tensors[0]
    units = first.shape[-1] if len(first.shape) > 1 else 1
    zero = ops.all(ops.equal(ops.reshape(first, (-1, units)), 0), axis=0)
    return ops.mean(ops.cast(zero, "float32"))


def _norm(tensors: list[Any]) -> Any:
    ops = keras.ops
    if not tensors:
        return ops.convert_to_tensor(_MISSING, "float32")
    return ops.sqrt(ops.sum(ops.square(_flat(tensors))))


class HealthProbe:
    """One model's per-layer statistics program (see the module's docstring).

    Args:
        model: a built Keras model, compiled (its loss is what is
            differentiated).
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.backend = keras.backend.backend()
        self.layers = _weighted_layers(model)
        self.paths = [layer.path for layer in self.layers]
        self.params = [
            sum(math.prod(v.shape) for v in layer.trainable_weights)
            for layer in self.layers
        ]
        self._variables = list(model.trainable_variables)
        # Backprop runs on the scaled loss: a gradient value g is g * scale
        # in float16, so it underflows below 2^-24 / scale.
        self.loss_scale = loss_scale(model)
        index = {id(v): i for i, v in enumerate(self._variables)}
        self._groups = [
            [index[id(v)] for v in layer.trainable_weights if id(v) in index]
            for layer in self.layers
        ]
        self._forward, self._reached, self._order = self._make_forward(index)
        self._run: Callable[..., Any] = getattr(self, f"_make_{self.backend}")()

    # -- the forward view --------------------------------------------------

    def _make_forward(
        self, index: dict[int, int]
    ) -> tuple[keras.Model | None, list[int], list[int]]:
        model = self.model
        try:
            inputs, output = _graph_ends(model)
        except (AttributeError, ValueError) as error:
            _LOG.info("No graph to read activations from (%s): gradients only.", error)
            return None, [], []
        reached, outputs = [], []
        for k, layer in enumerate(self.layers):
            try:
                outputs.append(layer.output)
            except (AttributeError, ValueError) as error:  # a shared layer
                _LOG.info("No single output for `%s` (%s).", layer.path, error)
                continue
            reached.append(k)
        forward = keras.Model(inputs, [output, outputs])
        try:
            order = [index[id(v)] for v in forward.trainable_variables]
        except KeyError:
            _LOG.info("The graph's variables are not the model's: gradients only.")
            return None, [], []
        return forward, reached, order

    def _evaluate(
        self,
        trainable: list[Any],
        non_trainable: list[Any],
        forward_non_trainable: list[Any],
        metrics: list[Any],
        x: Any,
        y: Any,
        sample_weight: Any,
    ) -> tuple[Any, list[list[Any]]]:
        model = self.model
        if self._forward is not None:
            (y_pred, outs), _, losses = self._forward.stateless_call(
                [trainable[i] for i in self._order],
                forward_non_trainable,
                x,
                return_losses=True,
                training=False,
            )
            by_layer: list[list[Any]] = [[] for _ in self.layers]
            for k, out in zip(self._reached, outs, strict=True):
                by_layer[k] = _floats(keras.tree.flatten(out))
        else:
            kwargs = {"training": False} if _compat.call_has_training_arg(model) else {}
            y_pred, _, losses = model.stateless_call(
                trainable, non_trainable, x, return_losses=True, **kwargs
            )
            by_layer = [[] for _ in self.layers]
        with _compat.losses_override(model, list(losses) if losses else []):
            loss, _ = model.stateless_compute_loss(
                trainable,
                non_trainable,
                metrics,
                x=x,
                y=y,
                y_pred=y_pred,
                sample_weight=sample_weight,
                training=False,
            )
        return loss, by_layer

    def _stats(
        self,
        loss: Any,
        outputs: list[list[Any]],
        grads: list[Any],
        trainable: list[Any],
        before: list[Any] | None,
    ) -> Any:
        ops = keras.ops
        missing = ops.convert_to_tensor(_MISSING, "float32")
        rows = []
        for k, group in enumerate(self._groups):
            g = _floats([grads[i] for i in group])
            w = _floats([trainable[i] for i in group])
            weight_norm = _norm(w)
            if before is None or not w:
                ratio = missing
            else:
                moved = _norm(
                    [
                        wi - ops.cast(before[i], "float32")
                        for wi, i in zip(w, group, strict=True)
                    ]
                )
                ratio = moved / ops.maximum(weight_norm, 1e-30)
            acts = outputs[k]
            act_max, act_low, act_tiny = _value_stats(acts)
            grad_max, grad_low, grad_tiny = _value_stats(g, self.loss_scale)
            rows.append(
                ops.stack(
                    [
                        _norm(g),
                        ratio,
                        weight_norm,
                        act_max,
                        act_low,
                        grad_max,
                        grad_low,
                        _dead_fraction(acts),
                        act_tiny,
                        grad_tiny,
                    ]
                )
            )
        flat = [ops.reshape(ops.stack(rows), (-1,))] if rows else []
        return ops.concatenate([*flat, ops.reshape(ops.cast(loss, "float32"), (1,))])

    # -- backends ----------------------------------------------------------

    def _make_jax(self) -> Callable[..., Any]:
        import jax

        def program(trainable: list[Any], before: Any, *rest: Any) -> Any:
            def loss(values: list[Any]) -> Any:
                return self._evaluate(values, *rest)

            (value, outs), grads = jax.value_and_grad(loss, has_aux=True)(trainable)
            return self._stats(value, outs, grads, trainable, before)

        return jax.jit(program)

    def _make_tensorflow(self) -> Callable[..., Any]:
        import tensorflow as tf

        def program(trainable: list[Any], before: Any, *rest: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(trainable)
                value, outs = self._evaluate(trainable, *rest)
            grads = tape.gradient(
                value, trainable, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            return self._stats(value, outs, grads, trainable, before)

        function = tf.function(program, autograph=False)
        _compat.skip_tracing_warning(function)
        return function

    def _make_torch(self) -> Callable[..., Any]:
        import torch

        def program(trainable: list[Any], before: Any, *rest: Any) -> Any:
            leaves = [t.detach().requires_grad_(True) for t in trainable]
            value, outs = self._evaluate(leaves, *rest)
            raw = torch.autograd.grad(value, leaves, allow_unused=True)
            grads = [
                torch.zeros_like(leaf) if grad is None else grad
                for leaf, grad in zip(leaves, raw, strict=True)
            ]
            with torch.no_grad():
                detached = [[o.detach() for o in out] for out in outs]
                return self._stats(
                    value.detach(),
                    detached,
                    grads,
                    [leaf.detach() for leaf in leaves],
                    before,
                )

        return program

    # -- public ------------------------------------------------------------

    def matches(self) -> bool:
        """Whether the model still has the variables the program was made for."""
        return len(self._variables) == len(self.model.trainable_variables) and all(
            a is b
            for a, b in zip(
                self._variables, self.model.trainable_variables, strict=True
            )
        )

    def copy_weights(self) -> list[Any]:
        """The trainable weights' values now, copied on the device."""
        values = [v.value for v in self.model.trainable_variables]
        # On JAX too: the train step donates the state's buffers.
        if self.backend == "torch":
            return [value.detach().clone() for value in values]
        return [keras.ops.copy(value) for value in values]

    def bind(self, x: Any, y: Any = None, sample_weight: Any = None) -> tuple[Any, ...]:
        """The sample batch as device tensors, converted once."""

        def convert(value: Any) -> Any:
            return None if value is None else keras.ops.convert_to_tensor(value)

        return tuple(
            None if part is None else keras.tree.map_structure(convert, part)
            for part in (x, y, sample_weight)
        )

    def sample(
        self, step: int, data: tuple[Any, ...], before: list[Any] | None = None
    ) -> tuple[float, list[LayerStats]]:
        """Runs the program on the model's current state.

        Args:
            step: the training step the rows are labelled with.
            data: `bind(x, y, sample_weight)`.
            before: `copy_weights()` from before the last training step, for
                the update ratio; `None` leaves it unmeasured.

        Returns:
            `(loss on the sample, one LayerStats per layer, in forward order)`.
        """
        model = self.model
        trainable = [self._tensor(v.value) for v in model.trainable_variables]
        non_trainable = [self._tensor(v.value) for v in model.non_trainable_variables]
        forward_non_trainable = (
            []
            if self._forward is None
            else [self._tensor(v.value) for v in self._forward.non_trainable_variables]
        )
        metrics = [self._tensor(v.value) for v in model.metrics_variables]
        vector = self._run(
            trainable, before, non_trainable, forward_non_trainable, metrics, *data
        )
        host = np.asarray(keras.ops.convert_to_numpy(vector), dtype="float64")
        loss = float(host[-1])
        table = host[:-1].reshape(len(self.layers), len(STATISTICS))
        rows = []
        for k, path in enumerate(self.paths):
            values: dict[str, float | None] = {}
            for name, value in zip(STATISTICS, table[k], strict=True):
                value = float(value)
                if value == _MISSING or (
                    name.endswith("min_nonzero") and value == math.inf
                ):
                    values[name] = None
                else:
                    values[name] = value
            rows.append(
                LayerStats(step=step, layer=path, params=int(self.params[k]), **values)
            )
        return loss, rows

    def _tensor(self, value: Any) -> Any:
        if self.backend == "torch":
            return value.detach()
        if self.backend == "tensorflow":
            return keras.ops.convert_to_tensor(value)
        return value
