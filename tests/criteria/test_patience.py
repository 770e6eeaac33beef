"""Keras' patience rule as a criterion."""

from __future__ import annotations

import pytest

from keras_bettermodels import criteria
from keras_bettermodels.criteria import Patience

pytestmark = pytest.mark.backend_independent


class TestPatience:
    @pytest.mark.parametrize(
        ("val", "patience", "min_delta", "fires"),
        [
            ([0.5, 0.6, 0.7], 2, 0, True),
            ([0.5, 0.6, 0.4], 2, 0, False),
            ([0.5, 0.49, 0.48], 2, 0.05, True),  # improvements smaller than min_delta
            ([0.5, 0.49, 0.48], 2, 0, False),
            ([0.5], 0, 0, False),  # like Keras, never after the first epoch
        ],
    )
    def test_counts_epochs_without_improvement(self, val, patience, min_delta, fires):
        assert (Patience(patience, min_delta).evaluate(val) is not None) is fires


class TestRelativeMinDelta:
    @pytest.mark.parametrize(
        ("values", "expected_stop_epoch"),
        [
            # Patience(2, 0.1, "rel"): 8.5 + 0.1 * 10 < 10 improves; then
            # 8.0 + 0.85 and 7.9 + 0.85 are not below 8.5: wait 2 at t=4.
            ([10.0, 8.5, 8.0, 7.9, 7.0], 4),
            # In "abs" mode 0.1 is tiny here: every fall improves, no stop.
            ([10.0, 9.0, 8.0, 7.0, 6.0], None),
        ],
    )
    def test_patience_rel_stops_on_a_hand_computed_sequence(
        self, values, expected_stop_epoch
    ):
        rule = Patience(2, min_delta=0.1, min_delta_mode="rel")
        stops = [t for t in range(1, len(values) + 1) if rule.evaluate(values[:t])]
        assert (stops[0] if stops else None) == expected_stop_epoch

    def test_patience_rel_prints_and_parses_itself(self):
        rule = Patience(3, min_delta=0.01, min_delta_mode="rel")
        assert repr(rule) == "Patience(3, min_delta=0.01, min_delta_mode='rel')"
        assert criteria.get(repr(rule)) == rule

    def test_an_unknown_mode_is_refused_in_keras_wording(self):
        with pytest.raises(ValueError, match=r"`min_delta_mode`.*Received: min_del"):
            Patience(3, min_delta_mode="relative")
