"""`audit`: the article's model, float16 outputs, odd sizes, loss scaling, policy."""

from __future__ import annotations

import importlib
import logging

import keras
import pytest

from keras_bettermodels.precision import audit, hardware
from tests.precision._models import article_model


def _codes(findings):
    return {finding.code for finding in findings}


def _hardware_codes(policy="mixed_float16"):
    """What the audit must say about this machine's devices."""
    return _codes(hardware.hardware_findings(policy, hardware.detect_devices()))


def test_the_article_model_audits_clean_apart_from_hardware_and_size():
    # The article's own example at its real size (20M parameters): the audit
    # trains nothing, so the size costs only the weights' memory.
    keras.config.set_dtype_policy("mixed_float16")
    model = article_model(4096)
    assert model.count_params() == 20_037_642
    findings = audit(model, batch_size=256)
    assert _codes(findings) == {"small-model"} | _hardware_codes()
    small = next(f for f in findings if f.code == "small-model")
    assert small.level == "info"
    assert "20,037,642 parameters" in small.message
    assert "compare_precision" in small.fix
    if all(d.platform == "cpu" for d in hardware.detect_devices()):
        (cpu,) = [f for f in findings if f.code == "hardware-no-speedup"]
        assert cpu.level == "warning" and "CPU" in cpu.message


def test_a_float16_softmax_is_flagged_naming_the_layer_and_the_fix():
    keras.config.set_dtype_policy("mixed_float16")
    model = article_model(4096, float32_softmax=False)
    findings = audit(model, min_params=0)
    (finding,) = [f for f in findings if f.code == "output-not-float32"]
    last = model.layers[-1].name
    assert finding.level == "warning"
    assert f"`{last}`" in finding.message and "float16" in finding.message
    assert 'keras.layers.Activation("softmax", dtype="float32")' in finding.fix
    assert f"`{last}`" in finding.fix
    assert findings[0] == finding  # warnings before infos


def test_a_softmax_computed_in_float16_and_cast_afterwards_is_flagged():
    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input((784,))
    x = keras.layers.Dense(64, activation="relu")(inputs)
    x = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    outputs = keras.layers.Activation("linear", dtype="float32")(x)
    findings = audit(keras.Model(inputs, outputs), min_params=0)
    (finding,) = [f for f in findings if f.code == "output-not-float32"]
    assert "softmax" in finding.message and "`probabilities`" in finding.message


def test_every_output_of_a_multi_output_model_is_checked():
    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input((32,))
    x = keras.layers.Dense(64)(inputs)
    good = keras.layers.Dense(3, activation="softmax", dtype="float32", name="good")(x)
    bad = keras.layers.Dense(1, name="bad")(x)
    findings = audit(keras.Model(inputs, [good, bad]), min_params=0)
    flagged = [f for f in findings if f.code == "output-not-float32"]
    assert len(flagged) == 1 and "`bad`" in flagged[0].message


def test_sizes_that_are_not_multiples_of_8_are_listed():
    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input((6, 16))
    x = keras.layers.Conv1D(30, 3, name="conv")(inputs)
    # (Cheap initializers: JAX compiles the default ones op by op, slowly.)
    x = keras.layers.LSTM(
        12, return_sequences=True, recurrent_initializer="glorot_uniform", name="lstm"
    )(x)
    x = keras.layers.MultiHeadAttention(
        num_heads=4, key_dim=20, kernel_initializer="zeros", name="attention"
    )(x, x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(100, name="hidden")(x)
    x = keras.layers.Dense(64, name="round")(x)
    x = keras.layers.Dense(10, name="classes")(x)  # the task's output: not listed
    outputs = keras.layers.Activation("softmax", dtype="float32")(x)
    findings = audit(keras.Model(inputs, outputs), batch_size=100, min_params=0)
    (finding,) = [f for f in findings if f.code == "dims-not-multiple-of-8"]
    for item in (
        "`conv` filters=30",
        "`lstm` units=12",
        "`attention` key_dim=20",
        "`attention` value_dim=20",
        "`hidden` units=100",
        "batch_size=100",
    ):
        assert item in finding.message
    assert "`round`" not in finding.message
    assert "`classes`" not in finding.message
    assert "lstm_cell" not in finding.message  # the RNN layer, once
    assert "`conv` filters=32" in finding.fix


def test_float32_layers_need_no_multiples_of_8():
    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input((16,))
    x = keras.layers.Dense(100, dtype="float32", name="wide")(inputs)
    x = keras.layers.Dense(10)(x)
    outputs = keras.layers.Activation("softmax", dtype="float32")(x)
    findings = audit(keras.Model(inputs, outputs), batch_size=64, min_params=0)
    assert "dims-not-multiple-of-8" not in _codes(findings)


def test_float16_without_a_loss_scale_optimizer_is_flagged():
    keras.config.set_dtype_policy("mixed_float16")
    model = article_model(64, compile=False)
    model.compile("sgd", "sparse_categorical_crossentropy", auto_scale_loss=False)
    (finding,) = [f for f in audit(model) if f.code == "loss-not-scaled"]
    assert "SGD" in finding.message
    assert "LossScaleOptimizer" in finding.fix


def test_keras_default_compile_scales_the_loss_and_bfloat16_needs_none():
    keras.config.set_dtype_policy("mixed_float16")
    assert "loss-not-scaled" not in _codes(audit(article_model(64)))
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = article_model(64, compile=False)
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert "loss-not-scaled" not in _codes(audit(model))


def test_an_uncompiled_model_is_not_blamed_for_its_optimizer():
    keras.config.set_dtype_policy("mixed_float16")
    assert "loss-not-scaled" not in _codes(audit(article_model(64, compile=False)))


def test_a_float32_model_has_nothing_to_guard():
    (finding,) = audit(article_model(64))
    assert (finding.code, finding.level) == ("no-mixed-policy", "info")
    assert "mixed_float16" in finding.fix


def test_a_policy_audits_a_float32_model_as_if_built_under_it():
    model = article_model(64)  # float32, with an explicit float32 softmax
    findings = audit(model, policy="mixed_float16", batch_size=30)
    codes = _codes(findings)
    # The explicit float32 softmax cannot be told from the model's own
    # policy: under the what-if, it too would be float16.
    assert {"output-not-float32", "small-model", "dims-not-multiple-of-8"} <= codes
    assert "no-mixed-policy" not in codes
    assert audit(model, policy=keras.DTypePolicy("float32"))[0].code == (
        "no-mixed-policy"
    )


def test_layers_with_their_own_float16_policy_are_audited_in_a_float32_model():
    inputs = keras.Input((16,))
    x = keras.layers.Dense(100, dtype="mixed_float16", name="half")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    codes = _codes(audit(keras.Model(inputs, outputs), min_params=0))
    assert "dims-not-multiple-of-8" in codes
    assert "no-mixed-policy" not in codes


def test_min_params_sets_the_small_model_threshold():
    keras.config.set_dtype_policy("mixed_float16")
    model = article_model(64)
    assert "small-model" in _codes(audit(model, min_params=model.count_params() + 1))
    assert "small-model" not in _codes(audit(model, min_params=model.count_params()))


def test_a_subclassed_model_is_audited_through_its_last_layer():
    keras.config.set_dtype_policy("mixed_float16")

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(64)
            self.out = keras.layers.Dense(3, activation="softmax")

        def build(self, input_shape):
            self.hidden.build(input_shape)
            self.out.build((None, 64))

        def call(self, x):
            return self.out(self.hidden(x))

    model = Net()
    model.build((None, 8))
    assert "output-not-float32" in _codes(audit(model, min_params=0))


@pytest.fixture(scope="module")
def tiny_model():
    return article_model(8)


class TestArguments:
    def test_a_model_is_required(self):
        with pytest.raises(TypeError, match="Invalid type for argument `model`"):
            audit("model")

    def test_an_unbuilt_model_is_refused_with_a_fix(self):
        model = keras.Sequential([keras.layers.Dense(8)])
        with pytest.raises(ValueError, match=r"Expected a built model.*Build it first"):
            audit(model)

    @pytest.mark.parametrize(
        ("arguments", "error", "match"),
        [
            ({"batch_size": 0}, ValueError, "Invalid value for argument `batch_size`"),
            ({"batch_size": 2.5}, TypeError, "Invalid type for argument `batch_size`"),
            ({"min_params": -1}, ValueError, "Invalid value for argument `min_params`"),
            ({"policy": "float17"}, ValueError, "Invalid value for argument `policy`"),
        ],
    )
    def test_bad_arguments_are_refused_in_keras_wording(
        self, tiny_model, arguments, error, match
    ):
        with pytest.raises(error, match=match):
            audit(tiny_model, **arguments)


def test_a_layer_property_that_cannot_answer_is_logged_not_swallowed(caplog):
    audit_module = importlib.import_module("keras_bettermodels.precision.audit")

    class Unready(keras.layers.Layer):
        @property
        def units(self):
            raise ValueError("not built yet")

    with caplog.at_level(logging.DEBUG, logger=audit_module.__name__):
        assert audit_module._dim(Unready(name="unready"), "units") is None
    assert "unready.units unreadable" in caplog.text
    assert "not built yet" in caplog.text


def test_an_unexpected_error_in_a_layer_property_is_not_hidden():
    audit_module = importlib.import_module("keras_bettermodels.precision.audit")

    class Broken(keras.layers.Layer):
        @property
        def units(self):
            raise KeyError("a broken assumption")

    with pytest.raises(KeyError):
        audit_module._dim(Broken(), "units")
