"""PruneLowMagnitude: a wrapper that zeroes a layer's smallest weights on a schedule.

How it works, on every backend:

- The wrapper adds two non-trainable variables: `pruning_mask` (the shape of
  the pruned weight, 1 = kept, 0 = pruned) and `pruning_step` (the number of
  training steps taken, over every `fit`).
- In `call(training=True)`, inside the compiled training step, it reads the
  schedule at `pruning_step`; when the schedule says so it recomputes the mask
  from the weights' magnitudes; then it advances `pruning_step`. The wrapped
  layer runs with its weight multiplied by the mask, so pruned weights get a
  zero gradient.
- The pruned weight's variable gets a constraint that multiplies it by the
  mask. Keras applies variable constraints right after each optimizer update,
  inside the compiled step, so the stored weight is exactly zero where the mask
  is, whatever the optimizer does (Adam's momentum, weight decay).
- `call(training=True)` refuses to run unless
  `keras_bettermodels.callbacks.UpdatePruningMasks` switched pruning on: the
  check is plain Python, so it runs when the training step is traced (TF, JAX)
  or run (PyTorch).
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_bettermodels import _validation
from keras_bettermodels.pruning.schedules import PruningSchedule

__all__ = [
    "PRUNABLE_WEIGHTS",
    "PruneLowMagnitude",
    "magnitude_mask",
    "prunable_weight_name",
]

# Layer class -> attribute holding the weight that is pruned (biases are not).
PRUNABLE_WEIGHTS: dict[type, str] = {
    keras.layers.Dense: "kernel",
    keras.layers.Conv1D: "kernel",
    keras.layers.Conv2D: "kernel",
    keras.layers.Conv3D: "kernel",
    keras.layers.DepthwiseConv2D: "kernel",
    keras.layers.Embedding: "embeddings",
}

MISSING_CALLBACK = (
    "PruneLowMagnitude layer `{name}` was called with training=True, but pruning "
    "is not switched on. Add the callback that updates the pruning step and "
    "masks: model.fit(..., callbacks=[keras_bettermodels.callbacks."
    "UpdatePruningMasks()]). In a custom training loop, call its "
    "`set_model(model)` and `on_train_begin()` before training."
)


def prunable_weight_name(layer: keras.layers.Layer) -> str | None:
    """The attribute name of the weight `PruneLowMagnitude` prunes in `layer`.

    Args:
        layer: a Keras layer.

    Returns:
        `"kernel"` for Dense, Conv1D/2D/3D and DepthwiseConv2D (and their
        subclasses), `"embeddings"` for Embedding, `None` for any other layer.
    """
    for cls, name in PRUNABLE_WEIGHTS.items():
        if isinstance(layer, cls):
            return name
    return None


def _prunable_names() -> str:
    return ", ".join(cls.__name__ for cls in PRUNABLE_WEIGHTS)


def magnitude_mask(weights: Any, sparsity: Any) -> Any:
    """The mask that zeroes the `sparsity` fraction of `weights` smallest in magnitude.

    As in TensorFlow Model Optimization: the `max(round(n * (1 - sparsity)), 1)`
    weights of largest magnitude are kept (weights tied with the smallest kept
    one are kept too). Works on tensors inside a compiled step.

    Args:
        weights: a float tensor.
        sparsity: a float scalar (tensor) in [0, 1).

    Returns:
        A tensor of `weights`' shape and dtype, 1 where a weight is kept and 0
        where it is pruned.
    """
    magnitudes = ops.abs(weights)
    size = int(np.prod(weights.shape))
    keep = ops.round(ops.multiply(float(size), ops.subtract(1.0, sparsity)))
    keep = ops.maximum(ops.cast(keep, "int32"), 1)
    ascending = ops.sort(ops.reshape(magnitudes, (-1,)))
    threshold = ops.take(ascending, ops.reshape(ops.subtract(size, keep), (1,)))
    threshold = ops.reshape(threshold, ())
    return ops.cast(ops.greater_equal(magnitudes, threshold), weights.dtype)


class _MaskConstraint:
    """Keeps the pruned weight exactly zero after every optimizer update.

    Keras calls `variable.constraint(variable)` right after applying the
    gradients, inside the compiled training step. Any constraint the layer
    already had runs first.
    """

    def __init__(self, wrapper: PruneLowMagnitude, previous: Any) -> None:
        self.wrapper = wrapper
        self.previous = previous

    def __call__(self, weights: Any) -> Any:
        if self.previous is not None:
            weights = self.previous(weights)
        mask = self.wrapper._mask_for_constraint()
        if mask is None:
            return weights
        return ops.multiply(weights, ops.cast(mask, weights.dtype))


_JAX_STATE_KEYS = (
    "trainable_variables",
    "non_trainable_variables",
    "optimizer_variables",
    "metrics_variables",
)


def reattach_jax_state(model: Any, state: Any) -> bool:
    """Gives a JAX model back the variable values its trainer detached.

    Before its first training step, Keras' JAX trainer detaches the values of
    the model's variables and holds them in a `state` tuple (trainable,
    non-trainable, optimizer, metrics variables) that it passes to the step;
    it reattaches them only after a step has run. An error raised before that
    would leave the model without weights. This reattaches `state`.

    Args:
        model: a Keras model on the JAX backend.
        state: the trainer's state tuple.

    Returns:
        Whether `state` matched the model and was reattached.
    """
    if not hasattr(model, "jax_state_sync") or not isinstance(state, list | tuple):
        return False
    if len(state) != len(_JAX_STATE_KEYS):
        return False
    expected = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables if model.optimizer is not None else [],
        model.metrics_variables,
    )
    if any(
        not isinstance(values, list | tuple) or len(values) != len(variables)
        for values, variables in zip(state, expected, strict=True)
    ):
        return False
    from keras.src.backend.common import global_state

    model._jax_state = dict(zip(_JAX_STATE_KEYS, state, strict=True))
    model._jax_state_synced = False
    # Called while the step is traced, inside the model's stateless scope,
    # where assignments would only be recorded: step out of it.
    scope = global_state.get_global_attribute("stateless_scope")
    global_state.set_global_attribute("stateless_scope", None)
    try:
        model.jax_state_sync()
    finally:
        global_state.set_global_attribute("stateless_scope", scope)
    return True


def _recover_trainer_before_raising() -> None:
    """Best effort: leave the model fit to train again after the error.

    The error is raised while the first training step is traced, inside the
    trainer's `fit` (or `train_on_batch`), a few frames up the stack. On JAX
    that trainer has detached the model's variable values into a local `state`
    and would reattach them only after a step: reattach them now, so that the
    error does not cost the user the model's weights. On TensorFlow the failed
    trace spoils the `tf.function`: drop it, so that the next `fit` builds a new
    one.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.Model) and frame.f_code.co_name in (
            "fit",
            "train_on_batch",
        ):
            if keras.backend.backend() == "jax":
                reattach_jax_state(owner, frame.f_locals.get("state"))
            owner.train_function = None
            return
        frame = frame.f_back


def _stateless_scope() -> Any:
    from keras.src.backend.common.stateless_scope import (
        get_stateless_scope,
        in_stateless_scope,
    )

    return get_stateless_scope() if in_stateless_scope() else None


@keras.saving.register_keras_serializable(package="keras_bettermodels")
class PruneLowMagnitude(keras.layers.Wrapper):
    """Wraps a layer and zeroes the weights of smallest magnitude, on a schedule.

    Magnitude pruning for Keras 3, on TensorFlow, JAX and PyTorch: the wrapped
    layer's kernel (Dense, Conv1D/2D/3D, DepthwiseConv2D) or embedding matrix
    (Embedding) gets a mask, a non-trainable variable. At the steps the
    `schedule` names, the mask is recomputed so that the scheduled fraction of
    the weights, those of smallest magnitude, is zero. Biases are not pruned.

    Pruned weights stay exactly zero through every optimizer step, including
    Adam's momentum and weight decay: a constraint re-applies the mask to the
    stored weight right after each update, inside the compiled step.

    Train with the `keras_bettermodels.callbacks.UpdatePruningMasks` callback:
    without it, `fit` raises an error that says to add it. The step counter,
    `pruning_step`, is a non-trainable variable saved with the model, so a
    second `fit` or a reloaded model continues the schedule where it stopped.
    Remove the wrappers for export with
    `keras_bettermodels.pruning.strip_pruning`.

    Args:
        layer: the layer to prune: a `Dense`, `Conv1D`, `Conv2D`, `Conv3D`,
            `DepthwiseConv2D` or `Embedding` (or a subclass), built or not.
            Quantized and LoRA-enabled layers are refused.
        schedule: a `keras_bettermodels.pruning.PruningSchedule`, such as
            `ConstantSparsity(0.8, begin_step=0)`.
        **kwargs: passed to `keras.layers.Layer`. The name defaults to
            `"prune_low_magnitude_" + layer.name` and the dtype policy to the
            layer's.

    Attributes:
        pruning_mask: the mask variable (non-trainable), created at build.
        pruning_step: the step variable (non-trainable, int32), created at
            build.
        weight_name: the attribute of `layer` that is pruned, `"kernel"` or
            `"embeddings"`.

    Raises:
        TypeError: if `layer` is not a Keras layer or `schedule` is not a
            `PruningSchedule`.
        ValueError: if `layer` has no weight that can be pruned (at
            construction) or its weight is quantized or LoRA-enabled (at
            build).
        RuntimeError: when called with `training=True` while pruning is not
            switched on by `UpdatePruningMasks`.

    Example:

    ```python
    import keras
    from keras_bettermodels.callbacks import UpdatePruningMasks
    from keras_bettermodels.layers import PruneLowMagnitude
    from keras_bettermodels.pruning import PolynomialDecay

    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000)
    model = keras.Sequential([
        keras.Input((64,)),
        PruneLowMagnitude(keras.layers.Dense(256, activation="relu"),
                          schedule=schedule),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=20, callbacks=[UpdatePruningMasks()])
    ```

    References:
        Michael Zhu and Suyog Gupta, "To prune, or not to prune: exploring the
        efficacy of pruning for model compression", ICLR Workshop, 2018.
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        *,
        schedule: PruningSchedule,
        **kwargs: Any,
    ) -> None:
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(_validation.invalid_type("layer", "a Keras layer", layer))
        if isinstance(layer, PruneLowMagnitude):
            raise ValueError(
                _validation.invalid_value(
                    "layer",
                    "a layer that is not already wrapped in PruneLowMagnitude",
                    layer,
                )
            )
        weight_name = prunable_weight_name(layer)
        if weight_name is None:
            raise ValueError(
                _validation.invalid_value(
                    "layer",
                    f"a layer with weights that can be pruned ({_prunable_names()})",
                    layer,
                    f"A {type(layer).__name__} layer cannot be pruned.",
                )
            )
        if not isinstance(schedule, PruningSchedule):
            raise TypeError(
                _validation.invalid_type(
                    "schedule",
                    "a keras_bettermodels.pruning.PruningSchedule, such as "
                    "ConstantSparsity(0.8, begin_step=0)",
                    schedule,
                )
            )
        kwargs.setdefault("name", f"prune_low_magnitude_{layer.name}")
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        self.schedule = schedule
        self.weight_name = weight_name
        self.supports_masking = getattr(layer, "supports_masking", False)
        # Switched on by UpdatePruningMasks for the length of a `fit`.
        self._pruning_enabled = False
        # JAX only: the mask computed by this step's forward pass, for the
        # constraint (see `_mask_for_constraint`).
        self._pending_mask: Any = None
        # PyTorch only: the step as a Python int (see `_advance_eagerly`).
        self._host_step: int | None = None

    def build(self, input_shape: Any = None) -> None:
        super().build(input_shape)
        weight = getattr(self.layer, self.weight_name, None)
        if not isinstance(weight, keras.Variable) or not _is_float(weight.dtype):
            raise ValueError(
                _validation.invalid_value(
                    "layer",
                    f"a layer whose `{self.weight_name}` is a float variable "
                    "(not quantized, no LoRA)",
                    self.layer,
                    "Prune before quantizing, and without LoRA.",
                )
            )
        if isinstance(weight.constraint, _MaskConstraint):
            raise ValueError(
                _validation.invalid_value(
                    "layer",
                    "a layer that is not already pruned by another PruneLowMagnitude",
                    self.layer,
                )
            )
        self.pruning_mask = self.add_weight(
            name="pruning_mask",
            shape=weight.shape,
            initializer="ones",
            dtype=weight.dtype,
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
        )
        self.pruning_step = self.add_weight(
            name="pruning_step",
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
        )
        weight.constraint = _MaskConstraint(self, weight.constraint)
        self.built = True

    @property
    def pruned_weight(self) -> keras.Variable:
        """The variable that is pruned: the wrapped layer's kernel or embeddings."""
        return getattr(self.layer, self.weight_name)

    def call(self, inputs: Any, training: bool | None = None, **kwargs: Any) -> Any:
        if training:
            if not self._pruning_enabled:
                _recover_trainer_before_raising()
                raise RuntimeError(MISSING_CALLBACK.format(name=self.name))
            mask = self._advance()
        else:
            mask = self.pruning_mask.value
        return self._call_masked(inputs, mask, kwargs)

    def _advance(self) -> Any:
        """Updates the mask if the schedule says so, and advances the step."""
        if keras.backend.backend() == "torch":
            return self._advance_eagerly()
        step = self.pruning_step.value
        should_prune, sparsity = self.schedule(step)
        old_mask = self.pruning_mask.value
        new_mask = ops.cond(
            should_prune,
            lambda: self._new_mask(old_mask, sparsity),
            lambda: old_mask,
        )
        self.pruning_mask.assign(new_mask)
        self.pruning_step.assign(ops.add(step, 1))
        # Read back after the assignment: TF orders the read after the write.
        mask = self.pruning_mask.value
        if keras.backend.backend() == "jax":
            self._pending_mask = mask
        return mask

    def _advance_eagerly(self) -> Any:
        """`_advance` for PyTorch, which runs eagerly: decide on the host.

        The step is mirrored in a Python int and the schedule read from a table
        computed on the CPU, so that a step costs no device-to-host copy, and
        the mask is written only when it changes.
        """
        if self._host_step is None:
            self._host_step = int(ops.convert_to_numpy(self.pruning_step.value))
        step = self._host_step
        should_prune, sparsity = self.schedule._on_host(step)
        if should_prune:
            # Assigned before the forward pass reads it: autograd keeps the
            # mask for the backward pass, and it must not change in place
            # before then.
            self.pruning_mask.assign(self._new_mask(self.pruning_mask.value, sparsity))
        self.pruning_step.assign(step + 1)
        self._host_step = step + 1
        return self.pruning_mask.value

    def _new_mask(self, old_mask: Any, sparsity: Any) -> Any:
        weights = ops.multiply(ops.stop_gradient(self._read_unscaled()), old_mask)
        return ops.cast(magnitude_mask(weights, sparsity), old_mask.dtype)

    def _read_unscaled(self) -> Any:
        """The pruned weight in its own dtype, not autocast (for magnitudes)."""
        from keras.src.backend.common.variables import AutocastScope

        with AutocastScope(None):
            return self.pruned_weight.value

    def _call_masked(self, inputs: Any, mask: Any, kwargs: dict[str, Any]) -> Any:
        """Runs the wrapped layer with its pruned weight multiplied by `mask`."""
        weight = self.pruned_weight
        value = weight.value
        masked = ops.multiply(
            value, ops.cast(mask, keras.backend.standardize_dtype(value.dtype))
        )
        mapping = [(v, v.value) for v in self.layer.variables if v is not weight]
        mapping.append((weight, masked))
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            outputs = self.layer(inputs, **kwargs)
        for loss in scope.losses:  # activity regularization of the wrapped layer
            self.add_loss(loss)
        return outputs

    def _mask_for_constraint(self) -> Any:
        """The mask to apply after an optimizer update, or `None` if unknown.

        On TensorFlow and PyTorch the optimizer runs where the mask variable can
        be read. JAX's trainer runs the optimizer in a stateless scope that
        holds only the trainable and optimizer variables; there the mask comes
        from this step's forward pass, which computed it from stop-gradient
        values, so it belongs to the same compiled step.
        """
        scope = _stateless_scope()
        if scope is None:
            return self.pruning_mask.value
        value = scope.get_current_value(self.pruning_mask)
        if value is not None:
            return value
        return self._pending_mask

    def apply_mask(self) -> None:
        """Multiplies the stored weight by the mask, in place (eagerly)."""
        weight = self.pruned_weight
        weight.assign(ops.multiply(weight.value, self.pruning_mask.value))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self.layer.compute_mask(inputs, mask)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "schedule": keras.saving.serialize_keras_object(self.schedule),
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> PruneLowMagnitude:
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(
            config.pop("layer"), custom_objects=custom_objects
        )
        schedule = keras.saving.deserialize_keras_object(
            config.pop("schedule"), custom_objects=custom_objects
        )
        return cls(layer, schedule=schedule, **config)


def _is_float(dtype: Any) -> bool:
    return "float" in keras.backend.standardize_dtype(dtype)
