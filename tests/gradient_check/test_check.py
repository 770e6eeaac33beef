"""check_gradients (`check.py`) on real models, on the backend of the run.

Planted bugs are flagged and located; correct models over many layer types
pass; a kink is reported as a kink, also one at the weights themselves (the
check looks again at nudged weights); a loss that is not deterministic is
refused; bad arguments fail in Keras' wording; the report is JSON.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_bettermodels.gradient_check import _core
from keras_bettermodels.gradient_check import check as check_module
from keras_bettermodels.gradient_check.check import check_gradients
from tests.gradient_check import planted
from tests.gradient_check._models import (
    CALL_CASE_FIELDS,
    batch,
    call_cases,
    sequential,
    verdicts_of,
)
from tests.zoo.models import SMOOTH, layer_types

BACKEND = keras.backend.backend()


# -- planted bugs ------------------------------------------------------------

PLANTED = {
    "tanh_forgets_the_square": (
        lambda: sequential(
            keras.layers.Dense(6, name="before"),
            planted.HandTanh(forget_square=True),
            keras.layers.Dense(1, name="after"),
        ),
        # The bug is between the two layers: the layer before it gets a wrong
        # gradient, the layer after it (nearer the loss) does not.
        {"m/before/kernel", "m/before/bias"},
    ),
    "kernel_gradient_scaled_by_1.03": (
        lambda: sequential(
            planted.ScaledKernelDense(6, activation="tanh", name="scaled"),
            keras.layers.Dense(1, name="after"),
        ),
        {"m/scaled/kernel"},
    ),
    "bias_gradient_with_the_wrong_sign": (
        lambda: sequential(
            keras.layers.Dense(6, activation="tanh", name="before"),
            planted.WrongSignBiasDense(1, name="sign"),
        ),
        {"m/sign/bias"},
    ),
    "penalty_cut_off_by_stop_gradient": (
        lambda: sequential(
            planted.DetachedPenaltyDense(6, activation="tanh", name="penalized"),
            keras.layers.Dense(1, name="after"),
        ),
        {"m/penalized/kernel"},
    ),
}


@pytest.mark.parametrize("case", list(PLANTED), ids=str)
def test_planted_bugs_are_flagged_and_located(case):
    build, buggy = PLANTED[case]
    keras.utils.set_random_seed(1)
    x, y = batch()
    report = check_gradients(build(), x, y, seed=0)
    assert report.verdict == "bug" and not report.passed, report
    verdicts = verdicts_of(report)
    assert {name for name, v in verdicts.items() if v == "bug"} == buggy, report
    # Every other variable is right, to the "great" band.
    assert {v for name, v in verdicts.items() if name not in buggy} == {"great"}
    assert not report.kinks


@pytest.mark.parametrize(
    "build",
    [
        lambda: sequential(
            keras.layers.Dense(6, name="before"),
            planted.HandTanh(forget_square=False),
            keras.layers.Dense(1, name="after"),
        ),
        lambda: sequential(
            planted.DetachedPenaltyDense(6, activation="tanh", detach=False),
            keras.layers.Dense(1),
        ),
    ],
    ids=["hand_written_tanh_gradient", "differentiated_penalty"],
)
def test_the_planted_layers_done_right_pass(build):
    keras.utils.set_random_seed(1)
    x, y = batch()
    report = check_gradients(build(), x, y, seed=0)
    assert report.verdict == "great", report


# -- no false alarms ---------------------------------------------------------


def test_the_correct_models_use_at_least_15_built_in_layer_types(correct_models):
    types = set()
    for model, *_ in correct_models.values():
        types |= layer_types(model)
    assert len(types) >= 15, sorted(types)
    assert {
        "Dense",
        "Conv1D",
        "Conv2D",
        "MaxPooling2D",
        "Embedding",
        "LSTM",
        "GRU",
    } <= types
    assert {"LayerNormalization", "BatchNormalization", "Dropout", "L1", "L2"} <= types
    assert "MultiHeadAttention" in types


@pytest.mark.parametrize("name", list(SMOOTH), ids=str)
def test_correct_models_pass(name, correct_models):
    model, x, y, sample_weight = correct_models[name]
    report = check_gradients(model, x, y, sample_weight=sample_weight, seed=0)
    assert report.passed, report
    # The worst row: attention's kernels read up to 2.6e-07 on some backends.
    assert report.relative_error < 1e-6, report
    # One headline: the worst row's error, whose band is the verdict.
    rows = [*report.variables, report.all_variables]
    assert report.relative_error == max(r.relative_error for r in rows)
    assert _core.verdict(report.relative_error) == report.verdict
    assert report.set_by in [r.name for r in rows] and report.nudge is None
    assert len(report.variables) == len(model.trainable_variables)
    assert report.num_parameters == sum(
        int(np.prod(v.shape)) for v in model.trainable_variables
    )
    # Two forward passes per direction: two directions in each variable and
    # two over all of them; one more for J(θ), one more per kink crossed.
    assert report.method == "directional" and report.num_directions == 2
    crossings = sum(v.kinks for v in report.variables) + report.all_variables.kinks
    passes = 2 * 2 * (len(model.trainable_variables) + 1) + 1
    assert report.num_evaluations == passes + crossings


# -- kinks -------------------------------------------------------------------


@pytest.fixture(scope="module")
def relu_at_its_kink():
    """A ReLU unit whose pre-activation on the first sample is exactly 0."""
    x = np.random.default_rng(0).normal(size=(4, 4)).astype("float32")
    x[0] = [1, 2, 0, 0]
    y = np.ones((4, 1), "float32")
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
    model.compile(loss="mse")
    kernel, bias = model.get_layer("hidden").get_weights()
    kernel[:, 0] = [0.5, 0.25, 0.125, 1.0]  # 0.5 * 1 + 0.25 * 2 = 1, exactly
    bias[0] = -1.0
    model.get_layer("hidden").set_weights([kernel, bias])
    return model, x, y


def test_a_step_across_a_relu_kink_is_reported_as_a_kink_not_a_bug(relu_at_its_kink):
    model, x, y = relu_at_its_kink
    report = check_gradients(model, x, y, seed=0)
    assert {"hidden/kernel", "hidden/bias"} <= set(report.kinks), report
    assert report.passed, report
    kinked = {v.name: v for v in report.variables}["hidden/kernel"]
    assert kinked.kinks > 0 and kinked.verdict != "bug"


def test_without_kink_detection_the_same_check_would_cry_bug(
    relu_at_its_kink, monkeypatch
):
    model, x, y = relu_at_its_kink
    monkeypatch.setattr(_core, "KINK_JUMP", float("inf"))
    report = check_gradients(model, x, y, seed=0)
    assert report.verdict == "bug" and not report.kinks


@pytest.fixture(scope="module")
def relus_on_their_kinks():
    """Keras' zero biases on all-zero input rows: ReLUs sit exactly at 0.

    Every direction that moves the bias turns some units on in the + step
    and others in the − step: no side of θ is smooth.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype("float32")
    x[:4] = 0.0
    y = rng.normal(size=(8, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(6, activation="relu", name="hidden"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.compile(loss="mse")
    return model, x, y


def test_kinks_at_the_weights_are_checked_at_nudged_weights(relus_on_their_kinks):
    model, x, y = relus_on_their_kinks
    before = [w.copy() for w in model.get_weights()]
    report = check_gradients(model, x, y, seed=0, verbose=0)
    assert report.passed and report.nudge == _core.NUDGE, report
    assert any(name.endswith("hidden/bias") for name in report.kinks), report
    assert "nudged" in str(report)
    # The user's model is only read.
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_without_the_nudge_kinks_at_the_weights_would_read_bug(
    relus_on_their_kinks, monkeypatch
):
    model, x, y = relus_on_their_kinks
    monkeypatch.setattr(check_module, "_failed_rough", lambda *args: False)
    report = check_gradients(model, x, y, seed=0, verbose=0)
    assert report.verdict == "bug" and report.nudge is None, report


def test_a_wrong_gradient_at_nudged_weights_is_still_a_bug(relus_on_their_kinks):
    model, x, y = relus_on_their_kinks
    inputs = keras.Input((5,))
    hidden = planted.WrongSignBiasDense(6, activation="relu", name="hidden")(inputs)
    wrong = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
    wrong.compile(loss="mse")
    wrong.set_weights(model.get_weights())
    report = check_gradients(wrong, x, y, seed=0, verbose=0)
    assert report.verdict == "bug", report
    failed = [v.name.split("/")[-2:] for v in report.failed_variables]
    assert failed == [["hidden", "bias"]], report


# -- what the check computes with --------------------------------------------


def test_an_uncompiled_model_is_checked_with_the_given_loss():
    x, y = batch()
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(1, activation="tanh")]
    )
    report = check_gradients(model, x, y, loss=keras.losses.MeanSquaredError(), seed=0)
    assert report.verdict == "great", report
    assert not model.compiled


def test_the_same_seed_gives_the_same_report(correct_models):
    model, x, y, _ = correct_models["image"]  # with dropout
    first = check_gradients(model, x, y, seed=11, num_directions=1)
    second = check_gradients(model, x, y, seed=11, num_directions=1)
    assert first.relative_error == second.relative_error
    assert first.loss == second.loss
    other = check_gradients(model, x, y, seed=12, num_directions=1)
    assert other.relative_error != first.relative_error


def test_a_nondeterministic_loss_is_refused():
    @keras.saving.register_keras_serializable(package=planted.PACKAGE)
    class PythonNoise(keras.layers.Layer):
        def call(self, inputs):
            return inputs + float(np.random.normal())

    model = sequential(keras.layers.Dense(2), PythonNoise(), keras.layers.Dense(1))
    x, y = batch()
    with pytest.raises(ValueError, match="not deterministic"):
        check_gradients(model, x, y)


# -- bad arguments, and the report -------------------------------------------


def _bad_argument_cases():
    compiled = lambda: sequential(keras.layers.Dense(1))  # noqa: E731
    x, y = batch()
    frozen = compiled()
    frozen.trainable = False
    uncompiled = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    unbuilt = keras.Sequential([keras.layers.Dense(1)])
    unbuilt.compile(loss="mse")
    return [
        (
            "epsilon_zero",
            compiled,
            (x, y),
            {"epsilon": 0},
            ValueError,
            r"Invalid value for argument `epsilon`\. Expected a positive number\. "
            r"Received: epsilon=0",
        ),
        (
            "epsilon_negative",
            compiled,
            (x, y),
            {"epsilon": -1e-6},
            ValueError,
            "Received: epsilon=-1e-06",
        ),
        (
            "epsilon_string",
            compiled,
            (x, y),
            {"epsilon": "1e-6"},
            TypeError,
            "Received: epsilon='1e-6'",
        ),
        (
            "method",
            compiled,
            (x, y),
            {"method": "forward"},
            ValueError,
            "argument `method`.*Received: method='forward'",
        ),
        (
            "num_directions",
            compiled,
            (x, y),
            {"num_directions": 0},
            ValueError,
            "Received: num_directions=0",
        ),
        (
            "num_directions_with_coordinates",
            compiled,
            (x, y),
            {"num_directions": 3, "method": "coordinate"},
            ValueError,
            "max_coordinates_per_variable",
        ),
        ("seed", compiled, (x, y), {"seed": -1}, ValueError, "Received: seed=-1"),
        (
            "training",
            compiled,
            (x, y),
            {"training": 1},
            TypeError,
            "Received: training=1",
        ),
        (
            "uncompiled_without_loss",
            lambda: uncompiled,
            (x, y),
            {},
            ValueError,
            r"argument `loss`\. Expected a loss, since the model is not compiled",
        ),
        (
            "unknown_loss",
            lambda: uncompiled,
            (x, y),
            {"loss": "msee"},
            ValueError,
            "Received: loss='msee'",
        ),
        (
            "no_trainable_variables",
            lambda: frozen,
            (x, y),
            {},
            ValueError,
            "Expected a model with trainable variables",
        ),
        ("unbuilt", lambda: unbuilt, (x, y), {}, ValueError, "Expected a built model"),
        (
            "not_a_model",
            lambda: keras.layers.Dense(1),
            (x, y),
            {},
            TypeError,
            "Invalid type for argument `model`",
        ),
        ("x_missing", compiled, (None, y), {}, ValueError, "Received: x=None"),
        (
            "y_that_the_loss_rejects",
            compiled,
            (x, np.zeros((12, 3, 2), "float32")),
            {},
            ValueError,
            r"argument `y`\. Expected targets",
        ),
    ]


@pytest.mark.parametrize(CALL_CASE_FIELDS, call_cases(_bad_argument_cases()))
def test_bad_arguments_fail_in_keras_wording(build, data, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_gradients(build(), *data, **kwargs)


def test_the_report_is_json(correct_models):
    model, x, y, _ = correct_models["image"]
    report = check_gradients(model, x, y, seed=0)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["backend"] == BACKEND
    assert [v["name"] for v in data["variables"]] == [
        v.path for v in model.trainable_variables
    ]
