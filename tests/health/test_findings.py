"""The decisions over scripted per-layer rows."""

from __future__ import annotations

import math

import pytest

from keras_bettermodels.health.findings import (
    DEAD_SHARE,
    EXPLODING_RATIO,
    FLOAT16_MAX,
    VANISHING_RATIO,
    diagnose,
    float16_range,
)
from keras_bettermodels.health.report import LayerStats

pytestmark = pytest.mark.backend_independent


def _rows(**by_layer):
    rows = []
    for name, stats in by_layer.items():
        base = {"grad_norm": 1.0, "activation_abs_max": 3.0, "dead_fraction": 0.0}
        rows.append(LayerStats(5, name, 100, **{**base, **stats}))
    return rows


def test_healthy_rows_make_no_finding():
    assert diagnose(_rows(a={}, b={}, c={}), "mixed_float16") == []


@pytest.mark.parametrize("policy", ["mixed_float16", "float16", "float32"])
def test_float16_overflow_names_the_first_layer_only(policy):
    rows = _rows(
        a={},
        b={"activation_abs_max": FLOAT16_MAX * 2},
        c={"activation_abs_max": math.inf},
    )
    found = float16_range(rows, policy)
    assert [(f.code, f.layer, f.step) for f in found] == [("float16-overflow", "b", 5)]
    assert ("would overflow" in found[0].message) == (policy == "float32")


def test_a_nonfinite_gradient_overflows_too():
    found = float16_range(_rows(a={"gradient_abs_max": math.nan}), "mixed_float16")
    assert [f.layer for f in found] == ["a"]


def test_bfloat16_has_no_float16_findings():
    rows = _rows(a={"activation_abs_max": 1e9})
    assert float16_range(rows, "mixed_bfloat16") == []


def test_underflow_from_a_tenth_of_the_values():
    rows = _rows(a={"gradient_underflow": 0.05}, b={"gradient_underflow": 0.5})
    found = float16_range(rows, "float32")
    assert [(f.code, f.layer) for f in found] == [("float16-underflow", "b")]


def test_dead_units_per_layer_from_the_threshold():
    rows = _rows(a={"dead_fraction": DEAD_SHARE}, b={"dead_fraction": 0.1}, c={})
    assert [(f.code, f.layer, f.value) for f in diagnose(rows, "float32")] == [
        ("dead-units", "a", DEAD_SHARE)
    ]


def test_gradients_relative_to_the_median_layer():
    rows = _rows(
        a={"grad_norm": 1.0},
        b={"grad_norm": 2.0},
        c={"grad_norm": 1.0 * EXPLODING_RATIO * 3},
        d={"grad_norm": 1.0 * VANISHING_RATIO / 3},
        e={"grad_norm": 1.5},
    )
    found = [(f.code, f.layer) for f in diagnose(rows, "float32")]
    assert found == [("exploding-gradients", "c"), ("vanishing-gradients", "d")]


def test_two_layers_are_not_compared():
    rows = _rows(a={"grad_norm": 1.0}, b={"grad_norm": 1e6})
    assert diagnose(rows, "float32") == []
