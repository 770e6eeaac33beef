"""structure= and scope= of prune_low_magnitude: arguments, masks, threshold."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning import (
    ConstantSparsity,
    PolynomialDecay,
    PruneLowMagnitude,
    prune_low_magnitude,
    sparsity_report,
)
from keras_bettermodels.pruning.masks import global_threshold, unit_mask
from tests.pruning._helpers import compile_for_test, data, mlp, numpy

EVERY_STEP = ConstantSparsity(0.6, begin_step=0, frequency=1)


@pytest.mark.any_backend
@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: PruneLowMagnitude(keras.layers.Conv2D(4, 3), structure="units"),
            ValueError,
            r"Invalid value for argument `structure`\. Expected None for layer "
            r"`.*` \(Conv2D\): structure=\"units\" applies to Dense, EinsumDense\. "
            r"Received: structure='units'\. Use structure=\"filters\" for a Conv2D",
        ),
        (
            lambda: PruneLowMagnitude(
                keras.layers.Embedding(8, 4), structure="filters"
            ),
            ValueError,
            r"applies to Conv1D, Conv2D, Conv3D.*Prune it unstructured",
        ),
        (
            lambda: prune_low_magnitude(mlp(), structure="rows"),
            ValueError,
            r"Invalid value for argument `structure`\. Expected None, \"units\"",
        ),
        (
            lambda: prune_low_magnitude(mlp(), structure="units", block_size=(1, 2)),
            ValueError,
            r"argument `block_size`\. Expected \(1, 1\) when `structure` is given",
        ),
        (
            lambda: prune_low_magnitude(
                mlp(), structure="units", sparsity_m_by_n=(2, 4)
            ),
            ValueError,
            r"argument `sparsity_m_by_n`\. Expected None when `structure`",
        ),
        (
            lambda: prune_low_magnitude(mlp(), scope="global", structure="units"),
            ValueError,
            r"argument `structure`\. Expected None when scope=\"global\"",
        ),
        (
            lambda: prune_low_magnitude(mlp(), scope="model"),
            ValueError,
            r"argument `scope`\. Expected \"layer\" or \"global\"\. Received: "
            r"scope='model'",
        ),
        (
            lambda: prune_low_magnitude(mlp(), layers=["head"], structure="filters"),
            ValueError,
            r"Expected None for layer `head` \(Dense\)",
        ),
    ],
)
def test_structure_and_scope_are_refused_in_keras_wording(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.any_backend
def test_unit_mask_keeps_whole_units_by_norm_and_einsum_dense_its_output_axes():
    kernel = np.array([[3.0, 0.1, 1.0, -2.0], [0.0, 0.1, 1.0, 2.0]], "float32")
    kept = numpy(unit_mask(kernel, 0.5, (1,)))
    np.testing.assert_array_equal(kept, [[1, 0, 0, 1]])
    wrapper = PruneLowMagnitude(
        keras.layers.EinsumDense("ab,bc->ac", output_shape=6, bias_axes="c"),
        structure="units",
    )
    wrapper.build((None, 4))
    assert wrapper.pruned_weight_names == ["kernel", "bias"]
    assert wrapper.unit_count == 6
    threshold = global_threshold([np.arange(4.0), -np.arange(6.0)], 0.5)
    # |w| sorted: 0 0 1 1 2 2 3 3 4 5; keeping 5 of 10 puts the bar at 2.
    assert float(numpy(threshold)) == 2.0


def test_global_scope_follows_the_schedule_overall_not_per_layer(tmp_path):
    x, y = data()
    model = mlp(hidden=32)
    pruned = prune_low_magnitude(model, EVERY_STEP, scope="global")
    assert {w.scope for w in pruned.layers} == {"global"}
    # Unequal magnitudes: the head's weights are ten times larger.
    head = pruned.layers[1].layer
    head.kernel.assign(head.kernel * 10.0)
    compile_for_test(pruned, learning_rate=0.001).fit(
        x, y, batch_size=32, epochs=1, verbose=0, callbacks=[UpdatePruningMasks()]
    )
    report = sparsity_report(pruned)
    assert report.sparsity == pytest.approx(0.6, abs=0.01)
    assert report.mask_sparsity == pytest.approx(0.6, abs=0.01)
    hidden, head_row = (entry.sparsity for entry in report.layers)
    assert hidden > 0.65 and head_row < 0.2
    # The total row: zeros, mask and scheduled sparsity over all the layers.
    total = str(report).splitlines()[-1].split()
    assert total[3] == f"{report.mask_sparsity:.1%}" and total[4] == "60.0%"
    pruned.save(tmp_path / "global.keras")
    restored = keras.saving.load_model(tmp_path / "global.keras")
    assert [w.scope for w in restored.layers] == ["global", "global"]


@pytest.mark.any_backend
def test_global_wrappers_must_share_a_schedule():
    first = PolynomialDecay(0.0, 0.5, begin_step=0, end_step=10, frequency=1)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            PruneLowMagnitude(keras.layers.Dense(4), first, scope="global"),
            PruneLowMagnitude(keras.layers.Dense(2), EVERY_STEP, scope="global"),
        ]
    )
    callback = UpdatePruningMasks()
    callback.set_model(model)
    with pytest.raises(ValueError, match=r"argument `schedule`\. Expected one"):
        callback.on_train_begin()
