"""prune_low_magnitude and strip_pruning: wrap a model's layers, and unwrap them.

With `prune_scope`, TensorFlow Model Optimization's scope for loading them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import keras
from keras import ops

from keras_bettermodels import _validation
from keras_bettermodels._compat import pruning as _compat
from keras_bettermodels.pruning.policy import PruningPolicy
from keras_bettermodels.pruning.prunable_layer import (
    PrunableLayer,
    is_prunable,
    prunable_names,
)
from keras_bettermodels.pruning.schedules import (
    ConstantSparsity,
    PolynomialDecay,
    PruningSchedule,
    resolve_schedule,
)
from keras_bettermodels.pruning.structure import (
    M_BY_N_LAYERS,
    check_block_pooling_type,
    check_block_size,
    check_combination,
    check_m_by_n,
    check_scope,
    check_structure,
    takes_structure,
)
from keras_bettermodels.pruning.wrapper import PruneLowMagnitude

__all__ = ["prune_low_magnitude", "prune_scope", "strip_pruning"]


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
    """A new layer with `layer`'s configuration (weights are copied after build).

    It keeps the `input_shape=` the layer was created with, which its config
    leaves out, so that a `Sequential` model starting with it is built.
    """
    copy = layer.__class__.from_config(layer.get_config())
    input_shape = _compat.input_shape_argument(layer)
    if input_shape is not None:
        _compat.set_input_shape_argument(copy, input_shape)
    return copy


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
    schedule: PruningSchedule | None = None,  # tfmot's positional order
    block_size: Sequence[int] = (1, 1),
    block_pooling_type: str = "AVG",
    pruning_policy: PruningPolicy | None = None,
    sparsity_m_by_n: Sequence[int] | None = None,
    *,
    layers: Iterable[str | keras.layers.Layer] | None = None,
    structure: str | None = None,
    scope: str = "layer",
    pruning_schedule: PruningSchedule | None = None,
    **kwargs: Any,
) -> Any:
    """Wraps a model's prunable layers (or one layer, or a list) in `PruneLowMagnitude`.

    Given a Sequential or functional model, returns a new model of the same
    architecture in which every prunable layer (Dense, Conv1D/2D/3D,
    DepthwiseConv2D, Embedding, and custom layers that subclass
    `PrunableLayer`), or only those named in `layers` or allowed by
    `pruning_policy`, is wrapped. Nested Sequential and functional models are
    searched too. The new model starts from a copy of the original's weights;
    the original is not changed. It is not compiled: compile it, then train it
    with `keras_bettermodels.callbacks.UpdatePruningMasks`.

    Given a single layer, returns `PruneLowMagnitude(layer, ...)`. Given a list
    of layers (to build a `Sequential` from), returns a list in which each
    prunable layer is wrapped and the others are kept. Layers already wrapped
    are kept as they are.

    The arguments are TensorFlow Model Optimization's, in its order, with its
    default schedule; `schedule=` is this package's name for
    `pruning_schedule=`. With `sparsity_m_by_n` and neither `layers` nor a
    policy, the layers that have no input axis (Embedding, DepthwiseConv2D)
    are left dense, as tfmot does. With `structure` and neither, only the
    layers that have that structure are wrapped (Dense and EinsumDense for
    `"units"`, Conv1D/2D/3D for `"filters"`), and not those whose output is
    an output of the model (its classes, say).

    Args:
        model_or_layer: a Sequential or functional model, a prunable layer, or
            a list of layers.
        schedule: the `PruningSchedule` every wrapper follows, such as
            `PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000)`.
            Defaults to tfmot's default, `ConstantSparsity(0.5, begin_step=0)`:
            half of each pruned weight zero from the first step.
        block_size: `(rows, cols)` of the blocks pruned whole (2-D weights
            only). Defaults to `(1, 1)`: single weights.
        block_pooling_type: how a block is scored, `"AVG"` (mean magnitude)
            or `"MAX"`. Defaults to `"AVG"`.
        pruning_policy: a `PruningPolicy` that picks the layers of a model to
            prune. Defaults to `None`: every prunable layer.
        sparsity_m_by_n: `(m, n)`: keep the `m` largest of every `n`
            consecutive weights along the input axis. Defaults to `None`.
        layers: names (or the layer objects) of the layers of a model to
            prune. Defaults to `None`: every prunable layer.
        structure: `"units"` to prune whole output units of Dense and
            EinsumDense layers, `"filters"` for whole filters of Conv1D/2D/3D
            layers (by L2 norm, bias included), so that `shrink` can remove
            them after `strip_pruning`. Defaults to `None`: single weights.
        scope: `"layer"` (each layer pruned to the schedule's sparsity) or
            `"global"` (one magnitude threshold across all the wrapped layers:
            their sparsities differ, the overall one follows the schedule).
            Defaults to `"layer"`.
        pruning_schedule: TensorFlow Model Optimization's name for
            `schedule`; give one of the two.
        **kwargs: for a single layer, passed to `PruneLowMagnitude` (such as
            `name=`).

    Returns:
        A new model with pruning wrappers, a `PruneLowMagnitude` layer, or a
        list of layers.

    Raises:
        TypeError: if `model_or_layer` is neither a layer, a list of layers
            nor a model, `schedule` is not a `PruningSchedule`,
            `pruning_policy` is not a `PruningPolicy`, or `layers` is not a
            list of names or layers.
        ValueError: if both `schedule` and `pruning_schedule` are given; for a
            malformed `block_size`, `block_pooling_type`, `sparsity_m_by_n`,
            `structure` or `scope`; for a `structure` a named layer does not
            have, or given with `block_size` or `sparsity_m_by_n`; for
            `scope="global"` with any of the three.
        ValueError: for a subclassed model, a layer that cannot be pruned, a
            name in `layers` that is not in the model or names a layer that
            cannot be pruned, `layers` with a policy, `layers`, a policy or
            `**kwargs` given with a single layer (or a model), or a model with
            nothing to prune.

    Example:

    ```python
    from keras_bettermodels.pruning import PolynomialDecay, prune_low_magnitude

    half = prune_low_magnitude(model)  # ConstantSparsity(0.5, begin_step=0)
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000)
    pruned = prune_low_magnitude(model, schedule=schedule)
    pruned_head = prune_low_magnitude(model, schedule=schedule, layers=["head"])
    two_of_four = prune_low_magnitude(
        model, pruning_schedule=schedule, sparsity_m_by_n=(2, 4)
    )
    whole_units = prune_low_magnitude(model, schedule, structure="units")
    one_threshold = prune_low_magnitude(model, schedule, scope="global")
    ```
    """
    schedule = resolve_schedule(schedule, pruning_schedule)
    options: dict[str, Any] = {
        "schedule": schedule,
        "block_size": check_block_size(block_size),
        "block_pooling_type": check_block_pooling_type(block_pooling_type),
        "sparsity_m_by_n": check_m_by_n(sparsity_m_by_n),
        "structure": check_structure(structure),
        "scope": check_scope(scope),
    }
    check_combination(
        options["structure"],
        options["scope"],
        options["block_size"],
        options["sparsity_m_by_n"],
    )
    if pruning_policy is not None and not isinstance(pruning_policy, PruningPolicy):
        raise TypeError(
            _validation.invalid_type(
                "pruning_policy",
                "a keras_bettermodels.pruning.PruningPolicy, or None",
                pruning_policy,
            )
        )
    if isinstance(model_or_layer, list | tuple):
        _refuse_model_only(layers, pruning_policy, "a list of layers")
        _refuse_kwargs(kwargs)
        return _prune_list(list(model_or_layer), options)
    if not isinstance(model_or_layer, keras.layers.Layer):
        raise TypeError(
            _validation.invalid_type(
                "model_or_layer",
                "a Sequential or functional Keras model, a Keras layer, or a "
                "list of layers",
                model_or_layer,
            )
        )
    if not isinstance(model_or_layer, keras.Model):
        _refuse_model_only(layers, pruning_policy, "a single layer")
        if isinstance(model_or_layer, PruneLowMagnitude):
            return model_or_layer
        return PruneLowMagnitude(model_or_layer, **options, **kwargs)
    _refuse_kwargs(kwargs)
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
    if pruning_policy is not None:
        if layers is not None:
            raise ValueError(
                _validation.invalid_value(
                    "layers",
                    "None when `pruning_policy` is given",
                    layers,
                    "Choose the layers by name or by policy, not both.",
                )
            )
        pruning_policy.ensure_model_supports_pruning(model)
    selected = _select(
        model,
        layers,
        pruning_policy,
        options["sparsity_m_by_n"],
        options["structure"],
    )

    def replace(layer: keras.layers.Layer) -> tuple[Any, Any]:
        copy = _copy(layer)
        if layer.name in selected and not isinstance(layer, PruneLowMagnitude):
            return PruneLowMagnitude(copy, **options), copy
        return copy, copy

    clone, pairs = _clone(model, replace)
    for original, target in pairs:
        if _has_weights(original):
            target.set_weights(original.get_weights())
    return clone


def _refuse_model_only(layers: Any, pruning_policy: Any, what: str) -> None:
    """`layers` and `pruning_policy` choose among a model's layers only."""
    if layers is not None:
        raise ValueError(
            _validation.invalid_value(
                "layers", f"None when `model_or_layer` is {what}", layers
            )
        )
    if pruning_policy is not None:
        raise ValueError(
            _validation.invalid_value(
                "pruning_policy",
                f"None when `model_or_layer` is {what}",
                pruning_policy,
                "A policy chooses among the layers of a model.",
            )
        )


def _refuse_kwargs(kwargs: dict[str, Any]) -> None:
    """Wrapper arguments (`name=`, ...) make sense for a single layer only."""
    if kwargs:
        received = ", ".join(f"{name}={value!r}" for name, value in kwargs.items())
        raise ValueError(
            "prune_low_magnitude passes keyword arguments to the wrapper of a "
            "single layer only; given a model or a list it would name every "
            f"wrapper alike. Received: {received}"
        )


def _prune_list(layers: list[Any], options: dict[str, Any]) -> list[Any]:
    """tfmot's list form: wrap each prunable layer, keep (copies of) the others."""
    pruned = []
    for layer in layers:
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                _validation.invalid_type(
                    "model_or_layer", "a list of Keras layers", layer
                )
            )
        if isinstance(layer, keras.layers.InputLayer):
            pruned.append(_copy(layer))
        elif (
            isinstance(layer, PruneLowMagnitude)
            or not is_prunable(layer)
            or not takes_structure(layer, options["structure"])
        ):
            pruned.append(layer)
        else:
            pruned.append(PruneLowMagnitude(layer, **options))
    if not any(isinstance(layer, PruneLowMagnitude) for layer in pruned):
        raise ValueError(
            "The list given to prune_low_magnitude has no layer that can be "
            f"pruned. Prunable layer types: {prunable_names()}."
        )
    return pruned


def _select(
    model: Any,
    layers: Iterable[str | keras.layers.Layer] | None,
    pruning_policy: PruningPolicy | None,
    m_by_n: tuple[int, int] | None,
    structure: str | None = None,
) -> set[str]:
    """The names of the layers of `model` to wrap."""
    candidates = _graph_layers(model)
    prunable = [layer for layer in candidates if is_prunable(layer)]
    if layers is not None:
        return _named(model, candidates, layers)
    if pruning_policy is not None:
        prunable = [layer for layer in prunable if pruning_policy.allow_pruning(layer)]
    elif m_by_n is not None:
        prunable = [
            layer
            for layer in prunable
            if isinstance(layer, (*M_BY_N_LAYERS, PrunableLayer))
        ]
    elif structure is not None:
        outputs = {id(output) for output in model.outputs}
        prunable = [
            layer
            for layer in prunable
            if takes_structure(layer, structure) and not _feeds_output(layer, outputs)
        ]
    selected = {layer.name for layer in prunable}
    if not selected:
        allowed = " that the pruning policy allows" if pruning_policy else ""
        raise ValueError(
            f"Model `{model.name}` has no layer{allowed} that can be pruned. "
            f"Prunable layer types: {prunable_names()}."
        )
    return selected


def _feeds_output(layer: keras.layers.Layer, outputs: set[int]) -> bool:
    """Whether `layer`'s output is one of the model's (`outputs`: their ids)."""
    try:
        output = layer.output
    except (AttributeError, ValueError):  # a nested or shared layer
        return False
    return any(id(tensor) in outputs for tensor in keras.tree.flatten(output))


def _named(
    model: Any,
    candidates: list[keras.layers.Layer],
    layers: Iterable[str | keras.layers.Layer],
) -> set[str]:
    """The names in `layers`, each checked against the model's layers."""
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
        if not is_prunable(layer) and not isinstance(layer, PruneLowMagnitude):
            raise ValueError(
                _validation.invalid_value(
                    "layers",
                    f"names of layers that can be pruned ({prunable_names()})",
                    sorted(selected),
                    f"Layer {name!r} is a {type(layer).__name__}, which "
                    "cannot be pruned.",
                )
            )
    return selected


def prune_scope() -> Any:
    """A scope for loading pruned models; Keras 3 needs none.

    TensorFlow Model Optimization's `prune_scope()`, which tf_keras needed
    around `load_model` to find the `PruneLowMagnitude` class. Keras 3 finds
    this package's wrapper and schedules without it: they are registered
    serializable, and `.keras` and `.h5` files name them fully. It is kept so
    that tfmot code runs unchanged: a `keras.saving.CustomObjectScope` that
    also maps their bare class names (`"PruneLowMagnitude"`,
    `"ConstantSparsity"`, `"PolynomialDecay"`), as tfmot's does.

    Returns:
        A context manager.

    Example:

    ```python
    import keras
    from keras_bettermodels.pruning import prune_scope

    with prune_scope():  # optional in Keras 3
        restored = keras.saving.load_model("pruned.keras")
    ```
    """
    return keras.saving.CustomObjectScope(
        {
            "PruneLowMagnitude": PruneLowMagnitude,
            "ConstantSparsity": ConstantSparsity,
            "PolynomialDecay": PolynomialDecay,
        }
    )


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
    """The wrapped layer's weights, each pruned one multiplied by its mask."""
    masks = {
        id(weight): ops.convert_to_numpy(mask)
        for weight, mask in zip(
            wrapper.pruned_weights, wrapper.pruning_masks, strict=True
        )
    }
    return [
        ops.convert_to_numpy(v) * masks[id(v)]
        if id(v) in masks
        else ops.convert_to_numpy(v)
        for v in wrapper.layer.weights
    ]
