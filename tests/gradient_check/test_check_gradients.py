"""check_gradients on real models, on the backend of the run.

Planted bugs are flagged and located; correct models over many layer types
pass; a kink is reported as a kink; the user's model and Keras' global
settings are left as they were; bad arguments fail in Keras' wording.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_bettermodels.gradient_check import _core
from keras_bettermodels.gradient_check import check as check_module
from keras_bettermodels.gradient_check._clone import ModelNotRebuildableError
from keras_bettermodels.gradient_check.check import check_gradients
from tests.gradient_check import planted, zoo

BACKEND = keras.backend.backend()


def _data(samples=12, features=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)).astype("float32")
    y = rng.normal(size=(samples, 1)).astype("float32")
    return x, y


def _sequential(*layers, features=5, loss="mse"):
    model = keras.Sequential([keras.Input((features,)), *layers], name="m")
    model.compile(optimizer="adam", loss=loss)
    return model


def _verdicts(report):
    return {v.name: v.verdict for v in report.variables}


# -- planted bugs ------------------------------------------------------------

PLANTED = {
    "tanh_forgets_the_square": (
        lambda: _sequential(
            keras.layers.Dense(6, name="before"),
            planted.HandTanh(forget_square=True),
            keras.layers.Dense(1, name="after"),
        ),
        # The bug is between the two layers: the layer before it gets a wrong
        # gradient, the layer after it (nearer the loss) does not.
        {"m/before/kernel", "m/before/bias"},
    ),
    "kernel_gradient_scaled_by_1.03": (
        lambda: _sequential(
            planted.ScaledKernelDense(6, activation="tanh", name="scaled"),
            keras.layers.Dense(1, name="after"),
        ),
        {"m/scaled/kernel"},
    ),
    "bias_gradient_with_the_wrong_sign": (
        lambda: _sequential(
            keras.layers.Dense(6, activation="tanh", name="before"),
            planted.WrongSignBiasDense(1, name="sign"),
        ),
        {"m/sign/bias"},
    ),
    "penalty_cut_off_by_stop_gradient": (
        lambda: _sequential(
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
    x, y = _data()
    report = check_gradients(build(), x, y, seed=0)
    assert report.verdict == "bug" and not report.passed, report
    verdicts = _verdicts(report)
    assert {name for name, v in verdicts.items() if v == "bug"} == buggy, report
    # Every other variable is right, to the "great" band.
    assert {v for name, v in verdicts.items() if name not in buggy} == {"great"}
    assert not report.kinks


@pytest.mark.parametrize(
    "build",
    [
        lambda: _sequential(
            keras.layers.Dense(6, name="before"),
            planted.HandTanh(forget_square=False),
            keras.layers.Dense(1, name="after"),
        ),
        lambda: _sequential(
            planted.DetachedPenaltyDense(6, activation="tanh", detach=False),
            keras.layers.Dense(1),
        ),
    ],
    ids=["hand_written_tanh_gradient", "differentiated_penalty"],
)
def test_the_planted_layers_done_right_pass(build):
    keras.utils.set_random_seed(1)
    x, y = _data()
    report = check_gradients(build(), x, y, seed=0)
    assert report.verdict == "great", report


# -- no false alarms ---------------------------------------------------------


@pytest.fixture(scope="module")
def correct_models():
    """The zoo, built once: checks never change a model, so tests share them."""
    keras.utils.set_random_seed(0)
    return {name: build() for name, build in zoo.BUILDERS.items()}


def test_the_correct_models_use_at_least_15_built_in_layer_types(correct_models):
    types = set()
    for model, *_ in correct_models.values():
        types |= zoo.layer_types(model)
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


@pytest.mark.parametrize("name", list(zoo.BUILDERS), ids=str)
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


# -- what J is ---------------------------------------------------------------


@keras.saving.register_keras_serializable(package=planted.PACKAGE)
class ActivityPenalty(keras.layers.Layer):
    def call(self, inputs):
        self.add_loss(0.5 * keras.ops.mean(keras.ops.square(inputs)))
        return inputs


def test_j_counts_the_compiled_loss_regularizers_and_add_loss_once_each():
    x, y = _data()
    keras.utils.set_random_seed(2)
    model = _sequential(
        keras.layers.Dense(4, activation="tanh", kernel_regularizer="l2"),
        ActivityPenalty(),
        keras.layers.Dense(
            1, bias_initializer="ones", bias_regularizer=keras.regularizers.L1(0.3)
        ),
    )
    report = check_gradients(model, x, y, seed=0)
    prediction = keras.ops.convert_to_numpy(model(x))
    # Both regularizers and the add_loss penalty.
    penalties = [float(keras.ops.convert_to_numpy(p)) for p in model.losses]
    assert len(penalties) == 3 and min(penalties) > 1e-3
    expected = float(keras.losses.MeanSquaredError()(y, prediction)) + sum(penalties)
    assert report.loss == pytest.approx(expected, rel=1e-5)
    assert report.verdict == "great", report


@keras.saving.register_keras_serializable(package=planted.PACKAGE)
class SmoothOutputModel(keras.Model):
    """A subclassed model that adds a term of its own in `compute_loss`."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="tanh")
        self.out = keras.layers.Dense(1)

    def call(self, inputs):
        return self.out(self.hidden(inputs))

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        return loss + 0.25 * keras.ops.mean(keras.ops.square(y_pred))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_a_subclassed_model_with_its_own_compute_loss():
    x, y = _data()
    keras.utils.set_random_seed(3)
    model = SmoothOutputModel(units=3)
    model.compile(loss="mse")
    prediction = keras.ops.convert_to_numpy(model(x))
    report = check_gradients(model, x, y, seed=0)
    assert report.verdict == "great", report
    expected = float(keras.losses.MeanSquaredError()(y, prediction)) + 0.25 * float(
        np.mean(np.square(keras.ops.convert_to_numpy(prediction)))
    )
    assert report.loss == pytest.approx(expected, rel=1e-5)
    assert [v.shape for v in report.variables] == [(5, 3), (3,), (3, 1), (1,)]


def test_sample_weights_enter_the_loss(correct_models):
    model, x, y, sample_weight = correct_models["two_inputs_two_outputs"]
    weighted = check_gradients(model, x, y, sample_weight=sample_weight, seed=0)
    plain = check_gradients(model, x, y, seed=0)
    assert weighted.passed and plain.passed
    assert weighted.loss != pytest.approx(plain.loss, rel=1e-3)


def test_an_uncompiled_model_is_checked_with_the_given_loss():
    x, y = _data()
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(1, activation="tanh")]
    )
    report = check_gradients(model, x, y, loss=keras.losses.MeanSquaredError(), seed=0)
    assert report.verdict == "great", report
    assert not model.compiled


def test_unseeded_dropout_is_pinned_on_every_backend():
    keras.utils.set_random_seed(4)
    x, y = _data()
    model = _sequential(
        keras.layers.Dense(8, activation="tanh"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1),
    )
    report = check_gradients(model, x, y)
    assert report.verdict == "great", report


def test_the_same_seed_gives_the_same_report(correct_models):
    model, x, y, _ = correct_models["image"]  # with dropout
    first = check_gradients(model, x, y, seed=11, num_directions=1)
    second = check_gradients(model, x, y, seed=11, num_directions=1)
    assert first.relative_error == second.relative_error
    assert first.loss == second.loss
    other = check_gradients(model, x, y, seed=12, num_directions=1)
    assert other.relative_error != first.relative_error


@pytest.mark.skipif(BACKEND == "torch", reason="PyTorch runs the probes eagerly")
def test_nothing_is_compiled_per_direction():
    from keras_bettermodels.gradient_check import _probes

    x, y = _data()
    model = _sequential(keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1))
    check_gradients(model, x, y, seed=0, num_directions=1)
    move = _probes._compiled("move", BACKEND)
    compiled = _traces(move)
    report = check_gradients(model, x, y, seed=1, num_directions=6)
    assert report.passed, report
    assert report.num_evaluations == 2 * 6 * (4 + 1) + 1
    assert _traces(move) == compiled


def _traces(function):
    if BACKEND == "jax":
        return function._cache_size()
    return function.experimental_get_tracing_count()


def test_the_probes_keep_theta_and_the_gradient_on_the_device(monkeypatch):
    """No variable goes through NumPy in a repeated call: only scalars do."""
    x, y = _data()
    model = _sequential(
        keras.layers.Dense(40, activation="tanh"), keras.layers.Dense(1)
    )
    check_gradients(model, x, y, seed=0, num_directions=1)
    converted = []
    original = keras.ops.convert_to_numpy

    def watched(value):
        array = original(value)
        converted.append(np.size(array))
        return array

    monkeypatch.setattr(keras.ops, "convert_to_numpy", watched)
    report = check_gradients(model, x, y, seed=1, num_directions=2)
    assert report.passed, report
    # The batch is converted (60 and 12 numbers); no variable is.
    sizes = {int(np.prod(v.shape)) for v in model.weights} - {1}
    assert converted and not sizes & set(converted), (sizes, converted)


def test_the_coordinate_method_checks_every_coordinate_and_locates_the_bug(capsys):
    keras.utils.set_random_seed(6)
    x, y = _data(samples=6, features=3)
    model = _sequential(
        planted.ScaledKernelDense(2, activation="tanh", name="scaled"),
        keras.layers.Dense(1, name="after"),
        features=3,
    )
    report = check_gradients(
        model, x, y, method="coordinate", max_coordinates_per_variable=None, seed=0
    )
    assert [v.checked for v in report.variables] == [6, 2, 2, 1]
    # A failing check whose steps were not smooth is looked at again at nudged
    # weights (∇J and J there, then every coordinate): still a bug, so the
    # report is the one at the model's weights.
    assert report.num_evaluations in (2 * 11 + 1, 2 * (2 * 11 + 1) + 1)
    assert report.nudge is None
    assert {n for n, v in _verdicts(report).items() if v == "bug"} == {
        "m/scaled/kernel"
    }
    assert "coordinate" in capsys.readouterr().out  # the progress bar
    sampled = check_gradients(
        model, x, y, method="coordinate", max_coordinates_per_variable=3, verbose=0
    )
    assert [v.checked for v in sampled.variables] == [3, 2, 2, 1]
    assert capsys.readouterr().out == ""


# -- the user's model and Keras' settings are left alone ---------------------


def _state(model):
    from keras.src.backend.common import dtypes, global_state

    state = {
        "variables": [
            keras.ops.convert_to_numpy(v.value).copy() for v in model.variables
        ],
        "optimizer": [
            keras.ops.convert_to_numpy(v.value).copy()
            for v in model.optimizer.variables
        ],
        "trainable": [layer.trainable for layer in model._flatten_layers()],
        "loss": model.loss,
        "compiled_loss": model._compile_loss,
        "floatx": keras.config.floatx(),
        "policy": global_state.get_global_attribute("dtype_policy", None),
        "promotion": dtypes.BIT64_TO_BIT32_DTYPE["float64"],
        "losses": len(model.losses),
    }
    if BACKEND == "jax":
        import jax

        state["x64"] = jax.config.jax_enable_x64
    if BACKEND == "torch":
        import torch

        state["torch_rng"] = torch.random.get_rng_state().numpy().copy()
    return state


def _assert_same_state(before, after):
    assert before.keys() == after.keys()
    for key in before:
        if key in ("variables", "optimizer"):
            assert len(before[key]) == len(after[key])
            for old, new in zip(before[key], after[key], strict=True):
                np.testing.assert_array_equal(old, new)
        elif key == "torch_rng":
            np.testing.assert_array_equal(before[key], after[key])
        else:
            assert before[key] is after[key] or before[key] == after[key], key


def test_the_model_its_weights_and_its_optimizer_are_left_alone():
    keras.utils.set_random_seed(7)
    x, y = _data()
    model = _sequential(
        keras.layers.Dense(4, kernel_regularizer="l2"),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("tanh"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(1),
    )
    model.fit(x, y, epochs=1, verbose=0)  # optimizer and batch-norm state
    before = _state(model)
    check_gradients(model, x, y)
    check_gradients(model, x, y, seed=3, method="coordinate", verbose=0)
    _assert_same_state(before, _state(model))


def test_settings_are_restored_when_the_check_fails():
    model = _sequential(keras.layers.Dense(1))
    x, _ = _data()
    before = _state(model)
    with pytest.raises(ValueError, match="argument `y`"):
        check_gradients(model, x, np.zeros((12, 3, 2), "float32"))
    _assert_same_state(before, _state(model))


def test_a_second_check_reuses_the_float64_copy_and_sees_new_weights():
    x, y = _data()
    model = _sequential(keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1))
    first = check_gradients(model, x, y, seed=0)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    second = check_gradients(model, x, y, seed=0)
    assert second.loss != first.loss
    expected = float(
        keras.losses.MeanSquaredError()(y, keras.ops.convert_to_numpy(model(x)))
    )
    assert second.loss == pytest.approx(expected, rel=1e-5)


# -- models that cannot be checked, and bad arguments ------------------------


class NotRebuildable(keras.Model):
    """Takes a function in `__init__` and has no `get_config`."""

    def __init__(self, activation_fn):
        super().__init__()
        self.activation_fn = activation_fn
        self.dense = keras.layers.Dense(2)

    def call(self, inputs):
        return self.activation_fn(self.dense(inputs))


class ForgetsItsWidth(keras.Model):
    """Its automatic config forgets `units`, so it comes back narrower."""

    def __init__(self, units=3):
        super().__init__()
        self.dense = keras.layers.Dense(units)

    def call(self, inputs):
        return self.dense(inputs)


@pytest.mark.parametrize(
    "build",
    [lambda: NotRebuildable(keras.ops.tanh), lambda: ForgetsItsWidth(units=5)],
    ids=["no_config", "config_builds_another_model"],
)
def test_a_model_that_cannot_be_rebuilt_is_told_to_add_get_config(build):
    model = build()
    model.compile(loss="mse")
    x, y = _data()
    model(x)
    if isinstance(model, ForgetsItsWidth):
        model.get_config = lambda: {"units": 3}  # what a careless get_config says
        y = np.zeros((12, 5), "float32")
    with pytest.raises(ModelNotRebuildableError, match=r"get_config\(\)"):
        check_gradients(model, x, y)
    assert issubclass(ModelNotRebuildableError, ValueError)


def test_a_nondeterministic_loss_is_refused():
    @keras.saving.register_keras_serializable(package=planted.PACKAGE)
    class PythonNoise(keras.layers.Layer):
        def call(self, inputs):
            return inputs + float(np.random.normal())

    model = _sequential(keras.layers.Dense(2), PythonNoise(), keras.layers.Dense(1))
    x, y = _data()
    with pytest.raises(ValueError, match="not deterministic"):
        check_gradients(model, x, y)


def _bad_argument_cases():
    compiled = lambda: _sequential(keras.layers.Dense(1))  # noqa: E731
    x, y = _data()
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
        (
            "x_of_the_wrong_width",
            compiled,
            (x[:, :3], y),
            {},
            ValueError,
            r"argument `x`\. Expected 1 input of shape \(None, 5\)\. "
            r"Received: x=<array of shape \(12, 3\)",
        ),
        ("x_missing", compiled, (None, y), {}, ValueError, "Received: x=None"),
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
        (
            "y_that_the_loss_rejects",
            compiled,
            (x, np.zeros((12, 3, 2), "float32")),
            {},
            ValueError,
            r"argument `y`\. Expected targets",
        ),
    ]


@pytest.mark.parametrize(
    ("build", "data", "kwargs", "error", "match"),
    [case[1:] for case in _bad_argument_cases()],
    ids=[case[0] for case in _bad_argument_cases()],
)
def test_bad_arguments_fail_in_keras_wording(build, data, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_gradients(build(), *data, **kwargs)


def test_a_dataset_is_refused_as_x():
    x, y = _data()
    model = _sequential(keras.layers.Dense(1))

    def batches():
        yield x, y

    with pytest.raises(TypeError, match="not a dataset or generator"):
        check_gradients(model, batches(), y)


def test_the_report_is_json(correct_models):
    model, x, y, _ = correct_models["image"]
    report = check_gradients(model, x, y, seed=0)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["backend"] == BACKEND
    assert [v["name"] for v in data["variables"]] == [
        v.path for v in model.trainable_variables
    ]


def test_a_subclassed_model_that_rejects_x_blames_x():
    model = SmoothOutputModel(units=3)
    model.compile(loss="mse")
    x, y = _data()
    model(x)
    with pytest.raises(
        ValueError, match=r"argument `x`\. Expected inputs of shape \(None, 5\)"
    ):
        check_gradients(model, x[:, :2], y)
