"""Prechelt's criteria GL, PQ and UP, on hand-computed sequences."""

from __future__ import annotations

import math

import pytest

from keras_bettermodels.criteria import GL, PQ, UP

pytestmark = pytest.mark.backend_independent


class TestGL:
    @pytest.mark.parametrize(
        ("val", "alpha", "fires"),
        [
            ([1.0, 0.5, 0.52], 5, False),  # GL = 4
            ([1.0, 0.5, 0.53], 5, True),  # GL = 6
            ([1.0, 0.5, 0.53125], 6.25, False),  # GL = 6.25 exactly: "greater than"
        ],
    )
    def test_fires_only_above_alpha(self, val, alpha, fires):
        assert (GL(alpha).evaluate(val) is not None) is fires

    def test_reports_the_value_and_a_readable_detail(self):
        firing = GL(5).evaluate([1.0, 0.5, 0.6])
        assert firing is not None
        assert firing.criterion == "GL(5)"
        assert firing.value == pytest.approx(20.0)
        assert firing.detail == "GL=20 > 5"

    def test_stops_after_the_first_epoch_over_alpha(self):
        val = [1.0, 0.6, 0.5, 0.51, 0.54, 0.56, 0.7]
        first = next(t for t in range(1, 8) if GL(5).evaluate(val[:t]) is not None)
        assert first == 5  # GL(5) = 8 > 5; GL(4) = 2

    @pytest.mark.parametrize("alpha", [0, -1])
    def test_needs_a_positive_alpha(self, alpha):
        with pytest.raises(
            ValueError, match=rf"`alpha`.*positive.*Received: alpha={alpha}"
        ):
            GL(alpha)

    def test_refuses_a_non_number(self):
        with pytest.raises(TypeError, match="Received: alpha='5'"):
            GL("5")


class TestPQ:
    # k = 2. Strip ends at t = 2, 4. At t = 4: GL = 100 * (0.6 / 0.5 - 1) = 20,
    # P_2 = 1000 * ((0.2 + 0.1) / (2 * 0.1) - 1) = 500 -> PQ = 0.04.
    val = [0.8, 0.5, 0.55, 0.6]
    train = [1.0, 0.5, 0.2, 0.1]

    def test_fires_when_the_quotient_exceeds_alpha(self):
        firing = PQ(0.03, strip_length=2).evaluate(self.val, self.train)
        assert firing is not None
        assert firing.value == pytest.approx(0.04)

    def test_holds_when_the_quotient_is_below_alpha(self):
        assert PQ(0.05, strip_length=2).evaluate(self.val, self.train) is None

    def test_is_silent_between_strip_ends(self):
        assert PQ(0.001, strip_length=2).evaluate(self.val[:3], self.train[:3]) is None

    def test_flat_training_makes_the_quotient_infinite(self):
        firing = PQ(1000, strip_length=2).evaluate([0.5, 0.6], [0.3, 0.3])
        assert firing is not None and firing.value == math.inf

    def test_needs_training_errors(self):
        with pytest.raises(ValueError, match="training errors"):
            PQ(0.5, strip_length=2).evaluate(self.val, None)

    def test_reads_training_errors(self):
        assert PQ(0.5).needs_train_errors and not GL(5).needs_train_errors


class TestUP:
    val = [0.9, 0.5, 0.4, 0.6, 0.3, 0.7]  # strip ends (k = 2): 0.5, 0.6, 0.7

    def test_fires_after_s_successive_rises(self):
        firing = UP(2, strip_length=2).evaluate(self.val)
        assert firing is not None and firing.value == 2

    def test_holds_with_fewer_rises(self):
        assert UP(3, strip_length=2).evaluate(self.val) is None

    def test_needs_a_positive_integer(self):
        with pytest.raises(ValueError, match=r"`s`.*positive integer.*Received: s=0"):
            UP(0)
        with pytest.raises(TypeError, match=r"Received: s=1\.5"):
            UP(1.5)
