"""The one comparison of early stopping: rounding and `improves`."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from keras_bettermodels.criteria import _improvement

pytestmark = pytest.mark.backend_independent


class TestOneComparison:
    @pytest.mark.parametrize(
        ("x", "precision", "expected"),
        [
            (0.1, "float32", float(np.float32(0.1))),
            (0.1, "float16", float(np.float16(0.1))),
            (0.1, "bfloat16", float(np.array(0.1, ml_dtypes.bfloat16))),
            (1e-42, "float32", float(np.float32(1e-42))),  # subnormal
            (70000.0, "float16", math.inf),  # overflows
            (-70000.0, "float16", -math.inf),
            (0.1, "float64", 0.1),
        ],
    )
    def test_rounds_like_a_cast(self, x, precision, expected):
        assert _improvement.round_to(x, precision) == expected

    def test_rounds_ties_to_even_like_numpy(self):
        values = np.random.default_rng(0).uniform(-2, 2, 2000)
        for precision, dtype in (("float32", np.float32), ("float16", np.float16)):
            rounded = [_improvement.round_to(float(v), precision) for v in values]
            assert rounded == [float(dtype(v)) for v in values]

    def test_anything_improves_on_no_reference_and_nan_on_nothing_else(self):
        assert _improvement.improves(math.nan, None)
        assert not _improvement.improves(0.1, math.nan)
        assert not _improvement.improves(math.nan, 0.5)

    def test_min_delta_must_be_beaten(self):
        assert _improvement.improves(0.3, 0.5, 0.1)
        assert not _improvement.improves(0.45, 0.5, 0.1)


class TestRelativeMinDelta:
    @pytest.mark.parametrize(
        ("value", "reference", "min_delta", "expected"),
        [
            # rel: the margin is min_delta * |reference|: 0.1 * 2.0 = 0.2.
            (1.79, 2.0, 0.1, True),
            (1.81, 2.0, 0.1, False),
            # Negative signed values (a maximized metric, negated): |-0.9| * 0.1.
            (-0.999, -0.9, 0.1, True),
            (-0.98, -0.9, 0.1, False),
            (0.5, None, 0.1, True),  # anything improves on no reference
        ],
    )
    def test_margin_is_min_delta_times_the_reference(
        self, value, reference, min_delta, expected
    ):
        improves = _improvement.improves
        assert improves(value, reference, min_delta, min_delta_mode="rel") is expected

    def test_abs_stays_the_default(self):
        assert _improvement.improves(1.85, 2.0, 0.1)  # 1.95 < 2.0
        assert not _improvement.improves(1.85, 2.0, 0.1, min_delta_mode="rel")
