"""Block and M-by-N (2:4) sparsity end to end: arguments, training, saving, export.

The masks themselves are tested in `test_masks.py`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning import (
    ConstantSparsity,
    PruneLowMagnitude,
    prune_low_magnitude,
    sparsity_report,
    strip_pruning,
)
from tests.pruning._helpers import compile_for_test, data, nonzeros_per_group, numpy

EVERY_10 = ConstantSparsity(0.5, begin_step=0, frequency=10)


def _mlp(features: int = 8) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            keras.layers.Dense(3, name="head"),
        ]
    )


def test_block_pooling_type_survives_the_config_and_is_checked():
    wrapper = PruneLowMagnitude(
        keras.layers.Dense(4), EVERY_10, (2, 2), block_pooling_type="MAX"
    )
    restored = PruneLowMagnitude.from_config(wrapper.get_config())
    assert restored.block_pooling_type == "MAX"
    with pytest.raises(ValueError, match=r"`block_pooling_type`\. Expected \"AVG\""):
        PruneLowMagnitude(keras.layers.Dense(4), block_pooling_type="avg")


def test_pruning_schedule_is_tfmot_s_name_for_schedule():
    layer = PruneLowMagnitude(keras.layers.Dense(4), pruning_schedule=EVERY_10)
    assert layer.schedule is EVERY_10
    model = prune_low_magnitude(_mlp(), pruning_schedule=EVERY_10)
    assert all(w.schedule is EVERY_10 for w in model.layers)
    # tfmot's schedule is its second positional argument: so is ours.
    model = prune_low_magnitude(_mlp(), EVERY_10)
    assert all(w.schedule is EVERY_10 for w in model.layers)
    assert PruneLowMagnitude(keras.layers.Dense(4), EVERY_10).schedule is EVERY_10
    with pytest.raises(ValueError, match=r"`pruning_schedule`.*two names"):
        prune_low_magnitude(_mlp(), schedule=EVERY_10, pruning_schedule=EVERY_10)
    with pytest.raises(ValueError, match=r"`pruning_schedule`.*two names"):
        PruneLowMagnitude(
            keras.layers.Dense(4), schedule=EVERY_10, pruning_schedule=EVERY_10
        )
    # Neither: tfmot's default, ConstantSparsity(0.5, 0).
    default = ConstantSparsity(0.5, begin_step=0)
    assert all(w.schedule == default for w in prune_low_magnitude(_mlp()).layers)
    assert PruneLowMagnitude(keras.layers.Dense(4)).schedule == default
    with pytest.raises(TypeError, match="argument `pruning_schedule`"):
        prune_low_magnitude(_mlp(), pruning_schedule=0.5)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: PruneLowMagnitude(
                keras.layers.Dense(4), schedule=EVERY_10, block_size=(0, 2)
            ),
            ValueError,
            "`block_size`",
        ),
        (
            lambda: PruneLowMagnitude(
                keras.layers.Dense(4), schedule=EVERY_10, sparsity_m_by_n=(4, 4)
            ),
            ValueError,
            "`sparsity_m_by_n`.*0 < m < n",
        ),
        (
            lambda: PruneLowMagnitude(
                keras.layers.Dense(4),
                schedule=EVERY_10,
                block_size=(2, 2),
                sparsity_m_by_n=(2, 4),
            ),
            ValueError,
            "not both",
        ),
        (
            lambda: PruneLowMagnitude(
                keras.layers.Embedding(10, 4), schedule=EVERY_10, sparsity_m_by_n=(2, 4)
            ),
            ValueError,
            "without an input axis",
        ),
        (
            lambda: PruneLowMagnitude(
                keras.layers.Dense(4), schedule=EVERY_10, sparsity_m_by_n=(2, 4)
            ).build((None, 6)),
            ValueError,
            "n dividing the input size 6",
        ),
        (
            lambda: PruneLowMagnitude(
                keras.layers.Conv2D(4, 3), schedule=EVERY_10, block_size=(2, 2)
            ).build((None, 6, 6, 2)),
            ValueError,
            "not 2-D",
        ),
    ],
)
def test_bad_structures_are_refused_in_keras_wording(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_m_by_n_leaves_layers_without_an_input_axis_dense():
    model = keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(20, 8, name="embed"),
            keras.layers.Flatten(),
            keras.layers.Dense(4, name="head"),
        ]
    )
    pruned = prune_low_magnitude(model, schedule=EVERY_10, sparsity_m_by_n=(2, 4))
    wrapped = [
        layer.name for layer in pruned.layers if isinstance(layer, PruneLowMagnitude)
    ]
    assert wrapped == ["prune_low_magnitude_head"]


def test_block_sparsity_prunes_whole_blocks_during_training():
    keras.utils.set_random_seed(3)
    x, y = data(features=8)
    model = compile_for_test(
        prune_low_magnitude(
            _mlp(), schedule=EVERY_10, block_size=(2, 4), layers=["hidden"]
        )
    )
    model.fit(
        x, y, batch_size=16, epochs=3, verbose=0, callbacks=[UpdatePruningMasks()]
    )
    kernel = numpy(model.layers[0].pruned_weight)
    blocks = kernel.reshape(4, 2, 4, 4).transpose(0, 2, 1, 3).reshape(16, 8)
    nonzeros = np.count_nonzero(blocks, axis=-1)
    assert set(nonzeros) <= {0, 8}
    assert np.count_nonzero(nonzeros == 0) == 8  # half the blocks


def test_structure_survives_config_and_keras_save_load(tmp_path):
    keras.utils.set_random_seed(4)
    x, y = data(features=8)
    model = compile_for_test(
        prune_low_magnitude(_mlp(), pruning_schedule=EVERY_10, sparsity_m_by_n=(2, 4))
    )
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[UpdatePruningMasks()])
    path = tmp_path / "m_by_n.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.layers[0].sparsity_m_by_n == (2, 4)
    assert restored.layers[0].block_size == (1, 1)
    clone = PruneLowMagnitude.from_config(model.layers[0].get_config())
    assert clone.sparsity_m_by_n == (2, 4)
    blocked = PruneLowMagnitude(
        keras.layers.Dense(4), schedule=EVERY_10, block_size=(2, 2)
    )
    assert PruneLowMagnitude.from_config(blocked.get_config()).block_size == (2, 2)


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:1200], y[:1200], x[1200:], y[1200:]


def _accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))


def test_two_of_four_on_digits_keeps_the_pattern_and_the_accuracy_of_50_percent():
    x, y, x_test, y_test = _digits()
    keras.utils.set_random_seed(0)
    dense = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    compile_for_test(dense, learning_rate=0.003)
    dense.fit(x, y, batch_size=32, epochs=8, verbose=0)
    schedule = ConstantSparsity(0.5, begin_step=0, frequency=10)
    accuracies = {}
    for name, options in {
        "unstructured": {},
        "2:4": {"sparsity_m_by_n": (2, 4)},
    }.items():
        keras.utils.set_random_seed(1)
        pruned = compile_for_test(
            prune_low_magnitude(dense, schedule=schedule, **options),
            learning_rate=0.003,
        )
        pruned.fit(
            x, y, batch_size=32, epochs=3, verbose=0, callbacks=[UpdatePruningMasks()]
        )
        accuracies[name] = _accuracy(pruned, x_test, y_test)
        if name != "2:4":
            continue
        report = sparsity_report(pruned)
        for entry in report.layers:
            assert entry.m_by_n == (2, 4) and entry.follows_m_by_n, entry
            assert entry.mask_sparsity == 0.5
        for wrapper in pruned.layers:
            assert (nonzeros_per_group(numpy(wrapper.pruned_weight)) <= 2).all()
            assert (nonzeros_per_group(numpy(wrapper.pruning_mask)) == 2).all()
        stripped = strip_pruning(pruned)
        for layer in stripped.layers:
            assert (nonzeros_per_group(numpy(layer.kernel)) <= 2).all()
        stripped_report = sparsity_report(stripped, m_by_n=(2, 4))
        assert all(entry.follows_m_by_n for entry in stripped_report.layers)
        assert "2:4 ok" in str(stripped_report)
        np.testing.assert_allclose(
            stripped.predict(x_test, verbose=0),
            pruned.predict(x_test, verbose=0),
            atol=1e-5,
        )
    assert accuracies["2:4"] >= accuracies["unstructured"] - 0.01, accuracies
