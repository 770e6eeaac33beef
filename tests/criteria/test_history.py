"""`ErrorHistory` and the `measures` it computes."""

from __future__ import annotations

import pytest

from keras_bettermodels import criteria
from keras_bettermodels.criteria import ErrorHistory

pytestmark = pytest.mark.backend_independent


def test_measures_report_every_quantity_at_strip_ends_only():
    val = [1.0, 0.8, 0.7, 0.75, 0.9]
    train = [1.0, 0.9, 0.8, 0.7, 0.6]
    at_end = criteria.measures(val, train)
    assert at_end["GL"] == pytest.approx(100 * (0.9 / 0.7 - 1))
    assert at_end["P_k"] == pytest.approx(1000 / 3)
    assert at_end["PQ"] == pytest.approx(at_end["GL"] / at_end["P_k"])
    assert at_end["UP"] == 0
    between = criteria.measures(val[:4], train[:4])
    assert between["P_k"] is None and between["PQ"] is None and between["UP"] is None


class TestOneHook:
    @pytest.mark.parametrize(
        ("method", "args", "expected"),
        [("gl", (), 20.0), ("p_k", (2,), 500.0), ("up", (2,), 0)],
    )
    def test_error_history_measure_methods_are_deprecated(self, method, args, expected):
        history = ErrorHistory([0.5, 0.6], [1.0, 0.5])
        with pytest.warns(DeprecationWarning, match=rf"ErrorHistory\.{method}"):
            assert getattr(history, method)(*args) == pytest.approx(expected)
        with pytest.warns(DeprecationWarning, match="is_strip_end"):
            assert history.is_strip_end(2)


class TestTimeLimit:
    @pytest.mark.parametrize(
        ("elapsed", "error"), [(-1.0, ValueError), ("1", TypeError)]
    )
    def test_bad_elapsed_is_refused(self, elapsed, error):
        with pytest.raises(error, match="`elapsed`"):
            ErrorHistory([1.0], elapsed=elapsed)
