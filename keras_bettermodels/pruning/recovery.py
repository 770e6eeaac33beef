"""Leaving a model fit to train again when pruning refuses a training step.

A `PruneLowMagnitude` wrapper raises while the first training step is traced
(or run) when `UpdatePruningMasks` did not switch pruning on. On JAX, Keras'
trainer has by then detached the model's variable values into a local `state`
that it would reattach only after a step; on TensorFlow the failed trace spoils
the compiled function. The functions here undo both, so that the error costs
the user nothing.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_bettermodels._compat import pruning as _compat

__all__ = ["reattach_jax_state", "recover_trainer_before_raising"]


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
    if len(state) != len(_compat.JAX_STATE_KEYS):
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
    # Called while the step is traced, inside the model's stateless scope.
    _compat.set_jax_trainer_state(model, state)
    return True


def recover_trainer_before_raising() -> None:
    """Best effort: leave the model being trained fit to train again after an error.

    Finds the trainer's `fit` (or `train_on_batch`) up the stack. On JAX it
    reattaches the variable values the trainer detached; on every backend it
    drops the compiled training function, so that the next `fit` builds a new
    one.
    """
    found = _compat.find_training_frame()
    if found is None:
        return
    model, state = found
    if keras.backend.backend() == "jax":
        reattach_jax_state(model, state)
    _compat.set_train_function(model, None)
