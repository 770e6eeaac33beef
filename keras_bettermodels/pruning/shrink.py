"""shrink: rebuild a stripped model without its pruned units and filters.

After `prune_low_magnitude(..., structure="units" | "filters")`, training and
`strip_pruning`, whole output units of Dense layers and filters of
convolutions are zero, bias included: Keras still computes them. `shrink`
rebuilds the model with those units gone, and with the matching input rows
(Dense) or input channels (convolutions) of the layers that consume them, so
the model is smaller and faster and predicts the same.

How: the model is rebuilt layer by layer in graph order (Sequential models as
a chain, functional ones through `keras.models.clone_model`'s
`call_function`), and each tensor carries which of its channels (last axis)
are gone and the constant value each gone channel had: a removed unit
outputs `activation(0)` everywhere, which is 0 for ReLU but not for
everything downstream (BatchNormalization shifts it). A consumer Dense or
convolution adds that constant's contribution to its bias, exactly; where it
cannot (a `"same"`-padded convolution sees the constant cut off at the
borders, so does an average pooling with `"same"` padding), or where a layer
mixes channels in a way this cannot follow, `shrink` refuses and names the
layer. Units whose output is a model output are kept: the output's shape is
the model's contract.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn

import keras
import numpy as np
from keras import ops

from keras_bettermodels import _validation
from keras_bettermodels._compat import pruning as _compat
from keras_bettermodels.pruning.wrapper import pruning_wrappers

__all__ = ["shrink"]

_PRODUCERS = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)
# Per channel, identity at inference.
_PASS = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.ActivityRegularization,
    keras.layers.Identity,
)
# Element-wise: a constant channel stays constant.
_ELEMENTWISE = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
)
_NOT_ELEMENTWISE = ("softmax", "log_softmax")
_POOLING = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
)
_AVERAGE_POOLING = (
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)
_MERGE = {
    keras.layers.Add: lambda values: np.sum(values, axis=0),
    keras.layers.Subtract: lambda values: values[0] - values[1],
    keras.layers.Multiply: lambda values: np.prod(values, axis=0),
    keras.layers.Average: lambda values: np.mean(values, axis=0),
    keras.layers.Maximum: lambda values: np.max(values, axis=0),
    keras.layers.Minimum: lambda values: np.min(values, axis=0),
}


@dataclasses.dataclass(frozen=True)
class _Gone:
    """The channels (last axis) of a tensor that are gone, and their constant values.

    Attributes:
        kept: one bool per channel of the original tensor; False: gone.
        values: one float per channel: the value a gone channel had everywhere.
        sources: the names of the layers whose units these are.
    """

    kept: np.ndarray
    values: np.ndarray
    sources: frozenset[str]


class _OutputReached(Exception):
    """Units of `sources` reach a model output: they must be kept."""

    def __init__(self, sources: frozenset[str]) -> None:
        super().__init__(sorted(sources))
        self.sources = sources


def shrink(model: Any) -> Any:
    """Rebuilds a model without its all-zero units and filters: smaller and faster.

    For a model pruned with `prune_low_magnitude(..., structure="units")` (or
    `"filters"`) and stripped with `strip_pruning`: every output unit of a
    Dense layer, or filter of a Conv1D/2D/3D layer, whose kernel weights are
    all zero is removed, with the matching input rows or channels of the
    layers that consume it, through BatchNormalization, Flatten, pooling,
    element-wise activations, Dropout, and Add (and the other element-wise
    merges) or Concatenate along the channels. A removed unit's constant
    output (its activation at its bias, which the structured pruning also
    zeroes) is folded into the consumers' biases, so the shrunk model makes
    the same predictions, to float32 rounding. Units whose output is a model
    output are kept. The result is a plain Keras model: it saves and loads
    without this package. The model given is not changed.

    Args:
        model: a Sequential or functional model without pruning wrappers.

    Returns:
        A new, uncompiled model of the same class and layer names, with
        fewer parameters where units or filters were zero.

    Raises:
        TypeError: if `model` is not a Keras model.
        ValueError: for a subclassed model, a model that still has pruning
            wrappers (strip it first), or a layer that consumes removed units
            in a way `shrink` cannot follow (an LSTM, a Softmax over them, a
            `"same"`-padded convolution or average pooling where their
            constant is not zero, an Add whose inputs lose different
            channels, a layer shared by several calls, ...): the message
            names the layer and the pruned layers behind it.

    Example:

    ```python
    from keras_bettermodels.pruning import shrink, strip_pruning

    small = shrink(strip_pruning(pruned))
    small.count_params() < pruned.count_params()
    small.save("small.keras")
    ```
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            _validation.invalid_type(
                "model", "a Sequential or functional Keras model", model
            )
        )
    if not _compat.is_functional(model):
        raise ValueError(
            _validation.invalid_value(
                "model",
                "a Sequential or functional model",
                model,
                "A subclassed model's graph cannot be rebuilt.",
            )
        )
    if pruning_wrappers(model):
        raise ValueError(
            _validation.invalid_value(
                "model",
                "a model without pruning wrappers",
                model,
                "Strip it first: shrink(strip_pruning(model)).",
            )
        )
    keep: set[str] = set()
    while True:
        try:
            return _Shrinker(keep).rebuild(model)
        except _OutputReached as reached:
            # Those units are part of the model's output: rebuild keeping them.
            keep |= reached.sources


class _Shrinker:
    """One rebuild: the channel state of each new tensor, the new layers."""

    def __init__(self, keep: set[str]) -> None:
        self.keep = keep
        self.gone: dict[int, _Gone | None] = {}
        self.done: dict[int, Any] = {}  # id(original layer) -> its new layer

    def rebuild(self, model: keras.Model) -> keras.Model:
        if isinstance(model, keras.Sequential):
            inputs = keras.Input(
                batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype
            )
            x = inputs
            for layer in model.layers:
                x = self.call(layer, x)
            self._check_outputs([x])
            return keras.Sequential(
                [
                    keras.Input(batch_shape=model.inputs[0].shape),
                    *(self.done[id(layer)] for layer in model.layers),
                ],
                name=model.name,
            )
        clone = keras.models.clone_model(
            model,
            clone_function=lambda layer: layer,
            call_function=self.call,
        )
        self._check_outputs(keras.tree.flatten(clone.outputs))
        return clone

    def _check_outputs(self, outputs: list[Any]) -> None:
        for tensor in outputs:
            gone = self.gone.get(id(tensor))
            if gone is not None:
                raise _OutputReached(gone.sources)

    def call(self, layer: Any, *args: Any, **kwargs: Any) -> Any:
        """Rebuilds `layer` for its inputs' channels and calls it (graph order)."""
        tensors = [
            t
            for t in keras.tree.flatten((args, kwargs))
            if isinstance(t, keras.KerasTensor)
        ]
        states = [self.gone.get(id(t)) for t in tensors]
        if id(layer) in self.done:
            if any(state is not None for state in states) or _is_producer(layer):
                self._refuse(layer, states, "it is shared by several calls")
            outputs = self.done[id(layer)](*args, **kwargs)
            self._set(outputs, None)
            return outputs
        if not isinstance(layer, keras.layers.Layer):  # a plain op, like x + y
            if any(state is not None for state in states):
                self._refuse(layer, states, "it is not a layer")
            return layer(*args, **kwargs)
        if isinstance(layer, keras.layers.InputLayer):
            return layer(*args, **kwargs)
        if _is_producer(layer):
            return self._producer(layer, args, kwargs, states[0])
        if all(state is None for state in states):
            return self._copy(layer, args, kwargs, None)
        return self._through(layer, args, kwargs, states)

    # Layers whose units can go -------------------------------------------

    def _producer(self, layer: Any, args: Any, kwargs: Any, gone: _Gone | None) -> Any:
        kernel = np.asarray(ops.convert_to_numpy(layer.kernel))
        bias = (
            np.asarray(ops.convert_to_numpy(layer.bias))
            if layer.bias is not None
            else np.zeros(kernel.shape[-1], kernel.dtype)
        )
        if gone is not None:
            kernel, bias = self._absorb(layer, kernel, bias, gone)
        units: np.ndarray = np.ones(kernel.shape[-1], bool)
        activation = getattr(layer.activation, "__name__", "")
        if layer.name not in self.keep and activation not in _NOT_ELEMENTWISE:
            units = np.asarray(kernel.reshape(-1, kernel.shape[-1]).any(axis=0))
            if not units.any():
                units[0] = True  # a layer keeps one unit
        config = layer.get_config()
        config["units" if isinstance(layer, keras.layers.Dense) else "filters"] = int(
            units.sum()
        )
        config["use_bias"] = layer.bias is not None or bool(np.any(bias))
        new = _new_layer(layer, config)
        outputs = new(*args, **kwargs)
        weights = [kernel[..., units]]
        if config["use_bias"]:
            weights.append(bias[units])
        new.set_weights(weights)
        self.done[id(layer)] = new
        if units.all():
            self._set(outputs, None)
        else:
            values = ops.convert_to_numpy(layer.activation(ops.convert_to_tensor(bias)))
            self._set(
                outputs, _Gone(units, np.asarray(values), frozenset([layer.name]))
            )
        return outputs

    def _absorb(
        self, layer: Any, kernel: np.ndarray, bias: np.ndarray, gone: _Gone
    ) -> tuple[np.ndarray, np.ndarray]:
        """Drops the kernel's gone input rows, their constants folded into the bias."""
        removed = ~gone.kept
        constants = gone.values[removed]
        if kernel.shape[-2] != gone.kept.size:
            self._refuse(layer, [gone], "its kernel's input axis does not match")
        if not isinstance(layer, keras.layers.Dense):
            if layer.data_format != "channels_last" or layer.groups != 1:
                self._refuse(layer, [gone], "it is grouped or not channels_last")
            if layer.padding != "valid" and np.any(constants):
                self._refuse(
                    layer,
                    [gone],
                    f'its padding is "{layer.padding}" and the removed '
                    "channels are not zero (the padding cuts their constant "
                    "off at the borders)",
                )
        contribution = np.tensordot(
            constants, kernel[..., removed, :], axes=([0], [-2])
        )
        # A convolution sums over its window: every position sees the whole
        # kernel with "valid" padding.
        contribution = contribution.reshape(-1, kernel.shape[-1]).sum(axis=0)
        return kernel[..., gone.kept, :], bias + contribution.astype(bias.dtype)

    # Layers the channels go through ---------------------------------------

    def _through(
        self, layer: Any, args: Any, kwargs: Any, states: list[_Gone | None]
    ) -> Any:
        gone = states[0]
        if type(layer) in _MERGE:
            return self._merge(layer, args, kwargs, states)
        if isinstance(layer, keras.layers.Concatenate):
            return self._concatenate(layer, args, kwargs, states)
        if gone is None:  # a layer of several inputs, not a merge
            self._refuse(layer, states, f"a {type(layer).__name__} mixes its inputs")
        if isinstance(layer, _PASS):
            return self._copy(layer, args, kwargs, gone)
        if isinstance(layer, _ELEMENTWISE):
            activation = getattr(getattr(layer, "activation", None), "__name__", "")
            if activation in _NOT_ELEMENTWISE:
                self._refuse(layer, states, f"{activation} mixes the channels")
            values = ops.convert_to_numpy(
                layer(ops.convert_to_tensor(gone.values[None]))
            )
            return self._copy(
                layer,
                args,
                kwargs,
                dataclasses.replace(gone, values=np.asarray(values)[0]),
            )
        if isinstance(layer, keras.layers.BatchNormalization):
            return self._batch_norm(layer, args, kwargs, gone)
        if isinstance(layer, _POOLING):
            if layer.data_format != "channels_last":
                self._refuse(layer, states, "it is not channels_last")
            if (
                isinstance(layer, _AVERAGE_POOLING)
                and layer.padding != "valid"
                and np.any(gone.values[~gone.kept])
            ):
                self._refuse(
                    layer,
                    states,
                    'its padding is "same" and the removed channels are not zero',
                )
            return self._copy(layer, args, kwargs, gone)
        if isinstance(layer, keras.layers.Flatten):
            return self._flatten(layer, args, kwargs, gone)
        self._refuse(layer, states, f"a {type(layer).__name__} mixes the channels")

    def _batch_norm(self, layer: Any, args: Any, kwargs: Any, gone: _Gone) -> Any:
        rank = len(args[0].shape)
        if layer.axis not in (-1, rank - 1):
            self._refuse(
                layer, [gone], f"it normalizes axis {layer.axis}, not the last"
            )
        values = gone.values
        mean = ops.convert_to_numpy(layer.moving_mean)
        variance = ops.convert_to_numpy(layer.moving_variance)
        values = (values - mean) / np.sqrt(variance + layer.epsilon)
        if layer.scale:
            values = values * ops.convert_to_numpy(layer.gamma)
        if layer.center:
            values = values + ops.convert_to_numpy(layer.beta)
        new = _new_layer(layer, layer.get_config())
        outputs = new(*args, **kwargs)
        new.set_weights([np.asarray(w)[gone.kept] for w in layer.get_weights()])
        self.done[id(layer)] = new
        self._set(outputs, dataclasses.replace(gone, values=np.asarray(values)))
        return outputs

    def _flatten(self, layer: Any, args: Any, kwargs: Any, gone: _Gone) -> Any:
        if layer.data_format != "channels_last":
            self._refuse(layer, [gone], "it is not channels_last")
        spatial = args[0].shape[1:-1]
        if any(d is None for d in spatial):
            self._refuse(layer, [gone], "its input's size is not fixed")
        positions = int(np.prod(spatial))
        flat = _Gone(
            np.tile(gone.kept, positions), np.tile(gone.values, positions), gone.sources
        )
        return self._copy(layer, args, kwargs, flat)

    def _merge(
        self, layer: Any, args: Any, kwargs: Any, states: list[_Gone | None]
    ) -> Any:
        known = [s for s in states if s is not None]
        if len(known) < len(states) or any(
            not np.array_equal(s.kept, known[0].kept) for s in known
        ):
            self._refuse(layer, states, "its inputs lose different channels")
        values = _MERGE[type(layer)](np.stack([s.values for s in known]))
        sources = frozenset().union(*(s.sources for s in known))
        return self._copy(layer, args, kwargs, _Gone(known[0].kept, values, sources))

    def _concatenate(
        self, layer: Any, args: Any, kwargs: Any, states: list[_Gone | None]
    ) -> Any:
        tensors = [
            t for t in keras.tree.flatten(args) if isinstance(t, keras.KerasTensor)
        ]
        if layer.axis not in (-1, len(tensors[0].shape) - 1):
            self._refuse(layer, states, f"it joins axis {layer.axis}, not the channels")
        kept, values = [], []
        for tensor, state in zip(tensors, states, strict=True):
            if state is None:
                size = int(tensor.shape[-1])
                kept.append(np.ones(size, bool))
                values.append(np.zeros(size, "float32"))
            else:
                kept.append(state.kept)
                values.append(state.values)
        sources = frozenset().union(*(s.sources for s in states if s))
        gone = _Gone(np.concatenate(kept), np.concatenate(values), sources)
        return self._copy(layer, args, kwargs, gone)

    # Helpers ---------------------------------------------------------------

    def _copy(self, layer: Any, args: Any, kwargs: Any, gone: _Gone | None) -> Any:
        new = _new_layer(layer, layer.get_config())
        outputs = new(*args, **kwargs)
        if layer.weights:
            new.set_weights(layer.get_weights())
        self.done[id(layer)] = new
        self._set(outputs, gone)
        return outputs

    def _set(self, outputs: Any, gone: _Gone | None) -> None:
        for tensor in keras.tree.flatten(outputs):
            self.gone[id(tensor)] = gone

    def _refuse(self, layer: Any, states: list[_Gone | None], why: str) -> NoReturn:
        sources = sorted(set().union(*(s.sources for s in states if s is not None)))
        name = getattr(layer, "name", type(layer).__name__)
        raise ValueError(
            f"shrink cannot remove the pruned units of {', '.join(sources)} "
            f"through layer `{name}` ({type(layer).__name__}): {why}. Leave "
            f"{'that layer' if len(sources) == 1 else 'those layers'} unpruned "
            "(prune_low_magnitude(..., layers=[...]) without them), or prune "
            "them unstructured."
        )


def _new_layer(layer: Any, config: dict[str, Any]) -> Any:
    """A layer of `layer`'s class from `config`, built with zeros (weights follow).

    Drawing random weights only to overwrite them is slow (JAX compiles its
    generator per shape); the layer keeps `layer`'s initializers, for its
    config and any later rebuild.
    """
    initializers = [key for key in config if key.endswith("_initializer")]
    new = layer.__class__.from_config(
        {**config, **dict.fromkeys(initializers, "zeros")}
    )
    for key in initializers:
        if hasattr(new, key) and hasattr(layer, key):
            setattr(new, key, getattr(layer, key))
    return new


def _is_producer(layer: Any) -> bool:
    return isinstance(layer, _PRODUCERS)
