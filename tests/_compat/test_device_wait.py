"""`_compat.timing.wait_for_device`: where Keras keeps what it waits on.

On JAX it blocks on the trainer's state (`model._jax_state`, Keras 3.15.1):
these tests fail loudly if Keras stops keeping it there at the hooks where the
timing callback waits, or stops wrapping it in containers `keras.tree`
flattens. On every backend the wait runs in a real fit without error.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels._compat.timing import wait_for_device

on_jax = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason=f"the trainer's state is JAX's; KERAS_BACKEND={keras.backend.backend()}",
)


class _Probe(keras.callbacks.Callback):
    """Waits at the hooks CacheTimingCallback waits at and records, on JAX,
    whether the trainer's state was there and ready afterwards."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def _wait(self, hook):
        model = self._model  # not `self.model`: on JAX that syncs the state
        wait_for_device(model)
        if keras.backend.backend() != "jax":
            self.seen.append((hook, None, None))
            return
        import jax

        state = getattr(model, "_jax_state", None)
        leaves = keras.tree.flatten(state) if state else []
        arrays = [leaf for leaf in leaves if isinstance(leaf, jax.Array)]
        self.seen.append((hook, len(arrays), all(array.is_ready() for array in arrays)))

    def on_test_begin(self, logs=None):
        self._wait("test_begin")

    def on_test_end(self, logs=None):
        self._wait("test_end")

    def on_epoch_end(self, epoch, logs=None):
        self._wait("epoch_end")


def _fit(callbacks, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    model.compile("adam", "mse", metrics=["mae"])
    model.fit(
        x, x[:, :2], batch_size=8, epochs=2, verbose=0, callbacks=callbacks, **kwargs
    )
    return model


def test_the_wait_runs_at_every_boundary_on_every_backend():
    probe = _Probe()
    model = _fit([probe], validation_split=0.25)
    hooks = [hook for hook, _, _ in probe.seen]
    assert hooks == ["test_begin", "test_end", "epoch_end"] * 2
    wait_for_device(model)  # after fit: the variables hold the state
    wait_for_device(None)


@on_jax
def test_jax_keeps_the_training_state_in_the_trainer_and_the_wait_readies_it():
    probe = _Probe()
    _fit([probe], validation_split=0.25)
    # 4 trainable, 2 non-trainable (BatchNormalization's moving statistics),
    # the optimizer's and the metrics' variables.
    begin = [
        (count, ready) for hook, count, ready in probe.seen if hook == "test_begin"
    ]
    assert all(count and count > 6 and ready for count, ready in begin), probe.seen
    # Without validation the epoch ends with the training state still there.
    probe = _Probe()
    _fit([probe])
    assert [hook for hook, _, _ in probe.seen] == ["epoch_end"] * 2
    assert all(count and ready for _, count, ready in probe.seen), probe.seen
