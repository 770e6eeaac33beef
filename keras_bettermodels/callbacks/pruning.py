"""UpdatePruningMasks: switches magnitude pruning on for the length of a `fit`."""

from __future__ import annotations

import warnings
from typing import Any

import keras

__all__ = ["UpdatePruningMasks"]


def pruning_wrappers(model: keras.layers.Layer) -> list[Any]:
    """Every `PruneLowMagnitude` layer in `model`, nested ones included.

    Args:
        model: a Keras model or layer.

    Returns:
        The wrappers, in the order Keras lists the layers.
    """
    from keras_bettermodels.layers.prune_low_magnitude import PruneLowMagnitude

    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, PruneLowMagnitude)
    ]


class UpdatePruningMasks(keras.callbacks.Callback):
    """Advances the pruning step and updates the masks of `PruneLowMagnitude` layers.

    Add it to `fit` whenever the model has pruning wrappers; `fit` without it
    raises an error that says so. While it is active, each wrapper, in each
    training step (inside the compiled step on TensorFlow and JAX), reads its
    schedule at the current step, recomputes its mask when the schedule says
    so, and advances the step by one. The callback itself does nothing per
    batch.

    The step is a non-trainable variable of the model (`pruning_step` of each
    wrapper), so a second `fit`, with a new instance of this callback, or a
    model saved mid-training and loaded back continues the schedule where
    training stopped.

    At the end of training the callback re-applies every mask to its weight
    (a no-op unless something changed the weights outside the optimizer) and
    puts a guard in front of the model's compiled training function, so that
    the next `fit` without this callback fails at its first step too, with the
    weights untouched, while a `fit` with it reuses the compiled function.

    In a custom training loop, call `set_model(model)` and `on_train_begin()`
    before the first step and `on_train_end()` after the last.

    Attributes:
        wrappers: the `PruneLowMagnitude` layers found at the start of
            training.

    Example:

    ```python
    from keras_bettermodels.callbacks import UpdatePruningMasks
    from keras_bettermodels.pruning import PolynomialDecay, prune_low_magnitude

    pruned = prune_low_magnitude(
        model, schedule=PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000)
    )
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, y, epochs=10, callbacks=[UpdatePruningMasks()])
    ```

    References:
        Michael Zhu and Suyog Gupta, "To prune, or not to prune: exploring the
        efficacy of pruning for model compression", ICLR Workshop, 2018.
    """

    def __init__(self) -> None:
        super().__init__()
        self.wrappers: list[Any] = []

    @property
    def step(self) -> int | None:
        """The pruning step of the first wrapper (all advance together), or `None`."""
        if not self.wrappers:
            return None
        return int(keras.ops.convert_to_numpy(self.wrappers[0].pruning_step))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wrappers = pruning_wrappers(self.model)
        if not self.wrappers:
            warnings.warn(
                "UpdatePruningMasks: the model has no PruneLowMagnitude layers, "
                "so there is nothing to prune. Wrap layers with "
                "keras_bettermodels.pruning.prune_low_magnitude first.",
                stacklevel=2,
            )
        for wrapper in self.wrappers:
            wrapper._pruning_enabled = True
            wrapper._pending_mask = None
            wrapper._host_step = None  # read again from `pruning_step`

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        for wrapper in self.wrappers:
            wrapper._pruning_enabled = False
            wrapper._pending_mask = None
            wrapper._host_step = None
            if wrapper.built:
                wrapper.apply_mask()
        function = getattr(self.model, "train_function", None)
        if self.wrappers and function is not None:
            if isinstance(function, _RequirePruningCallback):
                function = function.function
            self.model.train_function = _RequirePruningCallback(self.model, function)


class _RequirePruningCallback:
    """Stands in for a model's compiled training function between two `fit`s.

    The training step checks for `UpdatePruningMasks` when it is traced, but a
    compiled step is reused by the next `fit` without being traced again. At
    the first step of that `fit` this guard checks instead: with the callback
    it puts the compiled function back and runs it; without it, it raises
    before the step runs (on JAX, after giving the model back the variables
    its trainer detached).
    """

    def __init__(self, model: keras.Model, function: Any) -> None:
        self.model = model
        self.function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from keras_bettermodels.layers.prune_low_magnitude import (
            MISSING_CALLBACK,
            reattach_jax_state,
        )

        for wrapper in pruning_wrappers(self.model):
            if not wrapper._pruning_enabled:
                if args and keras.backend.backend() == "jax":
                    reattach_jax_state(self.model, args[0])
                raise RuntimeError(MISSING_CALLBACK.format(name=wrapper.name))
        self.model.train_function = self.function
        return self.function(*args, **kwargs)
