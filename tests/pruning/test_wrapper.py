"""PruneLowMagnitude: each layer type, the schedule, inference, serialization."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning.schedules import ConstantSparsity, PolynomialDecay
from keras_bettermodels.pruning.wrapper import PruneLowMagnitude
from tests.pruning._helpers import (
    AfterEachStep,
    assert_moved,
    compile_for_test,
    data,
    fit_one_epoch_in_steps_of_8,
    numpy,
)

EVERY_STEP = ConstantSparsity(0.5, begin_step=0, frequency=1)

# (layer, input shape without the batch, integer inputs?)
PRUNABLE = {
    "Dense": (lambda: keras.layers.Dense(6), (5,), False),
    "Conv1D": (lambda: keras.layers.Conv1D(4, 3), (8, 2), False),
    "Conv2D": (lambda: keras.layers.Conv2D(4, 3), (6, 6, 2), False),
    "Conv3D": (lambda: keras.layers.Conv3D(2, 2), (4, 4, 4, 1), False),
    "DepthwiseConv2D": (lambda: keras.layers.DepthwiseConv2D(3), (6, 6, 3), False),
    "Embedding": (lambda: keras.layers.Embedding(20, 4), (5,), True),
}


def _inputs(shape, integer, n=16, seed=0):
    rng = np.random.default_rng(seed)
    if integer:
        return rng.integers(0, 20, size=(n, *shape)).astype("int32")
    return rng.normal(size=(n, *shape)).astype("float32")


def test_each_prunable_layer_gets_its_kernel_pruned_and_its_bias_kept():
    # One model with a branch per layer type: one compiled training step.
    inputs, outputs, wrappers = [], [], {}
    for kind, (make, shape, integer) in PRUNABLE.items():
        inp = keras.Input(shape, dtype="int32" if integer else "float32", name=kind)
        wrappers[kind] = PruneLowMagnitude(make(), schedule=EVERY_STEP)
        inputs.append(inp)
        outputs.append(keras.layers.Flatten()(wrappers[kind](inp)))
    output = keras.layers.Dense(1)(keras.layers.Concatenate()(outputs))
    model = keras.Model(inputs, output)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    x = {
        kind: _inputs(shape, integer) for kind, (_, shape, integer) in PRUNABLE.items()
    }
    model.fit(
        x, np.ones((16, 1)), batch_size=8, verbose=0, callbacks=[UpdatePruningMasks()]
    )

    for kind, wrapper in wrappers.items():
        mask = numpy(wrapper.pruning_mask)
        weight = numpy(wrapper.pruned_weight)
        assert wrapper.weight_name == (
            "embeddings" if kind == "Embedding" else "kernel"
        )
        assert any(v is wrapper.pruning_mask for v in wrapper.non_trainable_weights)
        assert not any(v is wrapper.pruning_mask for v in model.trainable_weights)
        assert mask.shape == weight.shape, kind
        assert abs(np.mean(mask == 0) - 0.5) <= 1 / mask.size, kind
        assert np.all(weight[mask == 0] == 0), kind
        assert np.all(weight[mask == 1] != 0), kind
        if getattr(wrapper.layer, "bias", None) is not None:
            bias = numpy(wrapper.layer.bias)
            assert np.all(bias != 0), kind  # trained away from zero, not pruned


def test_masks_follow_the_schedule_and_reach_the_target_at_end_step():
    keras.utils.set_random_seed(2)
    x, y = data(8 * 15)
    schedule = PolynomialDecay(
        0.0, 0.8, begin_step=2, end_step=10, frequency=2, power=1
    )
    wrapper = PruneLowMagnitude(keras.layers.Dense(32), schedule=schedule)
    model = compile_for_test(
        keras.Sequential([keras.Input((8,)), wrapper, keras.layers.Dense(3)])
    )
    recorder = AfterEachStep(lambda m: float(np.mean(numpy(wrapper.pruning_mask) == 0)))
    fit_one_epoch_in_steps_of_8(model, x, y, recorder)

    granularity = 1 / (8 * 32)
    expected, current = [], 0.0
    for step in range(15):
        if schedule.prunes_at(step):
            current = schedule.sparsity_at(step)
        expected.append(current)
    assert np.allclose(recorder.records, expected, atol=granularity)
    assert recorder.records[10] == pytest.approx(0.8, abs=granularity)
    assert recorder.records[9] < 0.8 - granularity  # not before end_step
    assert int(numpy(wrapper.pruning_step)) == 15


def test_inference_uses_the_masked_kernel():
    layer = keras.layers.Dense(4, use_bias=False)
    wrapper = PruneLowMagnitude(layer, schedule=EVERY_STEP)
    x = _inputs((6,), False, n=3)
    wrapper(x)
    mask = (np.arange(24).reshape(6, 4) % 3 != 0).astype("float32")
    wrapper.pruning_mask.assign(mask)
    kernel = numpy(layer.kernel)
    assert np.allclose(numpy(wrapper(x)), x @ (kernel * mask), atol=1e-6)
    assert np.allclose(numpy(layer.kernel), kernel)  # the call stores nothing


def test_activity_regularization_of_the_wrapped_layer_still_counts():
    x = _inputs((5,), False)
    dense = keras.layers.Dense(3, activity_regularizer="l2")
    wrapper = PruneLowMagnitude(dense, schedule=EVERY_STEP)
    model = keras.Sequential([keras.Input((5,)), wrapper])
    plain = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(3, activity_regularizer="l2")]
    )
    plain.set_weights(dense.get_weights())
    model(x)
    plain(x)
    assert len(model.losses) == len(plain.losses) == 1
    assert float(numpy(model.losses[0])) == pytest.approx(
        float(numpy(plain.losses[0])), rel=1e-5
    )


def test_embedding_keeps_its_padding_mask():
    wrapper = PruneLowMagnitude(
        keras.layers.Embedding(10, 2, mask_zero=True), schedule=EVERY_STEP
    )
    tokens = np.array([[1, 2, 0, 0]], "int32")
    wrapper(tokens)
    assert numpy(wrapper.compute_mask(tokens)).tolist() == [[True, True, False, False]]


def test_mixed_precision_training_prunes_the_float32_kernel():
    keras.utils.set_random_seed(6)
    x, y = data()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        wrapper = PruneLowMagnitude(keras.layers.Dense(16), schedule=EVERY_STEP)
        model = compile_for_test(
            keras.Sequential(
                [keras.Input((8,)), wrapper, keras.layers.Dense(3, dtype="float32")]
            )
        )
        model.fit(x, y, batch_size=16, verbose=0, callbacks=[UpdatePruningMasks()])
    finally:
        keras.config.set_dtype_policy(previous)
    assert wrapper.dtype_policy.name == "mixed_float16"
    kernel, mask = numpy(wrapper.pruned_weight), numpy(wrapper.pruning_mask)
    assert kernel.dtype == mask.dtype == np.float32
    assert np.mean(mask == 0) == pytest.approx(0.5, abs=1 / mask.size)
    assert np.all(kernel[mask == 0] == 0)


def test_config_round_trip_keeps_the_layer_and_the_schedule():
    schedule = PolynomialDecay(0.1, 0.9, begin_step=0, end_step=100, frequency=10)
    wrapper = PruneLowMagnitude(keras.layers.Dense(3, name="d"), schedule=schedule)
    config = wrapper.get_config()
    restored = PruneLowMagnitude.from_config(config)
    assert restored.schedule == schedule
    assert restored.name == "prune_low_magnitude_d"
    assert restored.layer.get_config() == wrapper.layer.get_config()


def test_save_mid_training_then_load_and_continue_like_uninterrupted(tmp_path):
    x, y = data(64)
    schedule = PolynomialDecay(0.0, 0.75, begin_step=0, end_step=12, frequency=3)

    def build():
        keras.utils.set_random_seed(4)
        model = keras.Sequential(
            [
                keras.Input((8,)),
                PruneLowMagnitude(
                    keras.layers.Dense(16, activation="relu"), schedule=schedule
                ),
                PruneLowMagnitude(keras.layers.Dense(3), schedule=schedule),
            ]
        )
        return compile_for_test(model)

    def fit(model, epochs):
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=[UpdatePruningMasks()],
        )

    straight = build()
    fit(straight, 4)

    interrupted = build()
    fit(interrupted, 2)
    path = tmp_path / "pruning.keras"
    interrupted.save(path)
    loaded = keras.saving.load_model(path)
    for before, after in zip(interrupted.weights, loaded.weights, strict=True):
        assert np.array_equal(numpy(before), numpy(after)), before.path
    assert int(numpy(loaded.layers[0].pruning_step)) == 8
    fit(loaded, 2)

    assert int(numpy(loaded.layers[0].pruning_step)) == 16
    for a, b in zip(straight.get_weights(), loaded.get_weights(), strict=True):
        assert np.allclose(a, b, atol=1e-5)
    mask = numpy(loaded.layers[0].pruning_mask)
    assert np.mean(mask == 0) == pytest.approx(0.75, abs=1 / mask.size)


def test_bad_layers_and_schedules_are_refused():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `layer`.*"
        r"A Dropout layer cannot be pruned",
    ):
        PruneLowMagnitude(keras.layers.Dropout(0.5), schedule=EVERY_STEP)
    with pytest.raises(TypeError, match=r"Invalid type for argument `layer`"):
        PruneLowMagnitude("dense", schedule=EVERY_STEP)
    with pytest.raises(TypeError, match=r"Invalid type for argument `schedule`"):
        PruneLowMagnitude(keras.layers.Dense(2), schedule=0.5)
    wrapper = PruneLowMagnitude(keras.layers.Dense(2), schedule=EVERY_STEP)
    with pytest.raises(ValueError, match="already wrapped"):
        PruneLowMagnitude(wrapper, schedule=EVERY_STEP)
    lora = keras.layers.Dense(4)
    lora.build((None, 3))
    lora.enable_lora(2)
    with pytest.raises(ValueError, match="not quantized, no LoRA"):
        PruneLowMagnitude(lora, schedule=EVERY_STEP).build((None, 3))


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("PRUNABLE_WEIGHTS", "keras_bettermodels.pruning.prunable_layer"),
        ("is_prunable", "keras_bettermodels.pruning.prunable_layer"),
        ("prunable_names", "keras_bettermodels.pruning.prunable_layer"),
        ("prunable_weight_name", "keras_bettermodels.pruning.prunable_layer"),
        ("BLOCK_POOLING_TYPES", "keras_bettermodels.pruning.structure"),
        ("M_BY_N_LAYERS", "keras_bettermodels.pruning.structure"),
        ("check_block_pooling_type", "keras_bettermodels.pruning.structure"),
        ("check_block_size", "keras_bettermodels.pruning.structure"),
        ("check_m_by_n", "keras_bettermodels.pruning.structure"),
    ],
)
def test_helpers_that_moved_out_still_resolve_here_with_a_warning(name, home):
    assert_moved("keras_bettermodels.pruning.wrapper", name, home)
