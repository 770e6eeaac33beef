"""PruneLowMagnitude: the wrapper that zeroes a layer's smallest weights on a schedule.

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
- `call(training=True)` refuses to run unless pruning is switched on
  (`enable_pruning()`, which `keras_bettermodels.callbacks.UpdatePruningMasks`
  calls at the start of `fit`): the check is plain Python, so it runs when the
  training step is traced (TF, JAX) or run (PyTorch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_bettermodels import _validation
from keras_bettermodels._compat import pruning as _compat
from keras_bettermodels._compat.layers import flatten_layers
from keras_bettermodels.pruning.masks import block_mask, m_by_n_mask, magnitude_mask
from keras_bettermodels.pruning.recovery import recover_trainer_before_raising
from keras_bettermodels.pruning.schedules import PruningSchedule, resolve_schedule

__all__ = [
    "MISSING_CALLBACK",
    "PRUNABLE_WEIGHTS",
    "PruneLowMagnitude",
    "prunable_weight_name",
    "pruning_wrappers",
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


# Layers whose pruned weight has an input axis at -2, for M-by-N sparsity.
M_BY_N_LAYERS: tuple[type, ...] = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
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

    Two structured patterns replace the unstructured one, as in TensorFlow
    Model Optimization: `block_size=(r, c)` prunes whole `r x c` blocks of a
    2-D weight (scored by their mean magnitude), and `sparsity_m_by_n=(2, 4)`
    keeps the 2 largest of every 4 consecutive weights along the input axis
    (the pattern of the sparse Tensor Cores of Ampere and newer GPUs). With
    `sparsity_m_by_n` the schedule says when the masks are updated; the
    sparsity is always `1 - m / n`.

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
        pruning_schedule: TensorFlow Model Optimization's name for
            `schedule`; give one of the two.
        block_size: `(rows, cols)` of the blocks pruned whole, for a 2-D
            weight (Dense, Embedding). Defaults to `(1, 1)`: single weights.
        sparsity_m_by_n: `(m, n)`, such as `(2, 4)`: keep the `m` largest of
            every `n` consecutive weights along the input axis (Dense and
            Conv1D/2D/3D kernels; the input size must be a multiple of `n`).
            Defaults to `None`: unstructured.
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
        ValueError: if `layer` has no weight that can be pruned, both
            `schedule` and `pruning_schedule` (or neither) are given,
            `block_size` or `sparsity_m_by_n` is malformed, both are given, or
            the layer does not fit them (at construction); if the weight is
            quantized or LoRA-enabled, not 2-D for `block_size`, or its input
            size is not a multiple of `n` (at build).
        RuntimeError: when called with `training=True` while pruning is not
            switched on by `UpdatePruningMasks`.

    Example:

    ```python
    import keras
    from keras_bettermodels.callbacks import UpdatePruningMasks
    from keras_bettermodels.pruning import PolynomialDecay, PruneLowMagnitude

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
        schedule: PruningSchedule | None = None,  # 2nd positional, as tfmot's
        *,
        pruning_schedule: PruningSchedule | None = None,
        block_size: Sequence[int] = (1, 1),
        sparsity_m_by_n: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        schedule = resolve_schedule(schedule, pruning_schedule)
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
        block = check_block_size(block_size)
        m_by_n = check_m_by_n(sparsity_m_by_n)
        if block != (1, 1) and m_by_n is not None:
            raise ValueError(
                _validation.invalid_value(
                    "sparsity_m_by_n",
                    "None when `block_size` is given",
                    sparsity_m_by_n,
                    "Choose blocks or M-by-N sparsity, not both.",
                )
            )
        if m_by_n is not None and not isinstance(layer, M_BY_N_LAYERS):
            raise ValueError(
                _validation.invalid_value(
                    "sparsity_m_by_n",
                    "None for a layer without an input axis "
                    f"(M-by-N sparsity applies to "
                    f"{', '.join(c.__name__ for c in M_BY_N_LAYERS)})",
                    sparsity_m_by_n,
                )
            )
        kwargs.setdefault("name", f"prune_low_magnitude_{layer.name}")
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        self.schedule = schedule
        self.block_size = block
        self.sparsity_m_by_n = m_by_n
        self.weight_name = weight_name
        self.supports_masking = getattr(layer, "supports_masking", False)
        # Switched on (`enable_pruning`) for the length of a `fit`.
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
        if self.block_size != (1, 1) and len(weight.shape) != 2:
            raise ValueError(
                _validation.invalid_value(
                    "block_size",
                    f"(1, 1) for a weight that is not 2-D (`{self.weight_name}` "
                    f"of `{self.layer.name}` has shape {tuple(weight.shape)})",
                    self.block_size,
                )
            )
        if self.sparsity_m_by_n is not None:
            n = self.sparsity_m_by_n[1]
            inputs = int(weight.shape[-2])
            if inputs % n:
                raise ValueError(
                    _validation.invalid_value(
                        "sparsity_m_by_n",
                        f"(m, n) with n dividing the input size {inputs} of "
                        f"`{self.layer.name}`",
                        self.sparsity_m_by_n,
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
    def pruning_enabled(self) -> bool:
        """Whether training steps may run (`enable_pruning` was called)."""
        return self._pruning_enabled

    def enable_pruning(self) -> None:
        """Switches pruning on: training steps advance the step and update masks.

        `UpdatePruningMasks` calls it at the start of `fit`. The step is read
        again from `pruning_step`, so the schedule continues where it stopped.
        """
        self._pruning_enabled = True
        self._pending_mask = None
        self._host_step = None

    def disable_pruning(self) -> None:
        """Switches pruning off: a training step raises until `enable_pruning`.

        `UpdatePruningMasks` calls it at the end of `fit`.
        """
        self._pruning_enabled = False
        self._pending_mask = None
        self._host_step = None

    @property
    def pruned_weight(self) -> keras.Variable:
        """The variable that is pruned: the wrapped layer's kernel or embeddings."""
        return getattr(self.layer, self.weight_name)

    def call(self, inputs: Any, training: bool | None = None, **kwargs: Any) -> Any:
        if training:
            if not self._pruning_enabled:
                recover_trainer_before_raising()
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
        if self.sparsity_m_by_n is not None:
            m, n = self.sparsity_m_by_n
            mask = m_by_n_mask(weights, m, n)
        elif self.block_size != (1, 1):
            mask = block_mask(weights, sparsity, self.block_size)
        else:
            mask = magnitude_mask(weights, sparsity)
        return ops.cast(mask, old_mask.dtype)

    def _read_unscaled(self) -> Any:
        """The pruned weight in its own dtype, not autocast (for magnitudes)."""
        with _compat.autocast_disabled():
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
        scope = _compat.current_stateless_scope()
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
            "block_size": list(self.block_size),
            "sparsity_m_by_n": (
                None if self.sparsity_m_by_n is None else list(self.sparsity_m_by_n)
            ),
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


def check_block_size(block_size: Any) -> tuple[int, int]:
    """`block_size` as a pair of positive ints, or a `ValueError`."""
    if (
        not isinstance(block_size, Sequence)
        or isinstance(block_size, str)
        or len(block_size) != 2
        or not all(_validation._is_int(d) and d >= 1 for d in block_size)
    ):
        raise ValueError(
            _validation.invalid_value(
                "block_size", "a pair of positive integers (rows, cols)", block_size
            )
        )
    return int(block_size[0]), int(block_size[1])


def check_m_by_n(sparsity_m_by_n: Any) -> tuple[int, int] | None:
    """`sparsity_m_by_n` as `(m, n)` with `0 < m < n`, `None`, or a `ValueError`."""
    if sparsity_m_by_n is None:
        return None
    if (
        not isinstance(sparsity_m_by_n, Sequence)
        or isinstance(sparsity_m_by_n, str)
        or len(sparsity_m_by_n) != 2
        or not all(_validation._is_int(d) for d in sparsity_m_by_n)
        or not 0 < sparsity_m_by_n[0] < sparsity_m_by_n[1]
    ):
        raise ValueError(
            _validation.invalid_value(
                "sparsity_m_by_n",
                "None or a pair of integers (m, n) with 0 < m < n, such as (2, 4)",
                sparsity_m_by_n,
            )
        )
    return int(sparsity_m_by_n[0]), int(sparsity_m_by_n[1])


def pruning_wrappers(model: keras.layers.Layer) -> list[PruneLowMagnitude]:
    """Every `PruneLowMagnitude` layer in `model`, nested ones included.

    Args:
        model: a Keras model or layer.

    Returns:
        The wrappers, in the order Keras lists the layers.
    """
    return [
        layer for layer in flatten_layers(model) if isinstance(layer, PruneLowMagnitude)
    ]
