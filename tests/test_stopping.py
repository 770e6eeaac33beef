"""The early-stopping decision as a pure function, on scripted sequences."""

from __future__ import annotations

import math

import pytest

from keras_bettermodels import stopping
from keras_bettermodels.criteria import GL, PQ, UP, Patience, _measures
from keras_bettermodels.stopping import Rules, State, decide
from tests._imports import heavy_modules_after

pytestmark = pytest.mark.backend_independent


def _run(values, rules, train=None, nonfinite_at=None):
    """Decides epoch after epoch until a stop; returns (stop epoch, decisions)."""
    state, decisions = State(), []
    for epoch, value in enumerate(values):
        decision = decide(
            state,
            epoch,
            value,
            rules=rules,
            train_error=None if train is None else train[epoch],
            nonfinite="weight `dense/kernel` is not finite"
            if epoch == nonfinite_at
            else None,
        )
        decisions.append(decision)
        state = decision.state
        if decision.stop:
            return epoch, decisions
    return None, decisions


FALLS_THEN_RISES = [1.0, 0.8, 0.7, 0.72, 0.75, 0.8, 0.9, 1.0]


@pytest.mark.parametrize(
    ("values", "rules", "expected_stop_epoch"),
    [
        (FALLS_THEN_RISES, Rules(), 3),  # patience 0: the first non-improvement
        (FALLS_THEN_RISES, Rules(patience=2), 4),
        (FALLS_THEN_RISES, Rules(patience=2, min_delta=0.15), 3),  # 0.7 no better
        (FALLS_THEN_RISES, Rules(patience=1, baseline=0.6), 3),  # not at improvements
        (FALLS_THEN_RISES, Rules(patience=2, start_from_epoch=3), 5),
        (FALLS_THEN_RISES, Rules(criterion=GL(5)), 4),
        (FALLS_THEN_RISES, Rules(criterion=GL(50)), None),
        ([0.3, 0.2, 0.1], Rules(patience=5, stopping_threshold=0.15), 2),
        ([0.3, 0.2, 0.9], Rules(criterion=GL(1e6), divergence_threshold=0.5), 2),
        ([0.5, 0.6, 0.7, 0.8], Rules(minimize=False, patience=1), None),
        ([0.5, 0.4, 0.3, 0.2], Rules(minimize=False, patience=1), 1),
    ],
)
def test_stops_at_the_scripted_epoch(values, rules, expected_stop_epoch):
    assert _run(values, rules)[0] == expected_stop_epoch


class TestOrder:
    def test_a_nonfinite_variable_comes_first_even_in_the_warm_up(self):
        epoch, decisions = _run([0.5, 0.4], Rules(start_from_epoch=5), nonfinite_at=0)
        reason = decisions[-1].reason
        assert epoch == 0 and reason.criterion == "check_finite"
        assert reason.value is None and "weight `dense/kernel`" in reason

    def test_a_nonfinite_value_stops_before_any_bookkeeping(self):
        epoch, decisions = _run([0.5, math.inf], Rules(patience=9))
        assert epoch == 1 and decisions[-1].reason.value == math.inf
        assert decisions[-1].state.best == 0.5 and not decisions[-1].improved

    def test_check_finite_false_treats_nan_as_keras_does(self):
        epoch, _ = _run([0.5, math.nan, math.nan], Rules(check_finite=False))
        assert epoch == 1  # NaN is no improvement: patience 0 fires

    def test_warm_up_records_nothing(self):
        _, decisions = _run([0.9, 0.1, 0.5], Rules(start_from_epoch=2, patience=9))
        assert [d.measures is None for d in decisions] == [True, True, False]
        assert decisions[-1].state.val_errors == (0.5,)
        assert decisions[-1].state.best_epoch == 2

    def test_a_threshold_wins_over_the_criterion_in_the_same_epoch(self):
        rules = Rules(criterion=GL(5), divergence_threshold=0.7)
        epoch, decisions = _run([0.5, 0.8], rules)
        assert epoch == 1
        assert decisions[-1].reason.criterion == "divergence_threshold"

    def test_keras_patience_never_fires_at_an_improvement_or_epoch_0(self):
        assert _run([0.5], Rules())[0] is None
        assert _run([0.5, 0.4, 0.3], Rules())[0] is None

    def test_the_criterion_is_consulted_at_improving_epochs_too(self):
        # Patience's own min_delta: 0.95 and 0.92 improve for the callback
        # (min_delta 0) but not for Patience(2, min_delta=0.1), like Keras'
        # EarlyStopping(patience=2, min_delta=0.1).
        rules = Rules(criterion=Patience(2, min_delta=0.1))
        epoch, decisions = _run([1.0, 0.95, 0.92], rules)
        assert epoch == 2 and decisions[-1].improved


def test_baseline_keeps_wait_growing_until_it_is_beaten():
    _, decisions = _run([0.9, 0.8, 0.5], Rules(patience=9, baseline=0.6))
    assert [d.state.wait for d in decisions] == [1, 2, 0]
    assert [d.improved for d in decisions] == [True, True, True]


def test_the_state_is_not_mutated():
    state = State()
    decide(state, 0, 0.5, rules=Rules())
    assert state == State()


def test_an_injected_comparison_still_works_for_one_release_and_warns():
    calls = []

    def never(value, reference):
        calls.append((value, reference))
        return False

    with pytest.warns(DeprecationWarning, match="is_improvement"):
        rules = Rules(patience=9, is_improvement=never)
    _, decisions = _run([0.5, 0.4], rules)
    assert calls == [(0.4, 0.5)]  # nothing improves on no reference: not asked
    assert [d.improved for d in decisions] == [True, False]


def test_the_number_argument_still_works_for_one_release_and_warns():
    with pytest.warns(DeprecationWarning, match=r"decide\(number=...\)"):
        decision = decide(State(), 0, [0.5], rules=Rules(), number=0.5)
    assert decision.improved and decision.state.best == 0.5


def test_a_value_that_is_not_a_number_is_refused_in_keras_wording():
    with pytest.raises(TypeError, match=r"Received: value=\[0.5, 0.4\]"):
        decide(State(), 0, [0.5, 0.4], rules=Rules(criterion=GL(5)))


@pytest.mark.parametrize(
    ("precision", "improved"),
    [("float64", [True, True]), ("float32", [True, False])],
)
def test_ties_round_in_the_precision_keras_compares_in(precision, improved):
    # 0.35 + 0.05 < 0.4 in float64; in float32 both sides round to 0.4.
    rules = Rules(min_delta=0.05, patience=9, precision=precision)
    _, decisions = _run([0.4, 0.35], rules)
    assert [d.improved for d in decisions] == improved


def test_maximized_values_are_compared_signed():
    rules = Rules(minimize=False, min_delta=0.1, patience=9, baseline=0.75)
    _, decisions = _run([0.5, 0.55, 0.7, 0.79, 0.9], rules)
    assert [d.improved for d in decisions] == [True, False, True, False, True]
    assert [d.state.wait for d in decisions] == [1, 2, 3, 4, 0]  # 0.9 beats 0.75
    assert decisions[-1].state.best == 0.9


def test_check_state_is_the_end_of_training_check():
    assert stopping.check_state(3, None) is None
    reason = stopping.check_state(3, "weight `w` is not finite")
    assert (reason.criterion, reason.epoch, reason.value) == ("check_finite", 3, None)


def test_measures_are_those_of_the_criterion_strips_and_skip_a_maximized_metric():
    rules = Rules(criterion=UP(1, strip_length=2), strip_length=2)
    _, decisions = _run([0.5, 0.4, 0.45, 0.6], rules, train=[1.0, 0.8, 0.7, 0.6])
    assert decisions[1].measures["UP"] == 0 and decisions[1].measures["P_k"] > 0
    assert decisions[0].measures["UP"] is None
    _, decisions = _run([0.5, 0.6], Rules(minimize=False, patience=9))
    assert all(d.measures is None for d in decisions)


def test_a_negative_value_drops_the_measures_without_a_criterion_only():
    _, decisions = _run([-0.5, -0.6], Rules(patience=9))
    assert all(d.measures is None for d in decisions)
    with pytest.raises(ValueError, match="non-negative errors"):
        _run([-0.5], Rules(criterion=GL(5)))


def test_gl_and_p_k_are_computed_once_per_epoch(monkeypatch):
    checked = []
    real = _measures._check_errors

    def counting(name, errors):
        checked.append(name)
        real(name, errors)

    monkeypatch.setattr(_measures, "_check_errors", counting)
    rules = Rules(criterion=GL(50) | PQ(1e6) | (UP(3) & GL(60)) | PQ(1e6))
    values, train = [1.0, 0.9, 0.8, 0.85, 0.9], [1.0, 0.8, 0.7, 0.6, 0.55]
    state = State(val_errors=tuple(values[:4]), train_errors=tuple(train[:4]))
    decision = decide(state, 4, values[4], rules=rules, train_error=train[4])
    assert decision.measures["PQ"] is not None and decision.reason is None
    assert checked == ["val_errors", "train_errors"]  # GL once, P_5 once


def test_the_reason_reads_like_the_callbacks():
    _, decisions = _run(FALLS_THEN_RISES, Rules(criterion=GL(5)))
    reason = decisions[-1].reason
    assert isinstance(reason, stopping.StoppingReason)
    assert str(reason) == "Epoch 5: early stopping by GL(5): GL=7.143 > 5."


def test_importing_the_decision_loads_no_backend():
    assert heavy_modules_after("import keras_bettermodels.stopping") == []


def test_rules_improves_still_works_for_one_release_and_warns():
    with pytest.warns(DeprecationWarning, match=r"Rules\.improves"):
        assert Rules(minimize=False, min_delta=0.1).improves(0.75, 0.6)
    with pytest.warns(DeprecationWarning):
        assert not Rules(min_delta=0.1).improves(0.55, 0.6)


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="Received: precision='float8'"):
        Rules(precision="float8")


class TestRelativeMinDelta:
    @pytest.mark.parametrize(
        ("values", "expected_stop_epoch"),
        [
            # best 1.0; 0.95 + 0.1 * 1.0 is not below 1.0, nor 0.92: stop at 2.
            ([1.0, 0.95, 0.92, 0.5], 2),
            # 0.85 + 0.1 < 1.0 improves; 0.8 + 0.085 < 0.85 does not: stop at 3.
            ([1.0, 0.85, 0.8, 0.79], 3),
        ],
    )
    def test_rel_stops_on_hand_computed_sequences(self, values, expected_stop_epoch):
        rules = Rules(patience=2, min_delta=0.1, min_delta_mode="rel")
        assert _run(values, rules)[0] == expected_stop_epoch

    def test_abs_on_the_same_sequence_does_not_stop(self):
        rules = Rules(patience=2, min_delta=0.01)
        assert _run([1.0, 0.95, 0.92, 0.5], rules)[0] is None

    def test_rel_in_max_mode_scales_by_the_best(self):
        # best 0.5; 0.54 does not beat it by 10 % (0.55), 0.56 does.
        rules = Rules(minimize=False, patience=1, min_delta=0.1, min_delta_mode="rel")
        assert _run([0.5, 0.54, 0.6], rules)[0] == 1
        assert _run([0.5, 0.56, 0.62], rules)[0] is None  # 0.62 > 0.56 * 1.1

    def test_an_unknown_mode_is_refused(self):
        with pytest.raises(ValueError, match="`min_delta_mode`"):
            Rules(min_delta_mode="pct")


def _run_all(rows, rules, monitors=("val_loss", "val_accuracy")):
    """`decide_all` epoch after epoch; returns (stop epoch, last joint)."""
    states, joint = (State(),) * len(monitors), None
    for epoch, values in enumerate(rows):
        joint = stopping.decide_all(
            states, epoch, values, rules=rules, monitors=monitors
        )
        states = joint.states
        if joint.stop:
            return epoch, joint
    return None, joint


LOSS, ACCURACY = Rules(patience=2), Rules(minimize=False, patience=2)


class TestSeveralMetrics:
    @pytest.mark.parametrize(
        ("rows", "expected_stop_epoch"),
        [
            # Both stall from epoch 1: waits reach 2 together at epoch 3.
            ([(1.0, 0.5), (1.1, 0.4), (1.2, 0.4), (1.3, 0.3)], 2),
            # The loss stalls from epoch 1, the accuracy improves at 2: it
            # stalls for 2 epochs at epoch 4 only.
            ([(1.0, 0.5), (1.1, 0.4), (1.2, 0.6), (1.3, 0.5), (1.4, 0.5)], 4),
            # The accuracy keeps improving: no stop.
            ([(1.0, 0.5), (1.1, 0.6), (1.2, 0.7), (1.3, 0.8)], None),
        ],
    )
    def test_stops_when_all_have_stalled(self, rows, expected_stop_epoch):
        assert _run_all(rows, [LOSS, ACCURACY])[0] == expected_stop_epoch

    def test_the_reason_names_every_metric(self):
        _, joint = _run_all([(1.0, 0.5), (1.1, 0.4), (1.2, 0.4)], [LOSS, ACCURACY])
        assert joint.reason.criterion == "patience"
        assert "`val_loss`" in joint.reason and "`val_accuracy`" in joint.reason

    def test_improved_when_any_improves_and_each_keeps_its_best(self):
        _, joint = _run_all([(1.0, 0.5), (1.1, 0.6)], [LOSS, ACCURACY])
        assert joint.improved
        assert [d.improved for d in joint.decisions] == [False, True]
        assert [s.best_epoch for s in joint.states] == [0, 1]

    def test_a_threshold_on_the_first_stops_at_once(self):
        rules = [Rules(patience=9, stopping_threshold=0.5), ACCURACY]
        stop, joint = _run_all([(1.0, 0.5), (0.4, 0.6)], rules)
        assert stop == 1 and joint.reason.criterion == "stopping_threshold"

    def test_a_criterion_fires_only_for_all_metrics_at_once(self):
        rules = [Rules(criterion=GL(5)), Rules(criterion=GL(5))]
        rows = [(1.0, 2.0), (1.1, 2.0), (1.1, 2.2)]  # GL: (10, 0) then (10, 10)
        stop, joint = _run_all(rows, rules, ("val_loss", "val_mse"))
        assert stop == 2 and joint.reason.criterion == "GL(5)"

    def test_one_metric_gives_decides_own_reason(self):
        values = [1.0, 1.1, 1.2]
        stop, joint = _run_all([(v,) for v in values], [LOSS], ("val_loss",))
        assert stop == _run(values, LOSS)[0] == 2
        assert str(joint.reason) == str(_run(values, LOSS)[1][-1].reason)


class TestValidationFreq:
    @pytest.mark.parametrize(
        ("values", "expected_stop_epoch"),
        [
            # validation_freq=2: epochs 0, 2, 4 are not validated (None).
            # Validated: 1.0 (e1), 1.1 (e3), 1.2 (e5): wait 2 at epoch 5.
            ([None, 1.0, None, 1.1, None, 1.2], 5),
            ([None, 1.0, None, 0.9, None, 0.8, None, 0.85], None),
        ],
    )
    def test_patience_counts_validated_epochs(self, values, expected_stop_epoch):
        assert _run(values, Rules(patience=2))[0] == expected_stop_epoch

    def test_strips_count_validated_epochs(self):
        # UP(1, strip_length=2): strip ends are the 2nd and 4th validated values.
        values = [None, 1.0, None, 0.9, None, 1.0, None, 1.1]
        rules = Rules(criterion=UP(1, strip_length=2), strip_length=2)
        stop, decisions = _run(values, rules)
        assert stop == 7 and decisions[-1].measures["UP"] == 1


class TestTimeAndState:
    def test_time_limit_reads_elapsed(self):
        rules = Rules(criterion=GL(5) | criteria_time_limit(60))
        state = State()
        for epoch, elapsed in enumerate([10.0, 50.0, 61.0]):
            decision = decide(state, epoch, 1.0, rules=rules, elapsed=elapsed)
            state = decision.state
        assert decision.stop and decision.reason.criterion == "TimeLimit(60)"
        assert decision.reason.value == 61.0

    def test_time_limit_alone_works_on_a_maximized_metric(self):
        stopping.check_criterion(criteria_time_limit(1), 0, None, True, "val_acc")
        rules = Rules(minimize=False, criterion=criteria_time_limit(1))
        decision = decide(State(), 0, 0.9, rules=rules, elapsed=2.0)
        assert decision.stop and decision.measures is None

    def test_state_round_trips_through_a_dict(self):
        state = _run([1.0, 0.9, 1.1], Rules(patience=5), train=[2, 1, 0.5])[1][-1].state
        data = state.to_dict()
        assert data == {
            "best": 0.9,
            "best_epoch": 1,
            "wait": 1,
            "val_errors": [1.0, 0.9, 1.1],
            "train_errors": [2.0, 1.0, 0.5],
        }
        assert State.from_dict(data) == state

    def test_a_dict_that_is_no_state_is_refused(self):
        with pytest.raises(ValueError, match="`state`"):
            State.from_dict({"best": 1.0})


def criteria_time_limit(seconds):
    from keras_bettermodels.criteria import TimeLimit

    return TimeLimit(seconds)


@pytest.mark.parametrize(
    ("monitor", "mode", "error", "match"),
    [
        (["val_loss", "val_loss"], "auto", ValueError, "distinct"),
        ([], "auto", TypeError, "`monitor`"),
        (["val_loss", 3], "auto", TypeError, r"`monitor\[1\]`"),
        (["val_loss", "val_acc"], ["min"], ValueError, "a list of 2"),
        (["val_loss", "val_acc"], ["min", "up"], ValueError, r"`mode\[1\]`"),
    ],
)
def test_check_monitors_explains_in_keras_wording(monitor, mode, error, match):
    with pytest.raises(error, match=match):
        stopping.check_monitors(monitor, mode)
