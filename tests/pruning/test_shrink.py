"""shrink: structured-pruned, stripped models rebuilt without their zero units.

Trained end to end once per model kind (tiny models, a few steps); the graph
cases (BatchNormalization, pooling, Add, Concatenate, refusals) on models whose
zero units are set by hand, which needs no training.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning import (
    ConstantSparsity,
    prune_low_magnitude,
    pruning_wrappers,
    shrink,
    sparsity_report,
    strip_pruning,
)
from tests.pruning._helpers import compile_for_test, data, numpy

HALF_EVERY_STEP = ConstantSparsity(0.5, begin_step=0, frequency=1)


def _images(n: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 3)).astype("float32")
    return x, rng.integers(0, 3, size=n).astype("int32")


def _assert_same_and_smaller(before, after, x, tmp_path):
    assert after.count_params() < before.count_params()
    expected = numpy(after(x))  # eager calls: no compilation, for speed
    np.testing.assert_allclose(expected, numpy(before(x)), atol=1e-5)
    after.save(tmp_path / "small.keras")
    restored = keras.saving.load_model(tmp_path / "small.keras")
    np.testing.assert_allclose(numpy(restored(x)), expected, atol=1e-6)


def test_a_unit_pruned_mlp_shrinks_and_predicts_the_same(tmp_path):
    x, y = data()
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", name="a"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(12, activation="tanh", name="b"),
            keras.layers.Dense(3, name="head"),
        ]
    )
    pruned = prune_low_magnitude(model, HALF_EVERY_STEP, structure="units")
    # The head's units are the model's output: left dense.
    assert [layer.name for layer in pruned.layers][-1] == "head"
    compile_for_test(pruned).fit(
        x, y, batch_size=32, epochs=1, verbose=0, callbacks=[UpdatePruningMasks()]
    )
    # The masks (kernel and bias) survive a save and load.
    pruned.save(tmp_path / "pruned.keras")
    reloaded = keras.saving.load_model(tmp_path / "pruned.keras")
    assert reloaded.layers[0].structure == "units"
    np.testing.assert_array_equal(
        numpy(reloaded.layers[0].pruning_masks[1]),
        numpy(pruned.layers[0].pruning_masks[1]),
    )
    report = sparsity_report(pruned)
    assert (report["prune_low_magnitude_a"].units, report.zero_units) == (16, 14)
    assert "zero units" in str(report)
    stripped = strip_pruning(pruned)
    small = shrink(stripped)
    assert isinstance(small, keras.Sequential)
    assert [layer.units for layer in small.layers if hasattr(layer, "units")] == [
        8,
        6,
        3,
    ]
    _assert_same_and_smaller(stripped, small, x, tmp_path)


def test_a_filter_pruned_conv_net_shrinks_and_predicts_the_same(tmp_path):
    x, y = _images()
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(8, 3, name="c2")(h)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.Flatten()(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(h))
    pruned = prune_low_magnitude(model, HALF_EVERY_STEP, structure="filters")
    assert [w.layer.name for w in pruning_wrappers(pruned)] == ["c1", "c2"]
    compile_for_test(pruned).fit(
        x, y, batch_size=16, epochs=1, verbose=0, callbacks=[UpdatePruningMasks()]
    )
    assert sparsity_report(pruned).zero_units == 8
    stripped = strip_pruning(pruned)
    small = shrink(stripped)
    assert [small.get_layer(n).kernel.shape[-1] for n in ("c1", "c2")] == [4, 4]
    assert small.get_layer("head").kernel.shape[0] == 4 * 2 * 2
    _assert_same_and_smaller(stripped, small, x, tmp_path)


def _zero_units(layer, units):
    """Zeroes whole output units (kernel and bias), as structured pruning does."""
    kernel, bias = layer.get_weights()
    kernel[..., units] = 0
    bias[units] = 0
    layer.set_weights([kernel, bias])


@pytest.mark.any_backend
def test_add_concatenate_pooling_and_constants_go_through(tmp_path):
    x, _ = _images(8)
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(6, 1, name="a", activation="relu")(inputs)
    a = keras.layers.BatchNormalization(name="bn")(a)  # shifts the zeros
    b = keras.layers.Conv2D(6, 1, name="b", activation="sigmoid")(inputs)
    added = keras.layers.Add()([a, b])  # both lose units 1 and 4
    joined = keras.layers.Concatenate()([added, inputs])
    h = keras.layers.AveragePooling2D(2)(joined)
    h = keras.layers.GlobalMaxPooling2D()(keras.layers.Conv2D(4, 3, name="c")(h))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(h))
    _zero_units(model.get_layer("a"), [1, 4])
    _zero_units(model.get_layer("b"), [1, 4])  # sigmoid(0) = 0.5: a constant
    bn = model.get_layer("bn")
    bn.set_weights([w + np.arange(6.0) / 10 for w in bn.get_weights()])
    small = shrink(model)
    assert small.get_layer("c").kernel.shape[-2] == 4 + 3
    _assert_same_and_smaller(model, small, x, tmp_path)


def _two_dense(middle):
    inputs = keras.Input((6,))
    h = keras.layers.Dense(8, activation="sigmoid", name="pruned")(inputs)
    h = middle(h)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(h))
    _zero_units(model.get_layer("pruned"), [0, 3])
    return model


@pytest.mark.any_backend
@pytest.mark.parametrize(
    ("middle", "match"),
    [
        (
            lambda: keras.layers.Softmax(name="soft"),
            r"units of pruned through layer `soft` \(Softmax\): a Softmax mixes",
        ),
        (
            lambda: keras.layers.Reshape((2, 4), name="reshape"),
            r"through layer `reshape` \(Reshape\)",
        ),
        (
            lambda: keras.layers.Activation("softmax", name="act"),
            r"through layer `act` \(Activation\): softmax mixes the channels",
        ),
    ],
)
def test_a_layer_that_mixes_removed_units_is_refused_by_name(middle, match):
    with pytest.raises(ValueError, match=match + r".*Leave that layer unpruned"):
        shrink(_two_dense(middle()))


@pytest.mark.any_backend
def test_what_shrink_refuses_or_keeps():
    # A "same" convolution cuts a non-zero constant off at the borders.
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 1, activation="sigmoid", name="p")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same", name="s")(h))
    _zero_units(model.get_layer("p"), [2])
    with pytest.raises(ValueError, match=r"layer `s` \(Conv2D\): its padding"):
        shrink(model)
    # Different channels into an Add.
    inputs = keras.Input((4,))
    a = keras.layers.Dense(4, name="a")(inputs)
    b = keras.layers.Dense(4, name="b")(inputs)
    model = keras.Model(
        inputs, keras.layers.Dense(1)(keras.layers.Add(name="add")([a, b]))
    )
    _zero_units(model.get_layer("a"), [0])
    with pytest.raises(ValueError, match=r"`add` \(Add\): its inputs lose different"):
        shrink(model)
    # Zero units of an output layer are kept: the output's shape stays.
    model = _two_dense(keras.layers.Identity())
    _zero_units(model.get_layer("head"), [1])
    assert shrink(model).output.shape == (None, 2)
    # Wrappers first; a subclassed model or something else is refused.
    with pytest.raises(ValueError, match=r"shrink\(strip_pruning\(model\)\)"):
        shrink(prune_low_magnitude(model))
    with pytest.raises(TypeError, match=r"Invalid type for argument `model`"):
        shrink(keras.layers.Dense(2))
