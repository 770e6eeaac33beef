"""The gradient check's seam: each Keras internal is still where it looks.

Checked against Keras 3.15.1. A failure here means Keras moved an internal
that `keras_bettermodels._compat.gradient_check` reaches for.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_bettermodels._compat import gradient_check as compat


def _model():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2, name="dense"),
            keras.layers.Dropout(0.5, name="drop"),
        ],
        name="m",
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_raw_dtype_policy_reads_and_restores_without_caching():
    previous = compat.raw_dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        assert compat.raw_dtype_policy().name == "mixed_float16"
        compat.set_raw_dtype_policy(None)
        assert compat.raw_dtype_policy() is None
    finally:
        compat.set_raw_dtype_policy(previous)


def test_global_seed_generator_is_the_one_keras_random_uses():
    keras.utils.set_random_seed(3)
    assert compat.global_seed_generator() is None
    keras.random.uniform((1,))
    generator = compat.global_seed_generator()
    assert isinstance(generator, keras.random.SeedGenerator)
    compat.set_global_seed_generator(None)
    keras.random.uniform((1,))
    assert compat.global_seed_generator() is not generator


def test_float64_promotion_keeps_float64_on_every_backend():
    with compat.float64_promotion():
        assert keras.backend.result_type("float64", "int32") == "float64"
        assert keras.backend.result_type("float64", "float64") == "float64"


def test_float64_promotion_table_is_where_it_is_patched():
    from keras.src.backend.common import dtypes

    assert isinstance(dtypes.BIT64_TO_BIT32_DTYPE, dict)
    before = dict(dtypes.BIT64_TO_BIT32_DTYPE)
    with compat.float64_promotion():
        assert dtypes.BIT64_TO_BIT32_DTYPE["float64"] == "float64"
    assert before == dtypes.BIT64_TO_BIT32_DTYPE


def test_seed_generators_of_a_layer():
    model = _model()
    generators = compat.seed_generators(model.get_layer("drop"))
    assert len(generators) == 1
    assert isinstance(generators[0], keras.random.SeedGenerator)
    assert compat.seed_generators(model.get_layer("dense")) == []
    unseeded = keras.random.SeedGenerator()
    unseeded._initial_seed = None
    compat.set_unseeded_generators_to_zero([unseeded])
    assert unseeded._initial_seed == 0


class _NoTraining(keras.layers.Layer):
    def call(self, inputs):
        return inputs


def test_call_has_training_arg():
    model = _model()
    assert compat.call_has_training_arg(model) is True
    assert compat.call_has_training_arg(_NoTraining()) is False


def test_attention_dropout_is_set_where_it_is_zero():
    mha = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2)
    assert compat.set_attention_dropout(mha, 1e-300)
    assert mha._dropout == 1e-300
    gqa = keras.layers.GroupQueryAttention(
        head_dim=2, num_query_heads=2, num_key_value_heads=1
    )
    assert compat.set_attention_dropout(gqa, 1e-300)
    assert gqa.dropout == 1e-300
    assert not compat.set_attention_dropout(keras.layers.Dense(1), 1e-300)


def test_a_loss_computes_in_the_dtype_set():
    loss = keras.losses.MeanSquaredError()
    compat.set_loss_dtype(loss, "float64")
    assert loss.dtype == "float64"
    assert loss._dtype_policy.name == "float64"


def test_compile_config_and_the_compiled_loss():
    model = _model()
    assert compat.compile_config(model) is compat.compile_config(model)
    assert compat.compile_config(keras.Sequential([keras.Input((1,))])) is None
    assert compat.compile_loss_built(model) is False
    x, y = np.ones((2, 3), "float32"), np.ones((2, 2), "float32")
    compat.symbolic_build(model, (x, y, None))
    assert compat.compile_loss_built(model) is True


def test_losses_override_replaces_the_models_losses_for_compute_loss():
    model = _model()
    model.build((None, 3))
    x, y = np.zeros((2, 3), "float32"), np.zeros((2, 2), "float32")
    y_pred = model(x)
    extra = keras.ops.convert_to_tensor(5.0)
    with compat.losses_override(model, [extra]):
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred)
    assert float(keras.ops.convert_to_numpy(loss)) == 5.0
    assert model._losses_override == []


def test_skip_tracing_warning_on_tensorflow_functions():
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    function = tf.function(lambda v: v)
    compat.skip_tracing_warning(function)
    assert function._omit_frequent_tracing_warning is True
