"""PruneLowMagnitude: the wrapper that zeroes a layer's smallest weights on a schedule.

How it works, on every backend:

- The wrapper adds non-trainable variables: a mask per pruned weight
  (`pruning_mask` for the first, of its shape, 1 = kept, 0 = pruned) and
  `pruning_step` (the number of training steps taken, over every `fit`). A
  built-in layer has one pruned weight (its kernel or embedding matrix); a
  `PrunableLayer` names its own.
- In `call(training=True)`, inside the compiled training step, it reads the
  schedule at `pruning_step`; when the schedule says so it recomputes the masks
  from the weights' magnitudes; then it advances `pruning_step`. The wrapped
  layer runs with its weights multiplied by their masks, so pruned weights get
  a zero gradient.
- Each pruned weight's variable gets a `MaskConstraint` (in `constraint`)
  that multiplies it by its mask right after each optimizer update, inside the
  compiled step, so the stored weight is exactly zero where the mask is,
  whatever the optimizer does (Adam's momentum, weight decay).
- `call(training=True)` refuses to run unless pruning is switched on
  (`enable_pruning()`, which `keras_bettermodels.callbacks.UpdatePruningMasks`
  calls at the start of `fit`): the check is plain Python, so it runs when the
  training step is traced (TF, JAX) or run (PyTorch); `recovery` leaves the
  model fit to train again after that refusal.

Which layers and weights can be pruned is in `prunable_layer`; the checks of
`block_size` and `sparsity_m_by_n` in `structure`; the masks in `masks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_bettermodels import _validation
from keras_bettermodels._compat import pruning as _compat
from keras_bettermodels._compat.layers import flatten_layers
from keras_bettermodels.pruning import prunable_layer
from keras_bettermodels.pruning import structure as patterns
from keras_bettermodels.pruning._moved import moved_names
from keras_bettermodels.pruning._updates import new_masks
from keras_bettermodels.pruning.constraint import MaskConstraint
from keras_bettermodels.pruning.recovery import recover_trainer_before_raising
from keras_bettermodels.pruning.schedules import PruningSchedule, resolve_schedule

__all__ = ["MISSING_CALLBACK", "PruneLowMagnitude", "pruning_wrappers"]

# Moved to their own modules; imported above as modules, not names, so that
# the old paths still warn (see `_moved`).
__getattr__ = moved_names(
    __name__,
    {
        "PRUNABLE_WEIGHTS": "keras_bettermodels.pruning.prunable_layer",
        "is_prunable": "keras_bettermodels.pruning.prunable_layer",
        "prunable_names": "keras_bettermodels.pruning.prunable_layer",
        "prunable_weight_name": "keras_bettermodels.pruning.prunable_layer",
        "BLOCK_POOLING_TYPES": "keras_bettermodels.pruning.structure",
        "M_BY_N_LAYERS": "keras_bettermodels.pruning.structure",
        "check_block_pooling_type": "keras_bettermodels.pruning.structure",
        "check_block_size": "keras_bettermodels.pruning.structure",
        "check_m_by_n": "keras_bettermodels.pruning.structure",
    },
)

_NO_GROUP = (
    'PruneLowMagnitude layer `{name}` has scope="global" but no group of '
    "layers to share its threshold with. UpdatePruningMasks sets it at the start "
    "of fit; in a custom training loop, call its `set_model(model)` and "
    "`on_train_begin()` before training."
)

MISSING_CALLBACK = (
    "PruneLowMagnitude layer `{name}` was called with training=True, but pruning "
    "is not switched on. Add the callback that updates the pruning step and "
    "masks: model.fit(..., callbacks=[keras_bettermodels.callbacks."
    "UpdatePruningMasks()]). In a custom training loop, call its "
    "`set_model(model)` and `on_train_begin()` before training."
)


@keras.saving.register_keras_serializable(package="keras_bettermodels")
class PruneLowMagnitude(keras.layers.Wrapper):
    """Wraps a layer and zeroes the weights of smallest magnitude, on a schedule.

    Magnitude pruning for Keras 3, on TensorFlow, JAX and PyTorch: the wrapped
    layer's kernel (Dense, Conv1D/2D/3D, DepthwiseConv2D) or embedding matrix
    (Embedding) gets a mask, a non-trainable variable. At the steps the
    `schedule` names, the mask is recomputed so that the scheduled fraction of
    the weights, those of smallest magnitude, is zero. Biases are not pruned.
    A custom layer that subclasses `PrunableLayer` names the weights to prune
    with `get_prunable_weights()` (its bias too, say); each gets its own mask.

    Pruned weights stay exactly zero through every optimizer step, including
    Adam's momentum and weight decay: a constraint re-applies the mask to the
    stored weight right after each update, inside the compiled step.

    Two structured patterns replace the unstructured one, as in TensorFlow
    Model Optimization: `block_size=(r, c)` prunes whole `r x c` blocks of a
    2-D weight (scored by their mean or largest magnitude), and
    `sparsity_m_by_n=(2, 4)` keeps the 2 largest of every 4 consecutive
    weights along the input axis (the pattern of the sparse Tensor Cores of
    Ampere and newer GPUs). With `sparsity_m_by_n` the schedule says when the
    masks are updated; the sparsity is always `1 - m / n`.

    Train with the `keras_bettermodels.callbacks.UpdatePruningMasks` callback:
    without it, `fit` raises an error that says to add it. The step counter,
    `pruning_step`, is a non-trainable variable saved with the model, so a
    second `fit` or a reloaded model continues the schedule where it stopped.
    Remove the wrappers for export with
    `keras_bettermodels.pruning.strip_pruning`.

    A layer created with `input_shape=` (or `input_dim=`) hands it to its
    wrapper, so that a `Sequential` model whose first layer is the wrapper is
    built at once, as with the bare layer.

    Args:
        layer: the layer to prune: a `Dense`, `Conv1D`, `Conv2D`, `Conv3D`,
            `DepthwiseConv2D` or `Embedding` (or a subclass), or a
            `PrunableLayer`, built or not. Quantized and LoRA-enabled layers
            are refused.
        schedule: a `keras_bettermodels.pruning.PruningSchedule`. Defaults to
            TensorFlow Model Optimization's default,
            `ConstantSparsity(0.5, begin_step=0)`.
        block_size: `(rows, cols)` of the blocks pruned whole, for 2-D
            weights (Dense, Embedding). Defaults to `(1, 1)`: single weights.
        block_pooling_type: how a block is scored: `"AVG"`, the mean
            magnitude of its weights, or `"MAX"`, the largest. Defaults to
            `"AVG"`.
        sparsity_m_by_n: `(m, n)`, such as `(2, 4)`: keep the `m` largest of
            every `n` consecutive weights along the input axis (Dense and
            Conv1D/2D/3D kernels; the input size must be a multiple of `n`).
            Defaults to `None`: unstructured.
        structure: `"units"` (Dense, EinsumDense) or `"filters"`
            (Conv1D/2D/3D): prune whole output units or filters, those of
            smallest L2 norm, with their bias, so that
            `keras_bettermodels.pruning.shrink` can remove them after
            `strip_pruning`. Defaults to `None`: single weights.
        scope: `"layer"`: the schedule's sparsity in this layer; `"global"`:
            one magnitude threshold across every wrapper of the model with
            `scope="global"` (set up by `UpdatePruningMasks` at the start of
            `fit`), so that the sparsity over all of them follows the schedule.
            Defaults to `"layer"`.
        pruning_schedule: TensorFlow Model Optimization's name for
            `schedule`; give one of the two.
        **kwargs: passed to `keras.layers.Layer`. The name defaults to
            `"prune_low_magnitude_" + layer.name` and the dtype policy to the
            layer's.

    Attributes:
        pruning_masks: the mask variables (non-trainable), one per pruned
            weight, in the order of `pruned_weights`; created at build.
        pruning_mask: the first of them.
        pruning_step: the step variable (non-trainable, int32), created at
            build.
        weight_name: the attribute of `layer` that is pruned, `"kernel"` or
            `"embeddings"`; `None` for a `PrunableLayer`.

    Raises:
        TypeError: if `layer` is not a Keras layer or `schedule` is not a
            `PruningSchedule`.
        ValueError: if `layer` has no weight that can be pruned, both
            `schedule` and `pruning_schedule` are given, `block_size`,
            `block_pooling_type` or `sparsity_m_by_n` is malformed,
            `block_size` and `sparsity_m_by_n` are both given, or the layer
            does not fit them (at construction); if a pruned weight is
            quantized or LoRA-enabled, not 2-D for `block_size`, or its input
            size is not a multiple of `n`, or `get_prunable_weights()` returns
            no float variable of the layer (at build).
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
        schedule: PruningSchedule | None = None,  # tfmot's positional order
        block_size: Sequence[int] = (1, 1),
        block_pooling_type: str = "AVG",
        sparsity_m_by_n: Sequence[int] | None = None,
        *,
        structure: str | None = None,
        scope: str = "layer",
        pruning_schedule: PruningSchedule | None = None,
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
        if not prunable_layer.is_prunable(layer):
            raise ValueError(
                _validation.invalid_value(
                    "layer",
                    "a layer with weights that can be pruned "
                    f"({prunable_layer.prunable_names()})",
                    layer,
                    f"A {type(layer).__name__} layer cannot be pruned.",
                )
            )
        block = patterns.check_block_size(block_size)
        pooling = patterns.check_block_pooling_type(block_pooling_type)
        m_by_n = patterns.check_m_by_n(sparsity_m_by_n)
        if block != (1, 1) and m_by_n is not None:
            raise ValueError(
                _validation.invalid_value(
                    "sparsity_m_by_n",
                    "None when `block_size` is given",
                    sparsity_m_by_n,
                    "Choose blocks or M-by-N sparsity, not both.",
                )
            )
        if (
            m_by_n is not None
            and not isinstance(layer, prunable_layer.PrunableLayer)
            and not isinstance(layer, patterns.M_BY_N_LAYERS)
        ):
            raise ValueError(
                _validation.invalid_value(
                    "sparsity_m_by_n",
                    "None for a layer without an input axis "
                    f"(M-by-N sparsity applies to "
                    f"{', '.join(c.__name__ for c in patterns.M_BY_N_LAYERS)})",
                    sparsity_m_by_n,
                )
            )
        structure = patterns.check_structure(structure)
        scope = patterns.check_scope(scope)
        patterns.check_layer_structure(layer, structure, scope, block, m_by_n)
        kwargs.setdefault("name", f"prune_low_magnitude_{layer.name}")
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        input_shape = _compat.input_shape_argument(layer)
        if input_shape is not None:
            # What `Sequential` builds its input from, as tfmot copies it.
            _compat.set_input_shape_argument(self, input_shape)
        self.schedule = schedule
        self.block_size = block
        self.block_pooling_type = pooling
        self.sparsity_m_by_n = m_by_n
        self.structure = structure
        self.scope = scope
        # scope="global": the wrappers that share the threshold (see
        # `set_pruning_group`), set by `UpdatePruningMasks`.
        # A holder, so that Keras does not track the other wrappers as ours.
        self._group = _Group()
        self.weight_name = prunable_layer.prunable_weight_name(layer)
        self.supports_masking = getattr(layer, "supports_masking", False)
        # Switched on (`enable_pruning`) for the length of a `fit`.
        self._pruning_enabled = False
        # JAX only: the masks computed by this step's forward pass, for the
        # constraints (see `MaskConstraint`).
        self._pending_masks: tuple[Any, ...] | None = None
        # PyTorch only: the step as a Python int (see `_advance_eagerly`).
        self._host_step: int | None = None

    def build(self, input_shape: Any = None) -> None:
        super().build(input_shape)
        weights = self.pruned_weights
        self._check_pruned_weights(weights)
        masks = []
        for index, weight in enumerate(weights):
            masks.append(
                self.add_weight(
                    name="pruning_mask" if index == 0 else f"pruning_mask_{index}",
                    shape=weight.shape,
                    initializer="ones",
                    dtype=weight.dtype,
                    trainable=False,
                    autocast=False,
                    aggregation="only_first_replica",
                )
            )
            if index == 0:
                # The step comes second, where models saved before `PrunableLayer`
                # (one mask per wrapper) have it.
                self.pruning_step = self.add_weight(
                    name="pruning_step",
                    shape=(),
                    initializer="zeros",
                    dtype="int32",
                    trainable=False,
                    aggregation="only_first_replica",
                )
        self.pruning_masks = masks
        self.pruning_mask = masks[0]
        for index, weight in enumerate(weights):
            weight.constraint = MaskConstraint(self, index, weight.constraint)
        self.built = True

    def _check_pruned_weights(self, weights: list[Any]) -> None:
        """Refuses weights the masks cannot follow (`ValueError`)."""
        where = (
            f"`{self.weight_name}`"
            if self.weight_name is not None
            else "every weight `get_prunable_weights()` returns"
        )
        if not weights or not all(
            isinstance(w, keras.Variable) and _is_float(w.dtype) for w in weights
        ):
            raise ValueError(
                _validation.invalid_value(
                    "layer",
                    f"a layer whose {where} is a float variable "
                    "(not quantized, no LoRA)",
                    self.layer,
                    "Prune before quantizing, and without LoRA."
                    if self.weight_name is not None
                    else "Return the layer's weights, created by its `build`.",
                )
            )
        if len({id(w) for w in weights}) != len(weights):
            raise ValueError(
                _validation.invalid_value(
                    "layer",
                    "a PrunableLayer whose `get_prunable_weights()` names each "
                    "weight once",
                    self.layer,
                )
            )
        for weight in weights:
            patterns.check_weight_fits(
                weight,
                weight.name if self.weight_name is None else self.weight_name,
                self.layer.name,
                self.block_size,
                self.sparsity_m_by_n,
            )
            if isinstance(weight.constraint, MaskConstraint):
                raise ValueError(
                    _validation.invalid_value(
                        "layer",
                        "a layer that is not already pruned by another "
                        "PruneLowMagnitude",
                        self.layer,
                    )
                )

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
        self._pending_masks = None
        self._host_step = None

    def disable_pruning(self) -> None:
        """Switches pruning off: a training step raises until `enable_pruning`.

        `UpdatePruningMasks` calls it at the end of `fit`.
        """
        self._pruning_enabled = False
        self._pending_masks = None
        self._host_step = None

    @property
    def pruned_weights(self) -> list[keras.Variable]:
        """The variables that are pruned, each with its mask in `pruning_masks`.

        The wrapped layer's kernel or embedding matrix, or what its
        `get_prunable_weights()` returns (after build).
        """
        if self.weight_name is None:
            return list(self.layer.get_prunable_weights())
        kernel = getattr(self.layer, self.weight_name)
        bias = getattr(self.layer, "bias", None)
        if self.structure is not None and self._bias_follows_units(kernel, bias):
            return [kernel, bias]  # a pruned unit's bias goes with it
        return [kernel]

    def _bias_follows_units(self, kernel: Any, bias: Any) -> bool:
        """Whether `bias` holds one value per unit, in the kernel's unit order."""
        if not isinstance(bias, keras.Variable):
            return False
        axes = patterns.unit_axes(self.layer, kernel.shape)
        return tuple(bias.shape) == tuple(kernel.shape[i] for i in axes)

    def set_pruning_group(self, wrappers: list[PruneLowMagnitude]) -> None:
        """Sets the wrappers whose weights share one threshold (`scope="global"`).

        `UpdatePruningMasks` calls it at the start of `fit` with every wrapper
        of the model whose scope is `"global"`, this one included.
        """
        self._group.wrappers = list(wrappers)

    @property
    def unit_count(self) -> int | None:
        """How many units (or filters) the kernel has, with `structure`; else `None`."""
        if self.structure is None or not self.built:
            return None
        kernel = self.pruned_weight
        axes = patterns.unit_axes(self.layer, kernel.shape)
        return int(np.prod([kernel.shape[i] for i in axes]))

    @property
    def pruned_weight(self) -> keras.Variable:
        """The first pruned variable: the kernel or embeddings of a built-in layer."""
        return self.pruned_weights[0]

    @property
    def pruned_weight_names(self) -> list[str]:
        """The names of `pruned_weights`: `weight_name`, or the variables' names."""
        if self.weight_name is not None:
            return [self.weight_name, "bias"][: len(self.pruned_weights)]
        return [weight.name for weight in self.pruned_weights]

    def call(self, inputs: Any, training: bool | None = None, **kwargs: Any) -> Any:
        if training:
            if not self._pruning_enabled:
                recover_trainer_before_raising()
                raise RuntimeError(MISSING_CALLBACK.format(name=self.name))
            masks = self._advance()
        else:
            masks = [mask.value for mask in self.pruning_masks]
        return self._call_masked(inputs, masks, kwargs)

    def _advance(self) -> list[Any]:
        """Updates the masks if the schedule says so, and advances the step."""
        if keras.backend.backend() == "torch":
            return self._advance_eagerly()
        step = self.pruning_step.value
        should_prune, sparsity = self.schedule(step)
        weights = self.pruned_weights
        old_masks = [mask.value for mask in self.pruning_masks]
        new_masks = ops.cond(
            should_prune,
            lambda: self._new_masks(weights, old_masks, sparsity),
            lambda: old_masks,
        )
        for mask, value in zip(self.pruning_masks, new_masks, strict=True):
            mask.assign(value)
        self.pruning_step.assign(ops.add(step, 1))
        # Read back after the assignments: TF orders the reads after the writes.
        masks = [mask.value for mask in self.pruning_masks]
        if keras.backend.backend() == "jax":
            self._pending_masks = tuple(masks)
        return masks

    def _advance_eagerly(self) -> list[Any]:
        """`_advance` for PyTorch, which runs eagerly: decide on the host.

        The step is mirrored in a Python int and the schedule read from a table
        computed on the CPU, so that a step costs no device-to-host copy, and
        the masks are written only when they change.
        """
        if self._host_step is None:
            self._host_step = int(ops.convert_to_numpy(self.pruning_step.value))
        step = self._host_step
        should_prune, sparsity = self.schedule._on_host(step)
        if should_prune:
            # Assigned before the forward pass reads them: autograd keeps the
            # masks for the backward pass, and they must not change in place
            # before then.
            old_masks = [mask.value for mask in self.pruning_masks]
            new_masks = self._new_masks(self.pruned_weights, old_masks, sparsity)
            for mask, value in zip(self.pruning_masks, new_masks, strict=True):
                mask.assign(value)
        self.pruning_step.assign(step + 1)
        self._host_step = step + 1
        return [mask.value for mask in self.pruning_masks]

    def _new_masks(
        self, weights: list[keras.Variable], old_masks: list[Any], sparsity: Any
    ) -> list[Any]:
        """The masks of `weights` at `sparsity`, computed on the device."""
        if self.scope == "global" and self._group.wrappers is None:
            raise RuntimeError(_NO_GROUP.format(name=self.name))
        return new_masks(self, weights, old_masks, sparsity)

    def _call_masked(
        self, inputs: Any, masks: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        """Runs the wrapped layer with its pruned weights multiplied by `masks`."""
        weights = self.pruned_weights
        pruned = {id(weight) for weight in weights}
        mapping = [(v, v.value) for v in self.layer.variables if id(v) not in pruned]
        for weight, mask in zip(weights, masks, strict=True):
            value = weight.value
            masked = ops.multiply(
                value, ops.cast(mask, keras.backend.standardize_dtype(value.dtype))
            )
            mapping.append((weight, masked))
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            outputs = self.layer(inputs, **kwargs)
        for loss in scope.losses:  # activity regularization of the wrapped layer
            self.add_loss(loss)
        return outputs

    def apply_mask(self) -> None:
        """Multiplies the stored weights by their masks, in place (eagerly)."""
        for weight, mask in zip(self.pruned_weights, self.pruning_masks, strict=True):
            weight.assign(ops.multiply(weight.value, mask.value))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(
        self, inputs: Any, training: bool | None = None, **kwargs: Any
    ) -> Any:
        # The wrapped layer's: from its `compute_output_shape` where it has
        # one, else from a symbolic call (a custom `PrunableLayer` may have
        # none), as Keras does for the layer itself.
        return self.layer.compute_output_spec(inputs, **kwargs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self.layer.compute_mask(inputs, mask)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "block_size": list(self.block_size),
            "block_pooling_type": self.block_pooling_type,
            "sparsity_m_by_n": (
                None if self.sparsity_m_by_n is None else list(self.sparsity_m_by_n)
            ),
            "structure": self.structure,
            "scope": self.scope,
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


class _Group:
    """The wrappers that share one threshold (`scope="global"`), or `None`."""

    def __init__(self) -> None:
        self.wrappers: list[PruneLowMagnitude] | None = None


def _is_float(dtype: Any) -> bool:
    return "float" in keras.backend.standardize_dtype(dtype)


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
