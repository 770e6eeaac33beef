"""Prechelt's measures as pure functions, and the checks they share."""

from __future__ import annotations

import math

import pytest

from keras_bettermodels import criteria
from keras_bettermodels.criteria import GL, PQ, UP, Patience

pytestmark = pytest.mark.backend_independent


class TestGeneralizationLoss:
    def test_is_zero_at_a_new_best(self):
        assert criteria.generalization_loss([1.0, 0.8, 0.5]) == 0.0

    def test_is_percent_above_the_best_so_far(self):
        # E_opt = 0.5, E_va = 0.6 -> 100 * (0.6 / 0.5 - 1) = 20
        assert criteria.generalization_loss([1.0, 0.5, 0.6]) == pytest.approx(20.0)

    def test_uses_the_best_up_to_t_not_the_first(self):
        assert criteria.generalization_loss([0.4, 0.8, 0.5]) == pytest.approx(25.0)

    def test_zero_best_gives_infinity_when_the_error_rises(self):
        assert criteria.generalization_loss([0.0, 0.1]) == math.inf
        assert criteria.generalization_loss([0.0, 0.0]) == 0.0

    def test_negative_errors_are_refused(self):
        with pytest.raises(ValueError, match="non-negative errors"):
            criteria.generalization_loss([0.5, -0.1])

    def test_empty_history_is_refused(self):
        with pytest.raises(ValueError, match="at least one epoch"):
            criteria.generalization_loss([])


class TestTrainingProgress:
    def test_matches_the_formula(self):
        # sum = 4.0, k * min = 5 * 0.6 = 3.0 -> 1000 * (4/3 - 1)
        strip = [1.0, 0.9, 0.8, 0.7, 0.6]
        assert criteria.training_progress(strip) == pytest.approx(1000 / 3)

    def test_reads_only_the_last_strip(self):
        assert criteria.training_progress([9.0, 9.0, 2.0, 1.0], 2) == pytest.approx(500)

    def test_is_zero_once_training_has_flattened(self):
        assert criteria.training_progress([0.3] * 5) == 0.0

    def test_needs_a_whole_strip(self):
        with pytest.raises(ValueError, match="whole strip of 5"):
            criteria.training_progress([1.0, 0.9])


@pytest.mark.parametrize(
    ("t", "k", "expected"),
    [(5, 5, True), (10, 5, True), (4, 5, False), (7, 5, False), (3, 1, True)],
)
def test_strip_ends_are_multiples_of_k(t, k, expected):
    assert criteria.is_strip_end(t, k) is expected


class TestUpCount:
    def test_counts_successive_rises_at_strip_ends(self):
        # strip ends t=2,4,6,8: 0.5, 0.6, 0.7, 0.8 -> three rises at t = 8
        val = [0.9, 0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8]
        assert criteria.up_count(val, 2) == 3

    def test_a_fall_breaks_the_run(self):
        # strip ends: 0.5, 0.4, 0.7, 0.8 -> rises at t=6 and t=8 only
        val = [0.9, 0.5, 0.9, 0.4, 0.9, 0.7, 0.9, 0.8]
        assert criteria.up_count(val, 2) == 2

    def test_is_zero_between_strip_ends(self):
        assert criteria.up_count([0.1, 0.2, 0.3], 2) == 0

    def test_never_reads_before_epoch_one(self):
        # t = 2 with k = 2: E_va(t - k) would be epoch 0, which does not exist.
        assert criteria.up_count([0.1, 0.9], 2) == 0


class TestHelpersValidateLikeTheClasses:
    """Every public helper refuses what `PQ` / `UP` refuse, in the same words."""

    HELPERS = {
        "is_strip_end": lambda k: criteria.is_strip_end(5, k),
        "up_count": lambda k: criteria.up_count([0.5, 0.6], k),
        "training_progress": lambda k: criteria.training_progress([0.5] * 5, k),
        "measures": lambda k: criteria.measures([0.5], [0.4], k),
        "PQ": lambda k: PQ(0.5, strip_length=k),
        "UP": lambda k: UP(2, strip_length=k),
    }

    @pytest.mark.parametrize("helper", list(HELPERS))
    @pytest.mark.parametrize(
        ("strip_length", "error", "kind"),
        [
            (0, ValueError, "value"),
            (-1, ValueError, "value"),
            (2.5, TypeError, "type"),
            (None, TypeError, "type"),
            (True, TypeError, "type"),
        ],
    )
    def test_bad_strip_lengths(self, helper, strip_length, error, kind):
        with pytest.raises(
            error,
            match=rf"Invalid {kind} for argument `strip_length`\. Expected a "
            rf"positive integer\. Received: strip_length={strip_length!r}",
        ):
            self.HELPERS[helper](strip_length)

    SEQUENCE_HELPERS = {
        "generalization_loss": (criteria.generalization_loss, "val_errors"),
        "up_count": (criteria.up_count, "val_errors"),
        "training_progress": (
            lambda e: criteria.training_progress(e, 1),
            "train_errors",
        ),
        "measures(val_errors)": (criteria.measures, "val_errors"),
        "measures(train_errors)": (
            lambda e: criteria.measures([0.5], e),
            "train_errors",
        ),
        "GL.evaluate": (GL(5).evaluate, "val_errors"),
        "Patience.evaluate": (Patience(2).evaluate, "val_errors"),
    }

    @pytest.mark.parametrize("helper", list(SEQUENCE_HELPERS))
    @pytest.mark.parametrize(
        ("errors", "received"),
        [
            (None, r"{name}=None of type NoneType"),
            (0.5, r"{name}=0\.5 of type float"),
            ("0.5", r"{name}='0\.5' of type str"),
            ([0.5, None], r"{name}\[1\]=None of type NoneType"),
            ([0.5, "0.4"], r"{name}\[1\]='0\.4' of type str"),
            ([True], r"{name}\[0\]=True of type bool"),
        ],
        ids=str,
    )
    def test_bad_sequences(self, helper, errors, received):
        function, name = self.SEQUENCE_HELPERS[helper]
        if errors is None and helper == "measures(train_errors)":
            pytest.skip("`train_errors=None` means none were logged")
        with pytest.raises(
            TypeError,
            match=r"Invalid type for argument `.*`\. Expected .*\. Received: "
            + received.format(name=name),
        ):
            function(errors)

    @pytest.mark.parametrize("t", [-1, 2.5, None])
    def test_is_strip_end_refuses_a_bad_epoch(self, t):
        with pytest.raises((TypeError, ValueError), match=rf"Received: t={t!r}"):
            criteria.is_strip_end(t)

    def test_numpy_numbers_and_tuples_are_sequences_of_numbers(self):
        import numpy as np

        errors = (np.float32(1.0), np.float64(0.5), 0.6)
        assert criteria.generalization_loss(errors) == pytest.approx(20.0)
        assert criteria.up_count([], 5) == 0

    @pytest.mark.parametrize(
        "helper", [criteria.measures, criteria.generalization_loss], ids=str
    )
    def test_an_empty_history_is_refused_in_keras_wording(self, helper):
        with pytest.raises(
            ValueError,
            match=r"Invalid value for argument `val_errors`\. Expected the errors of "
            r"at least one epoch\. Received: val_errors=\[\]",
        ):
            helper([])

    def test_a_strip_too_short_for_p_k_is_refused_in_keras_wording(self):
        with pytest.raises(
            ValueError,
            match=r"Invalid value for argument `train_errors`\. Expected a whole "
            r"strip of 5 training errors for P_k\. Received: train_errors=\[1, 2\]",
        ):
            criteria.training_progress([1, 2])
