"""`TimeLimit`: stop once the time budget is spent."""

from __future__ import annotations

import pytest

from keras_bettermodels import criteria
from keras_bettermodels.criteria import GL, ErrorHistory

pytestmark = pytest.mark.backend_independent


class TestTimeLimit:
    @pytest.mark.parametrize(
        ("elapsed", "fires"), [(3599.9, False), (3600.0, True), (4000.0, True)]
    )
    def test_fires_once_the_budget_is_spent(self, elapsed, fires):
        history = ErrorHistory([1.0, 0.9], elapsed=elapsed)
        firing = criteria.TimeLimit(3600).evaluate_history(history)
        assert (firing is not None) is fires
        if fires:
            assert firing.criterion == "TimeLimit(3600)"
            assert firing.value == elapsed
            assert "3600 s" in firing.detail and "since training began" in firing.detail

    def test_combines_with_prechelts_criteria(self):
        rule = GL(5) | criteria.TimeLimit(3600)
        assert repr(rule) == "GL(5) | TimeLimit(3600)"
        assert criteria.get("GL5 | TimeLimit(3600)") == rule
        early = ErrorHistory([1.0, 1.01], elapsed=10.0)
        assert rule.evaluate_history(early) is None
        late = ErrorHistory([1.0, 1.01], elapsed=3601.0)
        assert rule.evaluate_history(late).criterion == "TimeLimit(3600)"
        worse = ErrorHistory([1.0, 1.2], elapsed=3601.0)
        assert rule.evaluate_history(worse).criterion == "GL(5)"  # first wins

    def test_reads_no_error_and_refuses_a_history_without_time(self):
        assert not criteria.TimeLimit(1).needs_errors
        assert (GL(5) | criteria.TimeLimit(1)).needs_errors
        with pytest.raises(ValueError, match="elapsed=None"):
            criteria.TimeLimit(1).evaluate([1.0])

    @pytest.mark.parametrize(
        ("seconds", "error"), [(0, ValueError), (-1, ValueError), ("1h", TypeError)]
    )
    def test_bad_seconds_are_refused(self, seconds, error):
        with pytest.raises(error, match="`seconds`"):
            criteria.TimeLimit(seconds)
