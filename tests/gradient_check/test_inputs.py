"""The batch a check runs on (`_inputs.py`): checked, described, float64.

A batch that does not fit the model, a batch whose parts disagree on the
number of samples, a string or a dataset are refused in Keras' wording, and
the message shows shapes and dtypes; a build config that cannot be read is
logged and the check goes on.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

from keras_bettermodels.gradient_check import _inputs
from keras_bettermodels.gradient_check.check import check_gradients
from tests.gradient_check import planted
from tests.gradient_check._models import (
    CALL_CASE_FIELDS,
    SmoothOutputModel,
    batch,
    call_cases,
    sequential,
    six_samples,
)


def _bad_batch_cases():
    compiled = lambda: sequential(keras.layers.Dense(1))  # noqa: E731
    x, y = batch()
    return [
        (
            "x_of_the_wrong_width",
            compiled,
            (x[:, :3], y),
            {},
            ValueError,
            r"argument `x`\. Expected 1 input of shape \(None, 5\)\. "
            r"Received: x=<array of shape \(12, 3\)",
        ),
        ("x_a_string", compiled, ("abc", y), {}, TypeError, "argument `x`"),
        (
            "y_with_fewer_samples",
            compiled,
            (x, y[:5]),
            {},
            ValueError,
            r"argument `y`\. Expected as many samples as `x` \(12\)",
        ),
        (
            "sample_weight_with_fewer_samples",
            compiled,
            (x, y),
            {"sample_weight": np.ones(3)},
            ValueError,
            "argument `sample_weight`",
        ),
    ]


@pytest.mark.parametrize(CALL_CASE_FIELDS, call_cases(_bad_batch_cases()))
def test_bad_batches_fail_in_keras_wording(build, data, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_gradients(build(), *data, **kwargs)


def test_a_dataset_is_refused_as_x():
    x, y = batch()
    model = sequential(keras.layers.Dense(1))

    def batches():
        yield x, y

    with pytest.raises(TypeError, match="not a dataset or generator"):
        check_gradients(model, batches(), y)


def test_a_subclassed_model_that_rejects_x_blames_x():
    model = SmoothOutputModel(units=3)
    model.compile(loss="mse")
    x, y = batch()
    model(x)
    with pytest.raises(
        ValueError, match=r"argument `x`\. Expected inputs of shape \(None, 5\)"
    ):
        check_gradients(model, x[:, :2], y)


@keras.saving.register_keras_serializable(package=planted.PACKAGE)
class UnreadableBuildConfig(keras.Model):
    """A subclassed model whose build config cannot be read the first time."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)
        self.failures = 1

    def call(self, inputs):
        return self.dense(inputs)

    def get_build_config(self):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("planted: no build config")
        return super().get_build_config()


def test_an_unreadable_build_config_is_logged_and_the_check_goes_on(caplog):
    x, y = six_samples()
    model = UnreadableBuildConfig()
    model.compile(loss="mse")
    model(x)
    with caplog.at_level(logging.DEBUG, "keras_bettermodels.gradient_check"):
        report = check_gradients(model, x, y, seed=0, verbose=0)
    assert report.passed, report
    assert model.failures == 0
    assert "planted: no build config" in caplog.text
    assert "RuntimeError" in caplog.text


def test_floats_become_float64_and_ids_and_masks_stay_as_they_are():
    x = {
        "image": np.ones((3, 2), "float32"),
        "ids": np.arange(6, dtype="int32").reshape(3, 2),
        "mask": np.ones((3,), bool),
    }
    converted = _inputs.as_float64_batch("x", x)
    assert {k: str(v.dtype) for k, v in converted.items()} == {
        "image": "float64",
        "ids": "int32",
        "mask": "bool",
    }
    np.testing.assert_array_equal(converted["ids"], x["ids"])
    assert _inputs.as_float64_batch("y", None) is None
    assert repr(_inputs.describe(x)) == (
        "{'image': <array of shape (3, 2) and dtype float32>, "
        "'ids': <array of shape (3, 2) and dtype int32>, "
        "'mask': <array of shape (3,) and dtype bool>}"
    )
