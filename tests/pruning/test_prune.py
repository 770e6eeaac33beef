"""prune_low_magnitude and strip_pruning on Sequential and functional models."""

from __future__ import annotations

import gzip
import json
import zipfile

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning.prune import prune_low_magnitude, strip_pruning
from keras_bettermodels.pruning.schedules import ConstantSparsity, PolynomialDecay
from keras_bettermodels.pruning.wrapper import PruneLowMagnitude
from tests.pruning._helpers import compile_for_test, data, mlp, numpy

SCHEDULE = ConstantSparsity(0.8, begin_step=0, frequency=4)


def _nested_functional() -> keras.Model:
    inputs = keras.Input((8,), name="features")
    hidden = keras.layers.Dense(16, activation="relu", name="a")(inputs)
    block = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(16, name="b"),
            keras.layers.Dropout(0.1, name="drop"),
        ],
        name="block",
    )
    outputs = keras.layers.Dense(3, name="c")(block(hidden))
    return keras.Model(inputs, outputs, name="nested")


def _kinds(model) -> dict[str, str]:
    kinds = {}
    for layer in model.layers:
        if isinstance(layer, keras.Sequential):
            kinds.update(_kinds(layer))
        else:
            kinds[layer.name] = type(layer).__name__
    return kinds


def test_every_prunable_layer_is_wrapped_in_a_copy_and_the_original_is_untouched():
    keras.utils.set_random_seed(0)
    x, _ = data()
    model = _nested_functional()
    original_weights = [np.array(w) for w in model.get_weights()]
    pruned = prune_low_magnitude(model, schedule=SCHEDULE)

    assert _kinds(pruned) == {
        "features": "InputLayer",
        "prune_low_magnitude_a": "PruneLowMagnitude",
        "prune_low_magnitude_b": "PruneLowMagnitude",
        "drop": "Dropout",
        "prune_low_magnitude_c": "PruneLowMagnitude",
    }
    assert _kinds(model)["a"] == "Dense"  # the original keeps its layers
    assert model.get_layer("a").kernel.constraint is None
    wrapped = pruned.get_layer("prune_low_magnitude_a")
    assert wrapped.layer is not model.get_layer("a")
    assert wrapped.schedule == SCHEDULE
    # Same starting weights, same predictions, separate variables.
    assert np.allclose(numpy(pruned(x)), numpy(model(x)), atol=1e-6)
    wrapped.layer.kernel.assign(np.zeros((8, 16), "float32"))
    for a, b in zip(original_weights, model.get_weights(), strict=True):
        assert np.array_equal(a, b)


def test_only_the_named_layers_are_wrapped():
    pruned = prune_low_magnitude(
        _nested_functional(), schedule=SCHEDULE, layers=["b", "c"]
    )
    kinds = _kinds(pruned)
    assert kinds["a"] == "Dense"
    assert (
        kinds["prune_low_magnitude_b"]
        == kinds["prune_low_magnitude_c"]
        == ("PruneLowMagnitude")
    )


def test_a_functional_model_with_plain_operations_is_pruned_and_stripped():
    # Embedding(mask_zero=True) puts a `NotEqual` operation in the graph.
    tokens = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(20, 4, mask_zero=True, name="embed")(tokens)
    pooled = keras.layers.GlobalAveragePooling1D()(embedded)
    model = keras.Model(tokens, keras.layers.Dense(2, name="out")(pooled))
    x = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 0]], "int32")

    pruned = prune_low_magnitude(model, schedule=SCHEDULE)
    assert isinstance(pruned.get_layer("prune_low_magnitude_embed"), PruneLowMagnitude)
    assert np.allclose(numpy(pruned(x)), numpy(model(x)), atol=1e-6)
    stripped = strip_pruning(pruned)
    assert np.allclose(numpy(stripped(x)), numpy(model(x)), atol=1e-6)


def test_a_single_layer_is_wrapped_in_place():
    dense = keras.layers.Dense(4)
    wrapper = prune_low_magnitude(dense, schedule=SCHEDULE)
    assert isinstance(wrapper, PruneLowMagnitude) and wrapper.layer is dense
    assert prune_low_magnitude(wrapper, schedule=SCHEDULE) is wrapper


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        (
            {"layers": ["a", "nope"]},
            ValueError,
            r"Invalid value for argument `layers`\. Expected names of layers in "
            r"model `nested`.*There is no layer named 'nope'\. The model's layers "
            r"are: features, a, b, drop, c\.",
        ),
        (
            {"layers": ["drop"]},
            ValueError,
            r"Expected names of layers that can be pruned \(Dense, Conv1D, Conv2D, "
            r"Conv3D, DepthwiseConv2D, Embedding, EinsumDense, PrunableLayer\).*"
            r"Layer 'drop' is "
            r"a Dropout, "
            r"which cannot be pruned\.",
        ),
        ({"layers": [3]}, TypeError, r"Invalid type for argument `layers`"),
        ({"schedule": 0.8}, TypeError, r"Invalid type for argument `schedule`"),
    ],
)
def test_bad_selections_are_refused_clearly(arguments, error, match):
    arguments = {"schedule": SCHEDULE, **arguments}
    with pytest.raises(error, match=match):
        prune_low_magnitude(_nested_functional(), **arguments)


def test_what_cannot_be_pruned_is_refused():
    with pytest.raises(ValueError, match="has no layer that can be pruned"):
        prune_low_magnitude(
            keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5)]),
            schedule=SCHEDULE,
        )
    with pytest.raises(ValueError, match="A Dropout layer cannot be pruned"):
        prune_low_magnitude(keras.layers.Dropout(0.5), schedule=SCHEDULE)
    with pytest.raises(ValueError, match=r"`layers`\. Expected None when"):
        prune_low_magnitude(keras.layers.Dense(2), schedule=SCHEDULE, layers=["x"])
    with pytest.raises(TypeError, match="`model_or_layer`"):
        prune_low_magnitude("model", schedule=SCHEDULE)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(ValueError, match="In a subclassed model, wrap the layers"):
        prune_low_magnitude(Subclassed(), schedule=SCHEDULE)


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`")
def test_a_list_of_layers_is_pruned_as_tfmot_prunes_one():
    """tfmot's list form, to build a Sequential from: the input shape carries."""
    layers = prune_low_magnitude(
        [keras.layers.Dense(4, input_shape=(3,)), keras.layers.Dropout(0.5)],
        SCHEDULE,
    )
    assert [type(layer).__name__ for layer in layers] == [
        "PruneLowMagnitude",
        "Dropout",
    ]
    model = keras.Sequential(layers)
    assert model.built and tuple(model.input_shape) == (None, 3)
    with pytest.raises(ValueError, match=r"The list .* has no layer that can be"):
        prune_low_magnitude([keras.layers.Dropout(0.5)], SCHEDULE)
    with pytest.raises(ValueError, match=r"`layers`\. Expected None when"):
        prune_low_magnitude([keras.layers.Dense(2)], SCHEDULE, layers=["x"])


def test_keyword_arguments_go_to_the_wrapper_of_a_single_layer():
    wrapper = prune_low_magnitude(keras.layers.Dense(2), SCHEDULE, name="pruned")
    assert wrapper.name == "pruned"
    with pytest.raises(ValueError, match=r"single layer only.*Received: name='x'"):
        prune_low_magnitude(mlp(), SCHEDULE, name="x")


@pytest.fixture(scope="module")
def trained_pruned():
    """An MLP pruned to 80% (frequency 4) and trained 3 epochs."""
    keras.utils.set_random_seed(5)
    x, y = data(128)
    model = mlp(hidden=64)
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=16, frequency=4)
    pruned = compile_for_test(prune_low_magnitude(model, schedule=schedule))
    pruned.fit(
        x, y, batch_size=16, epochs=3, verbose=0, callbacks=[UpdatePruningMasks()]
    )
    return pruned, x


def test_strip_gives_a_plain_model_with_identical_predictions(trained_pruned):
    pruned, x = trained_pruned
    stripped = strip_pruning(pruned)
    assert [type(layer).__name__ for layer in stripped.layers] == ["Dense", "Dense"]
    assert [layer.name for layer in stripped.layers] == ["hidden", "head"]
    assert stripped.layers[0].kernel.constraint is None
    assert np.array_equal(
        numpy(stripped.predict(x, verbose=0)), numpy(pruned.predict(x, verbose=0))
    )
    kernel = numpy(stripped.layers[0].kernel)
    assert np.mean(kernel == 0) == pytest.approx(0.8, abs=1 / kernel.size)
    assert isinstance(pruned.layers[0], PruneLowMagnitude)  # pruned model kept


def test_the_stripped_model_saves_without_any_trace_of_this_package(
    trained_pruned, tmp_path
):
    pruned, x = trained_pruned
    path = tmp_path / "stripped.keras"
    strip_pruning(pruned).save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    assert "keras_bettermodels" not in json.dumps(config)
    assert "PruneLowMagnitude" not in json.dumps(config)
    loaded = keras.saving.load_model(path)
    assert np.allclose(
        numpy(loaded.predict(x, verbose=0)), numpy(pruned.predict(x, verbose=0))
    )


def test_strip_bakes_the_mask_even_into_weights_changed_outside_training(
    trained_pruned,
):
    pruned, _ = trained_pruned
    wrapper = pruned.layers[1]
    copy = strip_pruning(wrapper)
    assert isinstance(copy, keras.layers.Dense) and copy is not wrapper.layer
    mask = numpy(wrapper.pruning_mask)
    assert np.array_equal(numpy(copy.kernel), numpy(wrapper.layer.kernel) * mask)


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`")
def test_a_stripped_first_layer_keeps_its_input_shape():
    wrapper = prune_low_magnitude(keras.layers.Dense(2, input_shape=(5,)), SCHEDULE)
    model = keras.Sequential([strip_pruning(wrapper), keras.layers.Dense(1)])
    assert model.built and model.count_params() == 12 + 3


def test_pruned_weights_compress_far_better(trained_pruned):
    pruned, _ = trained_pruned
    kernel = numpy(strip_pruning(pruned).layers[0].kernel)
    dense = kernel.copy()
    zeros = dense == 0
    dense[zeros] = np.random.default_rng(0).normal(size=zeros.sum()) * kernel.std()
    ratio = len(gzip.compress(kernel.tobytes())) / len(gzip.compress(dense.tobytes()))
    assert ratio < 0.5  # 80% zeros: about a third of the size


def test_strip_refuses_what_it_cannot_rebuild():
    with pytest.raises(TypeError, match="Invalid type for argument `model`"):
        strip_pruning("model")
