"""tfmot's two pruning notebooks, ported by changing the tfmot import line.

Each test follows a cell of TensorFlow Model Optimization's "Pruning
comprehensive guide" or "Pruning in Keras example", written against
`tfmot.sparsity.keras` with `from keras_bettermodels.pruning import tfmot` in
place of `import tensorflow_model_optimization as tfmot`, and with only the
Keras 2 -> 3 changes docs/pruning.md lists (`.weights.h5`, `keras.Input`), on
small data.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_bettermodels.pruning as pruning
from keras_bettermodels.pruning import tfmot
from tests.pruning._helpers import numpy

# Keras 3 warns once per layer created with `input_shape=`, as the guide does.
pytestmark = pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`")

INPUT_SHAPE = [20]

# What `tfmot.sparsity.keras` exports (tensorflow-model-optimization 0.8.1).
TFMOT_SPARSITY_KERAS = {
    "ConstantSparsity",
    "PolynomialDecay",
    "PrunableLayer",
    "PruneForLatencyOnXNNPack",
    "PruningPolicy",
    "PruningSchedule",
    "PruningSummaries",
    "UpdatePruningStep",
    "prune_low_magnitude",
    "prune_scope",
    "strip_pruning",
}


def _guide_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1, 20)).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 20, size=1), num_classes=20)
    return x, y


def setup_model() -> keras.Sequential:
    return keras.Sequential(
        [keras.layers.Dense(20, input_shape=INPUT_SHAPE), keras.layers.Flatten()]
    )


def _pretrained(tmp_path: Path) -> keras.Sequential:
    """The guide's `setup_pretrained_weights`, loaded into a new model."""
    x, y = _guide_data()
    model = setup_model()
    model.compile(
        loss=keras.losses.categorical_crossentropy,
        optimizer="adam",
        metrics=["accuracy"],
    )
    model.fit(x, y, verbose=0)
    weights = tmp_path / "pretrained.weights.h5"  # Keras 2: any name, ".tf"
    model.save_weights(weights)
    base_model = setup_model()
    base_model.load_weights(weights)
    return base_model


def _kernel_sparsity(wrapper) -> float:
    return float(np.mean(numpy(wrapper.layer.kernel) == 0))


def test_every_tfmot_sparsity_keras_name_resolves():
    assert tfmot.sparsity.keras is pruning
    for name in TFMOT_SPARSITY_KERAS:
        assert hasattr(tfmot.sparsity.keras, name), name
    assert set(pruning.TFMOT_NAMES) == TFMOT_SPARSITY_KERAS
    assert set(pruning.__all__) >= TFMOT_SPARSITY_KERAS
    from keras_bettermodels import callbacks

    assert tfmot.sparsity.keras.UpdatePruningStep is callbacks.UpdatePruningStep
    assert tfmot.sparsity.keras.PruningSummaries is callbacks.PruningSummaries
    with pytest.raises(AttributeError, match=r"mirrors tfmot\.sparsity\.keras only"):
        tfmot.quantization  # noqa: B018


def test_whole_model_with_the_default_schedule_ends_half_pruned(tmp_path):
    base_model = _pretrained(tmp_path)
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(base_model)
    assert model_for_pruning.count_params() == 821  # 420 weights, mask, step

    log_dir = tempfile.mkdtemp(dir=tmp_path)
    callbacks = [
        tfmot.sparsity.keras.UpdatePruningStep(),
        tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir),
    ]
    model_for_pruning.compile(
        loss=keras.losses.categorical_crossentropy,
        optimizer="adam",
        metrics=["accuracy"],
    )
    x, y = _guide_data()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="UpdatePruningMasks")
        model_for_pruning.fit(x, y, callbacks=callbacks, epochs=2, verbose=0)

    wrapper = model_for_pruning.layers[0]
    assert wrapper.schedule == tfmot.sparsity.keras.ConstantSparsity(0.5, 0)
    assert _kernel_sparsity(wrapper) == 0.5
    assert wrapper.pruned_weight_names == ["kernel"]  # biases are not pruned
    assert list(Path(log_dir).iterdir())  # the sparsity went to TensorBoard


def test_clone_model_with_a_function_that_prunes_only_dense_layers(tmp_path):
    base_model = _pretrained(tmp_path)

    def apply_pruning_to_dense(layer):
        if isinstance(layer, keras.layers.Dense):
            return tfmot.sparsity.keras.prune_low_magnitude(layer)
        return layer

    model_for_pruning = keras.models.clone_model(
        base_model, clone_function=apply_pruning_to_dense
    )
    kinds = [type(layer).__name__ for layer in model_for_pruning.layers]
    assert kinds == ["PruneLowMagnitude", "Flatten"]
    assert model_for_pruning.count_params() == 821
    model_for_pruning.compile(loss="categorical_crossentropy", optimizer="adam")
    x, y = _guide_data()
    model_for_pruning.fit(
        x, y, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
    )
    assert _kernel_sparsity(model_for_pruning.layers[0]) == 0.5


def test_a_wrapper_in_a_functional_model():
    i = keras.Input(shape=(20,))
    x = tfmot.sparsity.keras.prune_low_magnitude(keras.layers.Dense(10))(i)
    o = keras.layers.Flatten()(x)
    model_for_pruning = keras.Model(inputs=i, outputs=o)
    assert model_for_pruning.count_params() == 210 + 200 + 1


def test_a_wrapped_first_layer_with_input_shape_builds_the_sequential(tmp_path):
    model_for_pruning = keras.Sequential(
        [
            tfmot.sparsity.keras.prune_low_magnitude(
                keras.layers.Dense(20, input_shape=INPUT_SHAPE)
            ),
            keras.layers.Flatten(),
        ]
    )
    # Before any call, as in the guide: built, counted, summarised and saved.
    assert model_for_pruning.built
    assert model_for_pruning.count_params() == 821
    lines = []
    model_for_pruning.summary(print_fn=lambda line, **kwargs: lines.append(line))
    assert "821" in "\n".join(lines) and "unbuilt" not in "\n".join(lines)
    model_for_pruning.save(tmp_path / "unbuilt.keras")
    loaded = keras.saving.load_model(tmp_path / "unbuilt.keras")
    assert loaded.count_params() == 821
    assert tuple(loaded.input_shape) == (None, 20)


@keras.saving.register_keras_serializable(package="tests.tfmot")
class MyDenseLayer(keras.layers.Dense, tfmot.sparsity.keras.PrunableLayer):
    def get_prunable_weights(self):
        # Prune bias also, though that usually harms model accuracy too much.
        return [self.kernel, self.bias]


def test_a_prunable_layer_gets_its_kernel_and_its_bias_pruned(tmp_path):
    keras.utils.set_random_seed(0)
    model_for_pruning = keras.Sequential(
        [
            tfmot.sparsity.keras.prune_low_magnitude(
                MyDenseLayer(20, input_shape=INPUT_SHAPE, bias_initializer="normal")
            ),
            keras.layers.Flatten(),
        ]
    )
    assert model_for_pruning.count_params() == 420 + 420 + 1  # two masks
    model_for_pruning.compile(loss="categorical_crossentropy", optimizer="adam")
    x, y = _guide_data()
    model_for_pruning.fit(
        x, y, epochs=2, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
    )
    wrapper = model_for_pruning.layers[0]
    assert wrapper.pruned_weight_names == ["kernel", "bias"]
    for weight in (wrapper.layer.kernel, wrapper.layer.bias):
        assert float(np.mean(numpy(weight) == 0)) == 0.5
    report = pruning.sparsity_report(model_for_pruning)
    assert [(entry.weight, entry.sparsity) for entry in report.layers] == [
        ("kernel", 0.5),
        ("bias", 0.5),
    ]
    final = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
    assert type(final.layers[0]) is MyDenseLayer
    assert [float(np.mean(w == 0)) for w in final.get_weights()] == [0.5, 0.5]


def _train_step(model, loss, optimizer):
    """One step of the guide's custom loop, written for each backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def step(x, y):
            with tf.GradientTape() as tape:  # the guide's own loop
                logits = model(x, training=True)
                loss_value = loss(y, logits)
                grads = tape.gradient(loss_value, model.trainable_variables)
                optimizer.apply_gradients(
                    zip(grads, model.trainable_variables, strict=True)
                )

        return step
    if backend == "torch":
        import torch

        def step(x, y):
            logits = model(x, training=True)
            loss_value = keras.ops.mean(loss(y, logits))
            model.zero_grad()
            loss_value.backward()
            variables = model.trainable_variables
            with torch.no_grad():
                optimizer.apply([v.value.grad for v in variables], variables)

        return step

    import jax

    def compute_loss(trainable, non_trainable, x, y):
        logits, non_trainable = model.stateless_call(
            trainable, non_trainable, x, training=True
        )
        return keras.ops.mean(loss(y, logits)), non_trainable

    grad_fn = jax.value_and_grad(compute_loss, has_aux=True)

    @jax.jit
    def jitted(trainable, non_trainable, optimizer_variables, x, y):
        (_, non_trainable), grads = grad_fn(trainable, non_trainable, x, y)
        trainable, optimizer_variables = optimizer.stateless_apply(
            optimizer_variables, grads, trainable
        )
        return trainable, non_trainable, optimizer_variables

    optimizer.build(model.trainable_variables)

    def step(x, y):
        state = jitted(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in optimizer.variables],
            x,
            y,
        )
        variables = (
            model.trainable_variables,
            model.non_trainable_variables,
            optimizer.variables,
        )
        for group, values in zip(variables, state, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)

    return step


def test_the_custom_training_loop_calls_the_callbacks_with_tfmot_s_arguments(
    tmp_path,
):
    base_model = _pretrained(tmp_path)
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(base_model)

    loss = keras.losses.categorical_crossentropy
    optimizer = keras.optimizers.Adam()
    log_dir = tempfile.mkdtemp(dir=tmp_path)
    unused_arg = -1
    epochs = 2
    batches = 1
    x_train, y_train = _guide_data()

    model_for_pruning.optimizer = optimizer
    step_callback = tfmot.sparsity.keras.UpdatePruningStep()
    step_callback.set_model(model_for_pruning)
    log_callback = tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir)
    log_callback.set_model(model_for_pruning)
    train_step = _train_step(model_for_pruning, loss, optimizer)

    step_callback.on_train_begin()
    for _ in range(epochs):
        log_callback.on_epoch_begin(epoch=unused_arg)
        for _ in range(batches):
            step_callback.on_train_batch_begin(batch=unused_arg)
            train_step(x_train, y_train)
        step_callback.on_epoch_end(batch=unused_arg)

    wrapper = model_for_pruning.layers[0]
    assert int(numpy(wrapper.pruning_step)) == 2
    assert _kernel_sparsity(wrapper) == 0.5
    assert float(np.mean(numpy(wrapper.pruning_mask) == 0)) == 0.5
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    events = EventAccumulator(log_dir, size_guidance={"tensors": 0}).Reload()
    (tag,) = events.Tags()["tensors"]
    assert [event.step for event in events.Tensors(tag)] == [0, 1]


# Saved compiled but untrained, as in the guide: Keras 3 then skips the
# optimizer's variables on loading, and says so.
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_pruned_model_loads_inside_and_outside_prune_scope(tmp_path, suffix):
    base_model = _pretrained(tmp_path)
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(base_model)
    model_for_pruning.compile(loss="categorical_crossentropy", optimizer="adam")
    keras_model_file = tmp_path / f"checkpoint{suffix}"
    model_for_pruning.save(keras_model_file, include_optimizer=True)

    with tfmot.sparsity.keras.prune_scope():
        found = keras.saving.get_registered_object("PruneLowMagnitude")
        assert found is pruning.PruneLowMagnitude
        inside = keras.models.load_model(keras_model_file)
    outside = keras.models.load_model(keras_model_file)
    for loaded in (inside, outside):
        wrapper = loaded.layers[0]
        assert isinstance(wrapper, pruning.PruneLowMagnitude)
        assert wrapper.schedule == tfmot.sparsity.keras.ConstantSparsity(0.5, 0)
        for a, b in zip(
            loaded.get_weights(), model_for_pruning.get_weights(), strict=True
        ):
            assert np.array_equal(a, b)
    assert keras.saving.get_registered_object("PruneLowMagnitude") is None


def test_strip_pruning_before_export_makes_the_file_smaller(tmp_path):
    base_model = _pretrained(tmp_path)
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(base_model)
    model_for_export = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
    assert [type(layer).__name__ for layer in model_for_export.layers] == [
        "Dense",
        "Flatten",
    ]
    model_for_pruning.save(tmp_path / "pruned.keras")
    model_for_export.save(tmp_path / "stripped.keras")
    pruned_size = (tmp_path / "pruned.keras").stat().st_size
    assert (tmp_path / "stripped.keras").stat().st_size < pruned_size


def test_block_sparsity_with_tfmot_s_pruning_params():
    keras.utils.set_random_seed(1)
    base_model = setup_model()
    pruning_params = {"block_size": [1, 16]}
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(
        base_model, **pruning_params
    )
    model_for_pruning.compile(loss="categorical_crossentropy", optimizer="adam")
    x, y = _guide_data()
    model_for_pruning.fit(
        x, y, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
    )
    mask = numpy(model_for_pruning.layers[0].pruning_mask)
    # Each row: one block of 16 columns, then one of the 4 left.
    for block in (mask[:, :16], mask[:, 16:]):
        assert np.all(block == block[:, :1])
    assert 0.4 < np.mean(mask == 0) < 0.6


@pytest.mark.filterwarnings("ignore:Argument `input_shape` is deprecated")
def test_the_pruning_with_keras_example_on_digits(digits, tmp_path):
    """The MNIST example on scikit-learn's 8x8 digits, with its schedule arithmetic."""
    images, labels = digits
    train_images, train_labels = images[:1500].reshape(-1, 8, 8), labels[:1500]
    test_images, test_labels = images[1500:].reshape(-1, 8, 8), labels[1500:]
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(8, 8)),
            keras.layers.Reshape(target_shape=(8, 8, 1)),
            keras.layers.Conv2D(filters=12, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(train_images, train_labels, epochs=4, validation_split=0.1, verbose=0)
    _, baseline_model_accuracy = model.evaluate(test_images, test_labels, verbose=0)

    prune_low_magnitude = tfmot.sparsity.keras.prune_low_magnitude
    # Small batches for enough steps: the example's schedule on 54,000 images.
    batch_size = 4
    epochs = 2
    validation_split = 0.1
    num_images = train_images.shape[0] * (1 - validation_split)
    end_step = np.ceil(num_images / batch_size).astype(np.int32) * epochs
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="PolynomialDecay|UpdatePruning")
        pruning_params = {
            "pruning_schedule": tfmot.sparsity.keras.PolynomialDecay(
                initial_sparsity=0.50,
                final_sparsity=0.80,
                begin_step=0,
                end_step=end_step,
            )
        }
        model_for_pruning = prune_low_magnitude(model, **pruning_params)
        model_for_pruning.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model_for_pruning.fit(
            train_images,
            train_labels,
            batch_size=batch_size,
            epochs=epochs,
            validation_split=validation_split,
            callbacks=[
                tfmot.sparsity.keras.UpdatePruningStep(),
                tfmot.sparsity.keras.PruningSummaries(log_dir=str(tmp_path / "logs")),
            ],
            verbose=0,
        )
    _, model_for_pruning_accuracy = model_for_pruning.evaluate(
        test_images, test_labels, verbose=0
    )
    # The example prints both; on 8x8 digits and 4 + 2 epochs, both are far
    # above chance (10 %), whichever is ahead.
    assert min(baseline_model_accuracy, model_for_pruning_accuracy) > 0.5

    model_for_export = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
    keras.models.save_model(model_for_export, tmp_path / "pruned.keras")
    report = pruning.sparsity_report(model_for_export)
    assert report.sparsity == pytest.approx(0.8, abs=0.005)
