"""The arithmetic of a gradient check, on hand-made numbers."""

from __future__ import annotations

import math

import pytest

from keras_bettermodels.gradient_check import _core
from keras_bettermodels.gradient_check._core import Probe

pytestmark = pytest.mark.backend_independent


def _probe(function, derivative, epsilon=1e-6, analytic=None):
    """A probe of a function of one variable at 0, in the direction +1."""
    return Probe(
        plus=function(epsilon),
        minus=function(-epsilon),
        center=function(0.0),
        analytic=derivative if analytic is None else analytic,
        epsilon=epsilon,
    )


class TestRelativeError:
    def test_is_ngs_formula(self):
        assert _core.relative_error([3.0, 4.0], [3.0, 4.0]) == 0.0
        # |(3,4) - (0,0)| / (5 + 0) = 1
        assert _core.relative_error([3.0, 4.0], [0.0, 0.0]) == 1.0
        # |1 - 1.03| / (1 + 1.03)
        assert _core.relative_error(1.0, 1.03) == pytest.approx(0.03 / 2.03)
        assert _core.relative_error([1.0, -1.0], [-1.0, 1.0]) == 1.0

    def test_two_zero_gradients_agree(self):
        assert _core.relative_error([0.0, 0.0], [0.0, 0.0]) == 0.0

    def test_floor_bounds_the_denominator_from_below(self):
        assert _core.relative_error(1e-12, 2e-12, floor=1e-6) == pytest.approx(1e-6)
        # A floor below the magnitudes changes nothing.
        assert _core.relative_error(1.0, 1.03, floor=1e-6) == pytest.approx(0.03 / 2.03)

    def test_sizes_must_match(self):
        with pytest.raises(ValueError, match="same size"):
            _core.relative_error([1.0, 2.0], [1.0])


class TestVerdict:
    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (0.0, "great"),
            (9.9e-8, "great"),
            (1e-7, "ok"),
            (9.9e-6, "ok"),
            (1e-5, "check"),
            (9.9e-4, "check"),
            (1e-3, "bug"),
            (1.0, "bug"),
            (math.nan, "bug"),
            (math.inf, "bug"),
        ],
    )
    def test_bands_follow_the_reference_table(self, error, expected):
        assert _core.verdict(error) == expected

    def test_thresholds_are_configurable(self):
        assert _core.verdict(1e-6, (1e-5, 1e-4, 1e-2)) == "great"
        assert _core.verdict(5e-3, (1e-5, 1e-4, 1e-2)) == "check"

    def test_worst_orders_the_verdicts(self):
        assert _core.worst(["ok", "great", "check"]) == "check"
        assert _core.worst(["great", "bug", "ok"]) == "bug"
        assert _core.worst([]) == "great"

    @pytest.mark.parametrize(
        ("thresholds", "error"),
        [
            ((1e-5, 1e-7, 1e-3), ValueError),
            ((1e-7, 1e-5), ValueError),
            ((0.0, 1e-5, 1e-3), ValueError),
            ("1e-7", TypeError),
            ((1e-7, "1e-5", 1e-3), TypeError),
        ],
    )
    def test_bad_thresholds_are_refused(self, thresholds, error):
        with pytest.raises(error, match="argument `thresholds`"):
            _core.check_thresholds(thresholds)


class TestProbe:
    def test_central_difference_of_a_smooth_function(self):
        probe = _probe(lambda t: math.exp(t) + t**3, derivative=1.0)
        assert probe.central == pytest.approx(1.0, abs=1e-9)
        assert not probe.kink
        assert probe.numeric == probe.central

    def test_a_wrong_derivative_of_a_smooth_function_is_no_kink(self):
        probe = _probe(lambda t: math.exp(t), derivative=1.0, analytic=1.03)
        assert not probe.kink
        assert _core.compare([probe])[1] == "bug"

    def test_a_kink_crossed_on_one_side_is_detected(self):
        # |t - 4e-7|: the step +1e-6 crosses the kink at 4e-7; at 0 the
        # derivative is -1, which the backward difference agrees with.
        probe = _probe(lambda t: abs(t - 4e-7) + 0.5 * t * t, derivative=-1.0)
        central_error = _core.relative_error(probe.central, probe.analytic)
        assert _core.verdict(central_error) == "bug"  # what a naive check says
        assert probe.kink and probe.smooth_side == -1
        assert probe.numeric == pytest.approx(-1.0, abs=1e-6)
        assert _core.compare([probe])[1] in ("great", "ok")

    def test_the_far_point_makes_the_one_sided_difference_second_order(self):
        epsilon = 1e-3  # large, so that the first-order error shows

        def function(t):
            return abs(t - 4e-4) + t * t

        probe = _probe(function, derivative=-1.0, epsilon=epsilon)
        first_order = abs(probe.numeric - (-1.0))
        far = Probe(
            probe.plus, probe.minus, probe.center, -1.0, epsilon, far=function(-2e-3)
        )
        assert far.kink
        assert abs(far.numeric - (-1.0)) < first_order / 100

    def test_a_gradient_too_small_to_resolve_does_not_fail(self):
        # J is flat but for rounding: the analytic derivative is 0, the
        # numeric one rounding noise (one ulp of J over 2ε).
        j = 2.0
        ulp = math.ulp(j)
        probe = Probe(j + ulp, j, j, 0.0, 1e-6)
        assert _core.relative_error(probe.central, probe.analytic) == 1.0
        assert _core.compare([probe])[1] in ("great", "ok")

    def test_compare_of_nothing_is_great(self):
        assert _core.compare([]) == (0.0, "great")
