"""The `Criterion` base class: its hook and the `|` / `&` combinations."""

from __future__ import annotations

import pickle

import pytest

from keras_bettermodels.criteria import (
    GL,
    PQ,
    UP,
    AllOf,
    AnyOf,
    Criterion,
    Firing,
)

pytestmark = pytest.mark.backend_independent


class TestComposition:
    val = [1.0, 0.5, 0.6]  # GL = 20 at t = 3, no strip end with k = 5

    def test_or_fires_when_any_fires_and_reports_that_one(self):
        firing = (UP(1) | GL(5)).evaluate(self.val)
        assert firing is not None and firing.criterion == "GL(5)"

    def test_and_needs_all_at_the_same_epoch(self):
        assert (GL(5) & UP(1)).evaluate(self.val) is None
        firing = (GL(5) & GL(10)).evaluate(self.val)
        assert firing is not None
        assert firing.criterion == "GL(5) & GL(10)"
        assert "GL=20 > 5" in firing.detail and "GL=20 > 10" in firing.detail

    def test_chains_flatten_and_nest_with_parentheses(self):
        assert isinstance(GL(1) | GL(2) | GL(3), AnyOf)
        assert len((GL(1) | GL(2) | GL(3)).criteria) == 3
        assert repr(GL(5) | (UP(2) & PQ(0.5))) == "GL(5) | (UP(2) & PQ(0.5))"
        assert isinstance(GL(1) & "UP2", AllOf)

    def test_strip_length_and_training_needs_propagate(self):
        combined = GL(5) | PQ(0.5, strip_length=3)
        assert combined.strip_length == 3
        assert combined.needs_train_errors

    def test_criteria_survive_pickling(self):
        combined = GL(5) | UP(3)
        assert pickle.loads(pickle.dumps(combined)) == combined


class TestOneHook:
    def test_a_criterion_without_the_hook_says_which_to_implement(self):
        class Nothing(Criterion):
            pass

        with pytest.raises(NotImplementedError, match="`evaluate_history`"):
            Nothing().evaluate([0.5])

    def test_a_criterion_implementing_evaluate_works_one_more_release(self):
        with pytest.warns(DeprecationWarning, match="evaluate_history"):

            class Last(Criterion):
                def evaluate(self, val_errors, train_errors=None):
                    if val_errors[-1] > 1:
                        return Firing("Last", val_errors[-1], "above 1")
                    return None

        assert (Last() | GL(500)).evaluate([0.5, 2.0]).criterion == "Last"
        assert (Last() | GL(500)).evaluate([0.5, 0.6]) is None
