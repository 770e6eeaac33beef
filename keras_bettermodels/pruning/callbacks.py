"""Pruning callbacks: UpdatePruningMasks (or UpdatePruningStep), PruningSummaries.

They live with the rest of pruning, so that `keras_bettermodels.pruning` holds
every name of `tfmot.sparsity.keras`; `keras_bettermodels.callbacks` re-exports
them. Both accept TensorFlow Model Optimization's hook signatures too
(`on_epoch_end(batch=...)`), for custom training loops written for tfmot.
"""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Any

import keras
import numpy as np

from keras_bettermodels import _validation
from keras_bettermodels._compat import pruning as _compat
from keras_bettermodels.pruning.recovery import reattach_jax_state
from keras_bettermodels.pruning.schedules import SHORTFALL_TOLERANCE
from keras_bettermodels.pruning.wrapper import (
    MISSING_CALLBACK,
    PruneLowMagnitude,
    pruning_wrappers,
)

__all__ = [
    "PruningSummaries",
    "UpdatePruningMasks",
    "UpdatePruningStep",
    "link_global_wrappers",
    "shortfall_message",
]


class UpdatePruningMasks(keras.callbacks.Callback):
    """Advances the pruning step and updates the masks of `PruneLowMagnitude` layers.

    Add it to `fit` whenever the model has pruning wrappers; `fit` without it
    raises an error that says so. While it is active, each wrapper, in each
    training step (inside the compiled step on TensorFlow and JAX), reads its
    schedule at the current step, recomputes its mask when the schedule says
    so, and advances the step by one. The callback itself does nothing per
    batch. `UpdatePruningStep` is the same class, under TensorFlow Model
    Optimization's name.

    The step is a non-trainable variable of the model (`pruning_step` of each
    wrapper), so a second `fit`, with a new instance of this callback, or a
    model saved mid-training and loaded back continues the schedule where
    training stopped.

    At the end of each epoch and of training the callback re-applies every
    mask to its weight (a no-op unless something changed the weights outside
    the optimizer), as tfmot's does. At the end of training it also puts a
    guard in front of the model's compiled training function, so that the next
    `fit` without this callback fails at its first step too, with the weights
    untouched, while a `fit` with it reuses the compiled function; and it warns
    when training stopped before a schedule's `end_step` with the masks short
    of the sparsity the schedule targets there.

    In a custom training loop, call `set_model(model)` and `on_train_begin()`
    before the first step and `on_train_end()` after the last. The hooks take
    tfmot's arguments too: `on_train_batch_begin(batch=...)` and
    `on_epoch_end(batch=...)` (tfmot names `on_epoch_end`'s first argument
    `batch`; Keras, `epoch`).

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
        self.wrappers: list[PruneLowMagnitude] = []

    @property
    def step(self) -> int | None:
        """The pruning step of the first wrapper (all advance together), or `None`."""
        if not self.wrappers:
            return None
        return _step(self.wrappers[0])

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wrappers = pruning_wrappers(self.model)
        if not self.wrappers:
            warnings.warn(
                "UpdatePruningMasks: the model has no PruneLowMagnitude layers, "
                "so there is nothing to prune. Wrap layers with "
                "keras_bettermodels.pruning.prune_low_magnitude first.",
                stacklevel=2,
            )
        link_global_wrappers(self.wrappers)
        for wrapper in self.wrappers:
            wrapper.enable_pruning()

    def on_epoch_end(
        self,
        epoch: int | None = None,
        logs: dict[str, Any] | None = None,
        *,
        batch: int | None = None,
    ) -> None:
        """Re-applies the masks (`epoch`, or tfmot's name `batch`, is unused)."""
        for wrapper in self.wrappers:
            if wrapper.built and wrapper.pruning_enabled:
                wrapper.apply_mask()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        for wrapper in self.wrappers:
            wrapper.disable_pruning()
            if wrapper.built:
                wrapper.apply_mask()
        function = _compat.train_function(self.model)
        if self.wrappers and function is not None:
            if isinstance(function, _RequirePruningCallback):
                function = function.function
            _compat.set_train_function(
                self.model, _RequirePruningCallback(self.model, function)
            )
        message = shortfall_message(self.wrappers)
        if message:
            warnings.warn(message, stacklevel=2)


UpdatePruningStep = UpdatePruningMasks
"""TensorFlow Model Optimization's name for `UpdatePruningMasks`."""


def link_global_wrappers(wrappers: list[PruneLowMagnitude]) -> None:
    """Gives every `scope="global"` wrapper the group that shares its threshold.

    Each of them then computes, at its update steps and on the device, the
    threshold over all the group's weights, and keeps its own weights above
    it: one threshold for the whole model, whatever order the layers run in.

    Raises:
        ValueError: if the global wrappers do not share one schedule.
    """
    group = [wrapper for wrapper in wrappers if wrapper.scope == "global"]
    for wrapper in group:
        if wrapper.schedule != group[0].schedule:
            raise ValueError(
                _validation.invalid_value(
                    "schedule",
                    'one schedule for every layer pruned with scope="global" '
                    f"(`{group[0].name}` has {group[0].schedule!r})",
                    wrapper.schedule,
                    f"Layer `{wrapper.name}` differs; prune the model in one "
                    "prune_low_magnitude call.",
                )
            )
        wrapper.set_pruning_group(group)


def _step(wrapper: PruneLowMagnitude) -> int:
    return int(keras.ops.convert_to_numpy(wrapper.pruning_step))


def _masks(wrapper: PruneLowMagnitude) -> list[np.ndarray]:
    return [np.asarray(keras.ops.convert_to_numpy(m)) for m in wrapper.pruning_masks]


def _mask_sparsity(wrapper: PruneLowMagnitude) -> float:
    """The fraction of the wrapper's masks, all together, that is zero."""
    masks = _masks(wrapper)
    zeros = sum(int(np.count_nonzero(mask == 0)) for mask in masks)
    return zeros / sum(mask.size for mask in masks)


def _reachable(wrapper: PruneLowMagnitude, target: float, size: int) -> float:
    """The sparsity a mask of `size` entries can have at `target`.

    Unstructured masks keep `max(round(size * (1 - target)), 1)` weights (see
    `magnitude_mask`), which is not exactly `target` for a small weight;
    structured ones as many units or filters.
    """
    if wrapper.structure is not None:
        size = wrapper.unit_count or size
    elif wrapper.sparsity_m_by_n is not None or wrapper.block_size != (1, 1):
        return target
    kept = max(int(np.round(size * (1 - target))), 1)
    return 1 - kept / size


def shortfall_message(wrappers: list[PruneLowMagnitude]) -> str | None:
    """The warning for wrappers whose training stopped short of their schedule.

    A wrapper falls short when its step has not passed its schedule's
    `end_step` (the last mask update) and one of its masks is more than half
    a point below the sparsity the schedule targets there (`1 - m / n` with
    `sparsity_m_by_n`; the nearest a mask of its size can reach, for a small
    one). Schedules without an `end_step`, or with `end_step=-1`, never fall
    short.

    Args:
        wrappers: built or unbuilt `PruneLowMagnitude` layers.

    Returns:
        The message, one line per wrapper that fell short, or `None`.
    """
    lines = []
    group = [w for w in wrappers if w.scope == "global" and w.built]
    if group:
        lines.extend(_global_shortfall(group))
    for wrapper in wrappers:
        end_step = getattr(wrapper.schedule, "end_step", None)
        if (
            not wrapper.built
            or wrapper.scope == "global"
            or not isinstance(end_step, int)
            or end_step < 0
        ):
            continue
        step = _step(wrapper)
        if step > end_step:
            continue
        if wrapper.sparsity_m_by_n is not None:
            m, n = wrapper.sparsity_m_by_n
            target = 1 - m / n
        else:
            target = wrapper.schedule.sparsity_at(end_step)
        short = any(
            float(np.mean(mask == 0))
            < _reachable(wrapper, target, mask.size) - SHORTFALL_TOLERANCE
            for mask in _masks(wrapper)
        )
        if short:
            reached = _mask_sparsity(wrapper)
            lines.append(
                f"  {wrapper.name}: {reached:.1%} sparsity of the {target:.1%} "
                f"targeted; {step} steps run, end_step={end_step}"
            )
    if not lines:
        return None
    return (
        "UpdatePruningMasks: training ended before the pruning schedule's "
        "end_step, with the masks short of the targeted sparsity:\n"
        + "\n".join(lines)
        + "\nTrain for more than end_step steps in all (more epochs, or a "
        "smaller end_step) to reach the target; another fit with the callback "
        "continues the schedule."
    )


def _global_shortfall(group: list[PruneLowMagnitude]) -> list[str]:
    """The shortfall line of the `scope="global"` wrappers, all together."""
    end_step = getattr(group[0].schedule, "end_step", None)
    if not isinstance(end_step, int) or end_step < 0:
        return []
    step = _step(group[0])
    if step > end_step:
        return []
    target = group[0].schedule.sparsity_at(end_step)
    masks = [mask for wrapper in group for mask in _masks(wrapper)]
    size = sum(mask.size for mask in masks)
    reached = sum(int(np.count_nonzero(mask == 0)) for mask in masks) / size
    kept = max(int(np.round(size * (1 - target))), 1)
    if reached >= 1 - kept / size - SHORTFALL_TOLERANCE:
        return []
    return [
        f'  {len(group)} layers with scope="global": {reached:.1%} sparsity '
        f"of the {target:.1%} targeted; {step} steps run, end_step={end_step}"
    ]


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
        for wrapper in pruning_wrappers(self.model):
            if not wrapper.pruning_enabled:
                if args and keras.backend.backend() == "jax":
                    reattach_jax_state(self.model, args[0])
                raise RuntimeError(MISSING_CALLBACK.format(name=wrapper.name))
        _compat.set_train_function(self.model, self.function)
        return self.function(*args, **kwargs)


class PruningSummaries(keras.callbacks.Callback):
    """Writes each pruned layer's sparsity to TensorBoard's Scalars tab.

    TensorFlow Model Optimization's `PruningSummaries`, through this package's
    event writer (no TensorFlow needed). For every `PruneLowMagnitude` layer it
    writes `<layer>/sparsity`, the fraction of its masks that is zero, against
    the pruning step (training steps over every `fit`): at the start and at
    the end of every epoch (a step already written is not written again), or
    every `update_freq` batches. tfmot writes at the start of each epoch; a
    custom loop that calls only `on_epoch_begin(epoch=...)`, as tfmot's guide
    does, gets the same points. Use it beside `UpdatePruningMasks`.

    tfmot's `PruningSummaries` is a `TensorBoard` callback and takes its
    arguments; this one writes the sparsity only. It accepts them, and warns
    about those that ask for something (`histogram_freq=1`, say): add
    `keras.callbacks.TensorBoard` for losses, metrics and histograms.

    Args:
        log_dir: the directory of the TensorBoard run; created if missing.
        update_freq: `"epoch"`, or write every this many batches. Defaults to
            `"epoch"`.
        **kwargs: `keras.callbacks.TensorBoard`'s other arguments, ignored.

    Raises:
        TypeError: if `log_dir` is not a path, or for a keyword argument that
            `keras.callbacks.TensorBoard` does not take either.
        ValueError: if `update_freq` is neither `"epoch"` nor a positive
            integer.

    Example:

    ```python
    from keras_bettermodels.callbacks import PruningSummaries, UpdatePruningMasks

    pruned.fit(
        x, y, epochs=10,
        callbacks=[UpdatePruningMasks(), PruningSummaries("runs/pruning")],
    )
    ```
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        update_freq: Any = "epoch",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        _warn_about_tensorboard_arguments(kwargs)
        if not isinstance(log_dir, str | os.PathLike):
            raise TypeError(_validation.invalid_type("log_dir", "a path", log_dir))
        if update_freq != "epoch" and not (
            _validation._is_int(update_freq) and update_freq >= 1
        ):
            raise ValueError(
                _validation.invalid_value(
                    "update_freq",
                    '"epoch" or a positive number of batches',
                    update_freq,
                )
            )
        self.log_dir = log_dir
        self.update_freq = update_freq
        self._batches = 0
        self._written_step: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._batches = 0
        self._written_step = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.update_freq == "epoch":
            self.write()

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if self.update_freq == "epoch":
            return
        self._batches += 1
        if self._batches % self.update_freq == 0:
            self.write()

    def on_epoch_end(
        self,
        epoch: int | None = None,
        logs: dict[str, Any] | None = None,
        *,
        batch: int | None = None,
    ) -> None:
        """Writes the sparsity (`batch` is older tfmot's name for `epoch`)."""
        if self.update_freq == "epoch":
            self.write()

    def write(self) -> None:
        """Writes every wrapper's sparsity now, unless already written at this step."""
        # TensorBoard is a heavy import: only when a summary is written.
        from keras_bettermodels.tensorboard import summary

        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        wrappers = [w for w in pruning_wrappers(self.model) if w.built]
        if not wrappers:
            return
        step = _step(wrappers[0])
        if step == self._written_step:
            return
        summary.write_scalars(
            self.log_dir,
            step,
            {f"{w.name}/sparsity": _mask_sparsity(w) for w in wrappers},
        )
        self._written_step = step


def _warn_about_tensorboard_arguments(kwargs: dict[str, Any]) -> None:
    """Accepts `keras.callbacks.TensorBoard`'s arguments, as tfmot's callback does.

    Warns about those that ask for something this callback does not write;
    a value that asks for nothing (TensorBoard's default, `0`, `False`) passes
    silently.
    """
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(
            keras.callbacks.TensorBoard.__init__
        ).parameters.items()
        if name not in ("self", "log_dir", "update_freq")
    }
    for name in kwargs:
        if name not in defaults:
            raise TypeError(
                f"PruningSummaries got an unexpected keyword argument {name!r}. "
                f"It takes log_dir, update_freq and, ignored, "
                f"keras.callbacks.TensorBoard's {', '.join(defaults)}."
            )
    asked = {
        name: value
        for name, value in kwargs.items()
        if value and value != defaults[name]
    }
    if asked:
        given = ", ".join(f"{name}={value!r}" for name, value in asked.items())
        warnings.warn(
            f"PruningSummaries writes only each pruned layer's sparsity and "
            f"ignores {given}. Add keras.callbacks.TensorBoard(log_dir, {given}) "
            "for them.",
            stacklevel=3,
        )
