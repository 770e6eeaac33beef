"""prune_low_magnitude and strip_pruning: wrap a model's layers, and unwrap them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import keras
from keras import ops

from keras_bettermodels import _validation
from keras_bettermodels._compat import pruning as _compat
from keras_bettermodels.pruning.schedules import PruningSchedule, resolve_schedule
from keras_bettermodels.pruning.wrapper import (
    M_BY_N_LAYERS,
    PRUNABLE_WEIGHTS,
    PruneLowMagnitude,
    check_block_size,
    check_m_by_n,
    prunable_weight_name,
)

__all__ = ["prune_low_magnitude", "strip_pruning"]


def _is_graph_model(model: Any) -> bool:
    """Sequential and functional models: those `keras.models.clone_model` rebuilds."""
    return _compat.is_functional(model)


def _graph_layers(model: Any) -> list[keras.layers.Layer]:
    """The layers `clone_model(recursive=True)` visits: nested models' too."""
    layers = []
    for layer in model.layers:
        if _is_graph_model(layer):
            layers.extend(_graph_layers(layer))
        else:
            layers.append(layer)
    return layers


def _copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new layer with `layer`'s configuration (weights are copied after build)."""
    return layer.__class__.from_config(layer.get_config())


def _clone(model: Any, replace: Any) -> tuple[Any, list[tuple[Any, Any]]]:
    """Clones `model` with `replace(layer) -> (new_layer, weights_target)`.

    Returns the clone and the `(original, target)` pairs whose weights must be
    copied once the clone is built.
    """
    pairs: list[tuple[Any, Any]] = []

    def clone_function(layer: keras.layers.Layer) -> keras.layers.Layer:
        new_layer, target = replace(layer)
        pairs.append((layer, target))
        return new_layer

    clone = keras.models.clone_model(
        model, clone_function=clone_function, recursive=True
    )
    return clone, pairs


def _type_names(classes: Iterable[type]) -> str:
    return ", ".join(cls.__name__ for cls in classes)


def _names(layers: Any) -> list[str]:
    if isinstance(layers, str | keras.layers.Layer):
        layers = [layers]
    if not isinstance(layers, Iterable):
        raise TypeError(
            _validation.invalid_type(
                "layers", "a list of layer names or layers, or None", layers
            )
        )
    names = []
    for item in layers:
        if isinstance(item, keras.layers.Layer):
            names.append(item.name)
        elif isinstance(item, str):
            names.append(item)
        else:
            raise TypeError(
                _validation.invalid_type(
                    "layers", "a list of layer names or layers, or None", item
                )
            )
    return names


def prune_low_magnitude(
    model_or_layer: Any,
    schedule: PruningSchedule | None = None,  # 2nd positional, as tfmot's
    *,
    layers: Iterable[str | keras.layers.Layer] | None = None,
    pruning_schedule: PruningSchedule | None = None,
    block_size: Sequence[int] = (1, 1),
    sparsity_m_by_n: Sequence[int] | None = None,
) -> Any:
    """Wraps a model's prunable layers (or one layer) in `PruneLowMagnitude`.

    Given a Sequential or functional model, returns a new model of the same
    architecture in which every prunable layer (Dense, Conv1D/2D/3D,
    DepthwiseConv2D, Embedding), or only those named in `layers`, is wrapped.
    Nested Sequential and functional models are searched too. The new model
    starts from a copy of the original's weights; the original is not changed.
    It is not compiled: compile it, then train it with
    `keras_bettermodels.callbacks.UpdatePruningMasks`.

    Given a single layer, returns `PruneLowMagnitude(layer, schedule=schedule)`.
    Layers already wrapped are kept as they are.

    TensorFlow Model Optimization's arguments work too: `pruning_schedule=`
    for `schedule=`, `block_size=(rows, cols)` for block sparsity and
    `sparsity_m_by_n=(2, 4)` for structured sparsity. With `sparsity_m_by_n`
    and `layers=None`, the layers that have no input axis (Embedding,
    DepthwiseConv2D) are left dense, as tfmot does.

    Args:
        model_or_layer: a Sequential or functional model, or a prunable layer.
        schedule: the `PruningSchedule` every wrapper follows, such as
            `PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000)`.
        layers: names (or the layer objects) of the layers to prune; `None`
            prunes every prunable layer. Defaults to `None`.
        pruning_schedule: TensorFlow Model Optimization's name for
            `schedule`; give one of the two.
        block_size: `(rows, cols)` of the blocks pruned whole (2-D weights
            only). Defaults to `(1, 1)`: single weights.
        sparsity_m_by_n: `(m, n)`: keep the `m` largest of every `n`
            consecutive weights along the input axis. Defaults to `None`.

    Returns:
        A new model with pruning wrappers, or a `PruneLowMagnitude` layer.

    Raises:
        TypeError: if `model_or_layer` is neither a layer nor a model,
            `schedule` is not a `PruningSchedule`, or `layers` is not a list of
            names or layers.
        ValueError: if both `schedule` and `pruning_schedule` are given, or
            neither; for a malformed `block_size` or `sparsity_m_by_n`.
        ValueError: for a subclassed model, a layer that cannot be pruned, a
            name in `layers` that is not in the model or names a layer that
            cannot be pruned, `layers` given with a single layer, or a model
            with nothing to prune.

    Example:

    ```python
    from keras_bettermodels.pruning import PolynomialDecay, prune_low_magnitude

    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000)
    pruned = prune_low_magnitude(model, schedule=schedule)
    pruned_head = prune_low_magnitude(model, schedule=schedule, layers=["head"])
    two_of_four = prune_low_magnitude(
        model, pruning_schedule=schedule, sparsity_m_by_n=(2, 4)
    )
    ```
    """
    schedule = resolve_schedule(schedule, pruning_schedule)
    options: dict[str, Any] = {
        "block_size": check_block_size(block_size),
        "sparsity_m_by_n": check_m_by_n(sparsity_m_by_n),
    }
    if not isinstance(model_or_layer, keras.layers.Layer):
        raise TypeError(
            _validation.invalid_type(
                "model_or_layer",
                "a Sequential or functional Keras model, or a Keras layer",
                model_or_layer,
            )
        )
    if not isinstance(model_or_layer, keras.Model):
        if layers is not None:
            raise ValueError(
                _validation.invalid_value(
                    "layers",
                    "None when `model_or_layer` is a single layer",
                    layers,
                )
            )
        if isinstance(model_or_layer, PruneLowMagnitude):
            return model_or_layer
        return PruneLowMagnitude(model_or_layer, schedule=schedule, **options)
    model = model_or_layer
    if not _is_graph_model(model):
        raise ValueError(
            _validation.invalid_value(
                "model_or_layer",
                "a Sequential or functional model",
                model,
                "In a subclassed model, wrap the layers to prune with "
                "keras_bettermodels.layers.PruneLowMagnitude where you create "
                "them.",
            )
        )
    candidates = _graph_layers(model)
    prunable = [
        layer for layer in candidates if prunable_weight_name(layer) is not None
    ]
    if layers is None:
        if options["sparsity_m_by_n"] is not None:
            prunable = [layer for layer in prunable if isinstance(layer, M_BY_N_LAYERS)]
        selected = {layer.name for layer in prunable}
        if not selected:
            raise ValueError(
                f"Model `{model.name}` has no layer that can be pruned. "
                f"Prunable layer types: {_type_names(PRUNABLE_WEIGHTS)}."
            )
    else:
        selected = set(_names(layers))
        by_name = {layer.name: layer for layer in candidates}
        for name in sorted(selected):
            if name not in by_name:
                raise ValueError(
                    _validation.invalid_value(
                        "layers",
                        f"names of layers in model `{model.name}`",
                        sorted(selected),
                        f"There is no layer named {name!r}. The model's layers "
                        f"are: {', '.join(by_name)}.",
                    )
                )
            layer = by_name[name]
            if prunable_weight_name(layer) is None and not isinstance(
                layer, PruneLowMagnitude
            ):
                raise ValueError(
                    _validation.invalid_value(
                        "layers",
                        "names of layers that can be pruned "
                        f"({_type_names(PRUNABLE_WEIGHTS)})",
                        sorted(selected),
                        f"Layer {name!r} is a {type(layer).__name__}, which "
                        "cannot be pruned.",
                    )
                )

    def replace(layer: keras.layers.Layer) -> tuple[Any, Any]:
        copy = _copy(layer)
        if layer.name in selected and not isinstance(layer, PruneLowMagnitude):
            return PruneLowMagnitude(copy, schedule=schedule, **options), copy
        return copy, copy

    clone, pairs = _clone(model, replace)
    for original, target in pairs:
        if _has_weights(original):
            target.set_weights(original.get_weights())
    return clone


def strip_pruning(model: Any) -> Any:
    """Removes the pruning wrappers: a plain model with the zeros baked in.

    Returns a new Sequential or functional model, with the architecture the
    model had before `prune_low_magnitude`: each `PruneLowMagnitude` wrapper is
    replaced by a copy of the layer it wraps, whose pruned weight is the
    wrapper's weight times its mask. The stripped model makes the same
    predictions as the pruned one, has no masks or steps, and needs nothing from
    this package to load. The pruned model is not changed. Given a single
    `PruneLowMagnitude` layer, returns a copy of the layer it wraps, with the
    zeros baked in.

    Args:
        model: a Sequential or functional model with pruning wrappers (or
            without: it is then copied), or a `PruneLowMagnitude` layer.

    Returns:
        A new, uncompiled model (or layer) without pruning wrappers.

    Raises:
        TypeError: if `model` is not a Keras model or layer.
        ValueError: for a subclassed model.

    Example:

    ```python
    from keras_bettermodels.pruning import strip_pruning

    final = strip_pruning(pruned)
    final.save("pruned.keras")  # plain Keras layers; compresses well
    ```
    """
    if isinstance(model, PruneLowMagnitude):
        layer = _copy(model.layer)
        if model.built:
            layer.build_from_config(model.layer.get_build_config())
            layer.set_weights(_baked_weights(model))
        return layer
    if not isinstance(model, keras.Model):
        raise TypeError(
            _validation.invalid_type(
                "model", "a Sequential or functional Keras model", model
            )
        )
    if not _is_graph_model(model):
        raise ValueError(
            _validation.invalid_value(
                "model",
                "a Sequential or functional model",
                model,
                "For a subclassed model, copy the wrapped layers' weights "
                "times their masks (`PruneLowMagnitude.apply_mask()`) instead.",
            )
        )

    def replace(layer: keras.layers.Layer) -> tuple[Any, Any]:
        if isinstance(layer, PruneLowMagnitude):
            copy = _copy(layer.layer)
            return copy, copy
        copy = _copy(layer)
        return copy, copy

    clone, pairs = _clone(model, replace)
    for original, target in pairs:
        if not _has_weights(original):
            continue
        if isinstance(original, PruneLowMagnitude):
            target.set_weights(_baked_weights(original))
        else:
            target.set_weights(original.get_weights())
    return clone


def _has_weights(operation: Any) -> bool:
    """Whether a graph node is a built layer with weights (not a plain op)."""
    return (
        isinstance(operation, keras.layers.Layer)
        and operation.built
        and bool(operation.weights)
    )


def _baked_weights(wrapper: Any) -> list[Any]:
    """The wrapped layer's weights, with the pruned one multiplied by the mask."""
    pruned = wrapper.pruned_weight
    mask = ops.convert_to_numpy(wrapper.pruning_mask)
    return [
        ops.convert_to_numpy(v) * mask if v is pruned else ops.convert_to_numpy(v)
        for v in wrapper.layer.weights
    ]
