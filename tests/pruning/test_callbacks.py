"""UpdatePruningMasks: required by fit, continues the step, never costs weights."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_bettermodels.pruning import PruneLowMagnitude
from keras_bettermodels.pruning.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning.schedules import ConstantSparsity, PolynomialDecay
from tests.pruning._helpers import (
    MISSING_CALLBACK_MATCH,
    compile_for_test,
    data,
    numpy,
    pruned_model,
    pruning_step_of,
)


def test_a_second_fit_with_a_new_callback_continues_the_step():
    keras.utils.set_random_seed(2)
    x, y = data()
    model = pruned_model()
    first, second = UpdatePruningMasks(), UpdatePruningMasks()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[first])
    assert first.step == pruning_step_of(model) == 8
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[second])
    assert second.step == pruning_step_of(model) == 12
    assert len(second.wrappers) == 1 and second.wrappers[0] is model.layers[0]


def test_pruning_is_switched_off_after_fit():
    keras.utils.set_random_seed(3)
    x, y = data()
    model = pruned_model()
    model.fit(x, y, batch_size=32, verbose=0, callbacks=[UpdatePruningMasks()])
    with pytest.raises(RuntimeError, match=MISSING_CALLBACK_MATCH):
        model(x, training=True)
    # Inference needs no callback.
    assert model.predict(x, verbose=0).shape == (64, 3)
    assert np.isfinite(model.evaluate(x, y, verbose=0))


def test_the_callback_can_drive_a_custom_loop():
    keras.utils.set_random_seed(4)
    x, _ = data(16)
    model = pruned_model(
        PolynomialDecay(0.0, 0.5, begin_step=0, end_step=2, frequency=1)
    )
    callback = UpdatePruningMasks()
    callback.set_model(model)
    callback.on_train_begin()
    for _ in range(3):
        model(x, training=True)
    callback.on_train_end()
    mask = numpy(model.layers[0].pruning_mask)
    assert callback.step == 3
    assert np.mean(mask == 0) == pytest.approx(0.5)


def test_a_model_without_wrappers_gets_a_warning():
    x, y = data()
    model = compile_for_test(
        keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    )
    callback = UpdatePruningMasks()
    with pytest.warns(UserWarning, match="no PruneLowMagnitude layers"):
        model.fit(x, y, verbose=0, callbacks=[callback])
    assert callback.wrappers == [] and callback.step is None


MIRRORED = """
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import keras
from keras import ops

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning import ConstantSparsity, prune_low_magnitude

keras.utils.set_random_seed(0)
x = np.random.rand(128, 8).astype("float32")
y = np.random.randint(0, 3, 128)
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    model = prune_low_magnitude(
        keras.Sequential([keras.Input((8,)), keras.layers.Dense(16),
                          keras.layers.Dense(3)]),
        schedule=ConstantSparsity(0.5, begin_step=0, frequency=2),
    )
    model.compile("adam", "sparse_categorical_crossentropy")
model.fit(x, y, batch_size=32, epochs=2, verbose=0,
          callbacks=[UpdatePruningMasks()])
wrapper = model.layers[0]
kernel = ops.convert_to_numpy(wrapper.layer.kernel)
mask = ops.convert_to_numpy(wrapper.pruning_mask)
print("step", int(ops.convert_to_numpy(wrapper.pruning_step)))
print("sparsity", float(np.mean(mask == 0)))
print("zeros", bool(np.all(kernel[mask == 0] == 0)))
"""


@pytest.mark.slow
@pytest.mark.tensorflow_only
def test_pruning_works_under_tf_distribute_mirrored_strategy():
    """Two logical CPUs, in a fresh interpreter (devices are set before TF starts)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MIRRORED)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "step",
        "8",
        "sparsity",
        "0.5",
        "zeros",
        "True",
    ]


def test_training_that_ends_before_end_step_says_how_far_it_got():
    keras.utils.set_random_seed(5)
    x, y = data()
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, frequency=2)
    model = pruned_model(schedule)
    with pytest.warns(UserWarning, match="end_step") as caught:
        model.fit(
            x, y, batch_size=16, epochs=2, verbose=0, callbacks=[UpdatePruningMasks()]
        )
    (message,) = [str(w.message) for w in caught if "end_step" in str(w.message)]
    reached = float(np.mean(numpy(model.layers[0].pruning_mask) == 0))
    assert f"{reached:.1%} sparsity of the 80.0% targeted" in message
    assert "8 steps run, end_step=100" in message
    assert model.layers[0].name in message


@pytest.mark.parametrize(
    "schedule",
    [
        PolynomialDecay(0.0, 0.8, begin_step=0, end_step=6, frequency=2),
        ConstantSparsity(0.5, begin_step=0, frequency=2),  # end_step=-1
        ConstantSparsity(0.5, begin_step=0, end_step=100, frequency=2),  # reached
    ],
    ids=repr,
)
def test_no_warning_when_the_target_was_reached(schedule):
    import warnings

    keras.utils.set_random_seed(6)
    x, y = data()
    model = pruned_model(schedule)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="UpdatePruningMasks")
        model.fit(
            x, y, batch_size=16, epochs=2, verbose=0, callbacks=[UpdatePruningMasks()]
        )


def test_update_pruning_step_is_tfmot_s_name_for_the_callback():
    import keras_bettermodels
    from keras_bettermodels import callbacks

    assert callbacks.UpdatePruningStep is UpdatePruningMasks
    assert keras_bettermodels.UpdatePruningStep is UpdatePruningMasks
    assert keras_bettermodels.PruningSummaries is callbacks.PruningSummaries


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    events = EventAccumulator(str(log_dir), size_guidance={"tensors": 0}).Reload()
    return {
        tag: [
            (event.step, float(np.asarray(event.tensor_proto.float_val)[0]))
            for event in events.Tensors(tag)
        ]
        for tag in events.Tags()["tensors"]
    }


def test_pruning_summaries_write_each_layer_s_sparsity_per_epoch(tmp_path):
    from keras_bettermodels.callbacks import PruningSummaries

    keras.utils.set_random_seed(7)
    x, y = data()
    schedule = PolynomialDecay(0.0, 0.5, begin_step=0, end_step=4, frequency=4)
    model = pruned_model(schedule)
    log_dir = tmp_path / "pruning"
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[UpdatePruningMasks(), PruningSummaries(log_dir)],
    )
    name = model.layers[0].name
    scalars = _scalars(log_dir)
    assert list(scalars) == [f"{name}/sparsity"]
    # At the start of each epoch (tfmot's points) and at its end; step 4 ends
    # epoch 1 and starts epoch 2, and is written once.
    (step_0, start), (step_1, first), (step_2, second) = scalars[f"{name}/sparsity"]
    assert (step_0, step_1, step_2) == (0, 4, 8)
    # Updated at steps 0 (0 %) and 4 (50 %): after epoch 1 the mask is empty.
    assert start == first == 0.0
    assert second == pytest.approx(0.5)


def test_pruning_summaries_every_n_batches_and_bad_arguments(tmp_path):
    from keras_bettermodels.callbacks import PruningSummaries

    x, y = data()
    model = pruned_model()
    callback = PruningSummaries(tmp_path, update_freq=2)
    model.fit(
        x, y, batch_size=16, verbose=0, callbacks=[UpdatePruningMasks(), callback]
    )
    steps = [step for step, _ in next(iter(_scalars(tmp_path).values()))]
    assert steps == [2, 4]
    with pytest.raises(ValueError, match="`update_freq`"):
        PruningSummaries(tmp_path, update_freq=0)
    with pytest.raises(TypeError, match="`log_dir`"):
        PruningSummaries(3)


@pytest.mark.parametrize("name", ["UpdatePruningMasks", "PruningSummaries"])
def test_the_hooks_take_tfmot_s_argument_names_and_keras_own(name):
    import inspect

    from keras_bettermodels import callbacks

    cls = getattr(callbacks, name)
    assert issubclass(cls, keras.callbacks.Callback)
    epoch_end = inspect.signature(cls.on_epoch_end)
    epoch_end.bind(None, 3, {})  # how Keras' CallbackList calls it
    epoch_end.bind(None, epoch=3, logs={})
    epoch_end.bind(None, batch=-1)  # tfmot: `on_epoch_end(self, batch, logs=None)`
    inspect.signature(cls.on_train_batch_begin).bind(None, batch=-1)
    inspect.signature(cls.on_epoch_begin).bind(None, epoch=-1)


def test_update_pruning_step_reapplies_the_masks_at_each_epoch_end():
    keras.utils.set_random_seed(8)
    x, _ = data(16)
    model = pruned_model(ConstantSparsity(0.5, begin_step=0, frequency=1))
    callback = UpdatePruningMasks()
    callback.set_model(model)
    callback.on_train_begin()
    model(x, training=True)
    wrapper = model.layers[0]
    wrapper.layer.kernel.assign(np.ones((8, 16), "float32"))  # not an optimizer
    callback.on_epoch_end(batch=-1)
    np.testing.assert_array_equal(
        numpy(wrapper.layer.kernel), numpy(wrapper.pruning_mask)
    )


def test_pruning_summaries_take_tensorboard_s_arguments_and_say_which_are_ignored(
    tmp_path,
):
    import warnings

    from keras_bettermodels.callbacks import PruningSummaries

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PruningSummaries(tmp_path, profile_batch=0, write_graph=False)
    with pytest.warns(UserWarning, match=r"ignores histogram_freq=1\. Add keras"):
        PruningSummaries(log_dir=tmp_path, histogram_freq=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'batch_size'"):
        PruningSummaries(tmp_path, batch_size=32)


def test_a_small_layer_at_its_nearest_sparsity_gets_no_warning():
    import warnings

    keras.utils.set_random_seed(9)
    x, y = data()
    # A 1x7 kernel at 50 %: 4 weights kept (round(3.5)), 42.9 % is the nearest.
    model = compile_for_test(
        keras.Sequential(
            [
                keras.Input((1,)),
                PruneLowMagnitude(
                    keras.layers.Dense(7),
                    schedule=ConstantSparsity(0.5, 0, end_step=100, frequency=1),
                ),
                keras.layers.Dense(3),
            ]
        )
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="UpdatePruningMasks")
        model.fit(
            x[:, :1], y, batch_size=16, verbose=0, callbacks=[UpdatePruningMasks()]
        )
    assert np.mean(numpy(model.layers[0].pruning_mask) == 0) == pytest.approx(3 / 7)
