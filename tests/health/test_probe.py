"""The probe's float16 underflow share counts gradients at the loss scale."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.health.findings import float16_range
from keras_bettermodels.health.probe import DEFAULT_LOSS_SCALE, HealthProbe, loss_scale

pytestmark = pytest.mark.any_backend  # keras.ops reductions, the same everywhere


@pytest.fixture(autouse=True)
def restore_dtype_policy():
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


def _model(factor, **compile_kwargs):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="dense")], name="net"
    )

    def scaled_mse(y_true, y_pred):  # a loss whose gradient is `factor` small
        return factor * keras.ops.mean(keras.ops.square(y_true - y_pred))

    model.compile("sgd", scaled_mse, **compile_kwargs)
    return model


def _underflow(model):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 4)).astype("float32")
    y = rng.uniform(size=(16, 3)).astype("float32")
    probe = HealthProbe(model)
    _, rows = probe.sample(0, probe.bind(x, y))
    found = float16_range(rows, model.dtype_policy.name)
    return rows[0].gradient_underflow, [(f.code, f.layer) for f in found]


def test_the_loss_scale_is_the_optimizers_or_the_one_mixed_float16_would_use():
    assert loss_scale(_model(1.0)) == DEFAULT_LOSS_SCALE == 2.0**15
    keras.config.set_dtype_policy("mixed_float16")
    assert loss_scale(_model(1.0)) == 2.0**15  # compile wrapped the optimizer
    assert loss_scale(_model(1.0, auto_scale_loss=False)) == 1.0


def test_gradients_tiny_only_before_scaling_make_no_finding():
    # ~1e-10 gradient values: below 2^-24 (6e-8), above it once times 2^15.
    share, found = _underflow(_model(1e-9))
    assert share < 0.01 and found == []  # a value whose error is ~0 may be tiny


def test_gradients_tiny_even_when_scaled_are_underflow_naming_the_layer():
    share, found = _underflow(_model(1e-15))
    assert share == 1.0 and found == [("float16-underflow", "net/dense")]
