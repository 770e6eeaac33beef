"""PrunableLayer: a custom layer names its prunable weights; each gets a mask."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.pruning import (
    ConstantSparsity,
    PrunableLayer,
    PruneLowMagnitude,
    UpdatePruningMasks,
    prune_low_magnitude,
    sparsity_report,
    strip_pruning,
)
from tests.pruning._helpers import compile_for_test, data, numpy

EVERY_STEP = ConstantSparsity(0.5, begin_step=0, frequency=1)


@keras.saving.register_keras_serializable(package="tests.prunable_layer")
class Scale(keras.layers.Layer, PrunableLayer):
    """Not a built-in prunable type: `y = x * scale + shift`, both pruned."""

    def build(self, input_shape):
        shape = (input_shape[-1],)
        self.scale = self.add_weight(name="scale", shape=shape, initializer="normal")
        self.shift = self.add_weight(name="shift", shape=shape, initializer="normal")

    def call(self, x):
        return x * self.scale + self.shift

    def get_prunable_weights(self):
        return [self.scale, self.shift]


class Returns(keras.layers.Dense, PrunableLayer):
    """A Dense layer whose `get_prunable_weights` returns what a test says."""

    def __init__(self, units, prunable, **kwargs):
        super().__init__(units, **kwargs)
        self.prunable = prunable

    def get_prunable_weights(self):
        return self.prunable(self)


def test_a_subclass_must_say_which_weights_are_prunable():
    class Forgot(keras.layers.Dense, PrunableLayer):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Forgot(2)


def test_a_whole_model_prunes_a_custom_layer_s_declared_weights(tmp_path):
    keras.utils.set_random_seed(0)
    x, y = data(features=8)
    model = keras.Sequential(
        [keras.Input((8,)), Scale(name="scale"), keras.layers.Dense(3, name="head")]
    )
    pruned = compile_for_test(prune_low_magnitude(model, schedule=EVERY_STEP))
    assert [type(layer).__name__ for layer in pruned.layers] == [
        "PruneLowMagnitude",
        "PruneLowMagnitude",
    ]
    pruned.fit(x, y, batch_size=16, verbose=0, callbacks=[UpdatePruningMasks()])

    wrapper = pruned.layers[0]
    assert wrapper.weight_name is None
    assert wrapper.pruned_weight_names == ["scale", "shift"]
    assert [v.name for v in wrapper.non_trainable_weights] == [
        "pruning_mask",
        "pruning_step",
        "pruning_mask_1",
    ]
    for weight, mask in zip(wrapper.pruned_weights, wrapper.pruning_masks, strict=True):
        # Exactly zero where the mask is, through Adam's updates.
        assert np.mean(numpy(mask) == 0) == 0.5
        assert np.all(numpy(weight)[numpy(mask) == 0] == 0)
    assert len(sparsity_report(pruned).layers) == 3  # scale, shift, head's kernel

    pruned.save(tmp_path / "scale.keras")
    restored = keras.saving.load_model(tmp_path / "scale.keras")
    for a, b in zip(
        restored.layers[0].pruning_masks, wrapper.pruning_masks, strict=True
    ):
        np.testing.assert_array_equal(numpy(a), numpy(b))
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), pruned.predict(x, verbose=0), atol=1e-6
    )
    stripped = strip_pruning(pruned)
    assert type(stripped.layers[0]) is Scale
    np.testing.assert_allclose(
        stripped.predict(x, verbose=0), pruned.predict(x, verbose=0), atol=1e-6
    )


@pytest.mark.parametrize(
    ("prunable", "options", "match"),
    [
        (lambda layer: [], {}, "is a float variable"),
        (lambda layer: [layer.kernel.value], {}, "is a float variable"),
        (lambda layer: [layer.kernel, layer.kernel], {}, "each weight once"),
        (
            lambda layer: [layer.kernel, layer.bias],
            {"sparsity_m_by_n": (2, 4)},
            r"`sparsity_m_by_n`.*without an input axis \(`bias`",
        ),
        (
            lambda layer: [layer.kernel, layer.bias],
            {"block_size": (2, 2)},
            r"`block_size`.*not 2-D \(`bias`",
        ),
    ],
    ids=["none", "a tensor", "twice", "m_by_n bias", "block bias"],
)
def test_weights_the_masks_cannot_follow_are_refused_at_build(prunable, options, match):
    wrapper = PruneLowMagnitude(Returns(4, prunable), schedule=EVERY_STEP, **options)
    with pytest.raises(ValueError, match=match):
        wrapper.build((None, 8))
