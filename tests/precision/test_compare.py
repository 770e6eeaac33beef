"""`compare_precision`: side-by-side step times, final losses, the policy restored."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_bettermodels.precision import PrecisionComparison, compare_precision


def _build():
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
            keras.layers.Activation("softmax", dtype="float32"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 32)).astype("float32"), rng.integers(0, 10, 64)


def test_times_each_policy_and_reports_speedup_and_losses():
    keras.config.set_dtype_policy("mixed_bfloat16")
    built = []

    def build():
        built.append(keras.config.dtype_policy().name)
        return _build()

    result = compare_precision(build, _batch(), steps=6)
    assert isinstance(result, PrecisionComparison)
    assert built == ["float32", "mixed_float16"]  # each model under its policy
    assert result.policies == ("float32", "mixed_float16")
    assert (result.steps, result.batch_size) == (6, 64)
    assert result.backend == keras.backend.backend() and result.devices
    for policy in result.policies:
        assert result.step_time[policy] > 0
        assert len(result.round_times[policy]) == 5  # 6 steps in 5 rounds
        assert math.isfinite(result.final_loss[policy])
    assert result.speedups["float32"] == 1.0
    assert result.speedup == pytest.approx(
        result.step_time["float32"] / result.step_time["mixed_float16"]
    )
    # Same initial weights and steps: the losses differ by rounding only.
    assert result.final_loss["mixed_float16"] == pytest.approx(
        result.final_loss["float32"], rel=0.05
    )
    table = result.summary()
    assert "mixed_float16" in table and "speedup" in table and str(result) == table
    assert result.to_dict()["speedups"]["float32"] == 1.0
    assert keras.config.dtype_policy().name == "mixed_bfloat16"  # restored


def test_the_global_policy_is_restored_after_an_error_too():
    keras.config.set_dtype_policy("mixed_bfloat16")
    calls = []

    def failing():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return _build()

    with pytest.raises(RuntimeError, match="out of memory"):
        compare_precision(failing, _batch(), steps=2)
    assert keras.config.dtype_policy().name == "mixed_bfloat16"


class TestArguments:
    def test_the_model_must_be_compiled(self):
        def uncompiled():
            return keras.Sequential([keras.Input((32,)), keras.layers.Dense(10)])

        with pytest.raises(ValueError, match=r"compiled model.*compile"):
            compare_precision(uncompiled, _batch(), steps=1)

    def test_the_same_architecture_is_expected_each_time(self):
        sizes = iter([64, 128])

        def changing():
            model = keras.Sequential(
                [keras.Input((32,)), keras.layers.Dense(next(sizes))]
            )
            model.compile("sgd", "mse")
            return model

        x = np.zeros((8, 32), "float32")
        with pytest.raises(ValueError, match="same architecture"):
            compare_precision(changing, (x, np.zeros((8, 64), "float32")), steps=1)

    @pytest.mark.parametrize(
        ("arguments", "error", "match"),
        [
            ({"build_model": 3}, TypeError, "`build_model`"),
            ({"data": [1, 2]}, TypeError, "`data`"),
            ({"policies": "float32"}, TypeError, "`policies`"),
            ({"policies": ("float32",)}, ValueError, "at least two different"),
            ({"policies": ("float32", "float17")}, ValueError, "`policies`"),
            ({"steps": 0}, ValueError, "`steps`"),
        ],
    )
    def test_bad_arguments_are_refused_in_keras_wording(self, arguments, error, match):
        call = {"build_model": _build, "data": _batch(), **arguments}
        with pytest.raises(error, match=match):
            compare_precision(call.pop("build_model"), call.pop("data"), **call)
