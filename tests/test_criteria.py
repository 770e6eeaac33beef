"""Prechelt's criteria as pure functions, on hand-computed sequences."""

from __future__ import annotations

import math
import pickle

import ml_dtypes
import numpy as np
import pytest

from keras_bettermodels import criteria
from keras_bettermodels.criteria import (
    GL,
    PQ,
    UP,
    AllOf,
    AnyOf,
    Criterion,
    ErrorHistory,
    Firing,
    Patience,
    _improvement,
)

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


class TestShorthand:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("GL5", GL(5)), ("PQ0.5", PQ(0.5)), ("UP3", UP(3)), ("gl2.5", GL(2.5))],
    )
    def test_parses_prechelts_names(self, text, expected):
        assert criteria.get(text) == expected

    @pytest.mark.parametrize("text", ["GL", "XY5", "GL-1", "UP1.5", ""])
    def test_refuses_other_strings(self, text):
        with pytest.raises(ValueError, match="Invalid value for argument `criterion`"):
            criteria.get(text)

    def test_refuses_other_types(self):
        with pytest.raises(TypeError, match="Received: criterion=5"):
            criteria.get(5)


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


class TestCriterionStrings:
    """`get` reads a criterion the way it prints itself (issue 19)."""

    CRITERIA = [
        GL(5),
        GL(2.5),
        UP(3),
        PQ(0.5),
        UP(3, strip_length=2),
        PQ(0.5, strip_length=3),
        Patience(3),
        Patience(3, min_delta=0.1),
        UP(3) | GL(2),
        GL(2) & UP(2),
        GL(5) | (UP(2) & PQ(0.5)),
    ]

    @pytest.mark.parametrize("criterion", CRITERIA, ids=repr)
    def test_round_trips_through_its_repr(self, criterion):
        assert criteria.get(repr(criterion)) == criterion

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("GL(5)", GL(5)),
            ("UP(3)", UP(3)),
            ("PQ(0.5)", PQ(0.5)),
            (" gl( 5 ) ", GL(5)),
            ("UP3 | GL2", UP(3) | GL(2)),
            ("PQ0.5 & UP(2)", PQ(0.5) & UP(2)),
            ("GL(alpha=5)", GL(5)),
        ],
    )
    def test_reads_calls_shorthands_and_combinations(self, text, expected):
        assert criteria.get(text) == expected

    @pytest.mark.parametrize(
        ("text", "because"),
        [
            ("GL()", "The criterion refused it"),
            ("GL(0)", "The criterion refused it: .*`alpha`"),
            ("UP(1.5)", "The criterion refused it: .*`s`"),
            ("UP(3, foo=1)", "The criterion refused it"),
            ("GL(5) + UP(3)", r"Received: criterion='GL\(5\) \+ UP\(3\)'$"),
            ("__import__('os')", "Received: criterion="),
            ("GL(x)", "Received: criterion="),
            ("GL(5) |", "Received: criterion="),
            ("(" * 600 + "GL(5)" + ")" * 600, "Received: criterion="),
        ],
    )
    def test_refuses_anything_else_clearly(self, text, because):
        with pytest.raises(
            ValueError, match="Invalid value for argument `criterion`"
        ) as caught:
            criteria.get(text)
        assert __import__("re").search(because, str(caught.value))


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

    @pytest.mark.parametrize(
        ("elapsed", "error"), [(-1.0, ValueError), ("1", TypeError)]
    )
    def test_bad_elapsed_is_refused(self, elapsed, error):
        with pytest.raises(error, match="`elapsed`"):
            ErrorHistory([1.0], elapsed=elapsed)
