"""sparsity_report: per-layer zeros, mask, step and schedule, as data and as a table."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.pruning.prune import strip_pruning
from keras_bettermodels.pruning.report import (
    LayerSparsity,
    SparsityReport,
    sparsity_report,
)
from keras_bettermodels.pruning.schedules import PolynomialDecay
from keras_bettermodels.pruning.wrapper import PruneLowMagnitude

SCHEDULE = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, frequency=10)


def _model() -> keras.Model:
    inputs = keras.Input((4,), dtype="int32")
    embedded = PruneLowMagnitude(
        keras.layers.Embedding(10, 8, name="embed"), schedule=SCHEDULE
    )(inputs)
    flat = keras.layers.Flatten()(embedded)
    outputs = keras.layers.Dense(2, name="head")(flat)
    model = keras.Model(inputs, outputs)
    wrapper = model.layers[1]
    mask = np.ones((10, 8), "float32")
    mask[:5] = 0  # half of the embedding rows pruned
    wrapper.pruning_mask.assign(mask)
    wrapper.apply_mask()
    wrapper.pruning_step.assign(50)
    return model


def test_report_lists_every_prunable_weight_with_its_numbers():
    report = sparsity_report(_model())
    assert [entry.layer for entry in report.layers] == [
        "prune_low_magnitude_embed",
        "head",
    ]
    embed, head = report.layers
    assert embed == LayerSparsity(
        layer="prune_low_magnitude_embed",
        weight="embeddings",
        shape=(10, 8),
        size=80,
        zeros=40,
        pruned=True,
        mask_sparsity=0.5,
        step=50,
        scheduled_sparsity=pytest.approx(SCHEDULE.sparsity_at(49)),
        scope="layer",
    )
    assert embed.sparsity == 0.5
    assert head.pruned is False and head.mask_sparsity is None
    assert head.zeros == 0 and head.size == 64
    assert report.size == 144 and report.zeros == 40
    assert report.sparsity == pytest.approx(40 / 144)
    assert report["head"] is head


def test_report_reads_as_a_table():
    text = str(sparsity_report(_model()))
    lines = text.splitlines()
    assert lines[0].split() == [
        "layer",
        "weight",
        "shape",
        "zeros",
        "mask",
        "scheduled",
        "step",
    ]
    assert lines[2].split()[:6] == [
        "prune_low_magnitude_embed",
        "embeddings",
        "10x8",
        "50.0%",
        "50.0%",
        f"{SCHEDULE.sparsity_at(49):.1%}",
    ]
    assert lines[3].split() == ["head", "kernel", "32x2", "0.0%", "-", "-", "-"]
    assert lines[-1].split() == ["total", "144", "27.8%"]


def test_a_stripped_model_reports_the_same_zeros():
    model = _model()
    stripped = sparsity_report(strip_pruning(model))
    assert [(e.layer, e.zeros, e.pruned) for e in stripped.layers] == [
        ("embed", 40, False),
        ("head", 0, False),
    ]


def test_unknown_layers_and_bad_input_are_errors():
    report = SparsityReport([])
    assert report.sparsity == 0.0
    with pytest.raises(KeyError, match="No prunable layer 'x'"):
        report["x"]
    with pytest.raises(TypeError, match="Invalid type for argument `model`"):
        sparsity_report([1, 2])
