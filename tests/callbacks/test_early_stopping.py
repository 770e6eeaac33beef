"""EarlyStopping: Keras parity, Prechelt's criteria, the extras, and real fits."""

from __future__ import annotations

import copy
import json
import math
import pickle
import warnings

import keras
import ml_dtypes
import numpy as np
import pytest

from keras_bettermodels import criteria
from keras_bettermodels._compat.callbacks import set_monitor_op
from keras_bettermodels.callbacks import EarlyStopping, StoppingReason
from keras_bettermodels.criteria import GL, PQ, UP, Patience


def _tiny_model() -> keras.Model:
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def _drive(callback, values, *, monitor="val_loss", extra=None):
    """Plays `values` as the logs of successive epochs; epoch e's weights are all e.

    Returns the number of epochs run and the weight value the model ends with
    (the epoch whose weights it holds).
    """
    model = _tiny_model()
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    epochs_run = 0
    for epoch, value in enumerate(values):
        model.set_weights(
            [np.full(w.shape, epoch, "float32") for w in model.get_weights()]
        )
        logs = {monitor: value, **{k: v[epoch] for k, v in (extra or {}).items()}}
        callback.on_epoch_end(epoch, logs)
        epochs_run += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return epochs_run, float(model.get_weights()[0].flat[0])


SEQUENCES = {
    "falls_then_rises": [1.0, 0.8, 0.7, 0.72, 0.75, 0.8, 0.9, 1.0],
    "plateau": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    "noisy": [0.9, 0.7, 0.75, 0.6, 0.65, 0.66, 0.55, 0.58, 0.6, 0.61, 0.62],
    "keeps_falling": [1.0, 0.9, 0.8, 0.7, 0.6],
    # With min_delta=0.05, 0.35 improves on 0.4 in float64 but not in float32,
    # which Keras compares in: the comparison has to be Keras' own.
    "float32_ties": [0.4, 0.35, 0.34, 0.29, 0.3, 0.31, 0.24],
}
KERAS_ARGUMENTS = [
    {},
    {"patience": 2},
    {"patience": 3, "restore_best_weights": True},
    {"patience": 1, "min_delta": 0.06, "restore_best_weights": True},
    {"patience": 2, "baseline": 0.6},
    {"patience": 2, "baseline": 0.6, "restore_best_weights": True},
    {"patience": 1, "start_from_epoch": 3, "restore_best_weights": True},
    {"patience": 2, "mode": "min"},
    {"patience": 1, "min_delta": 0.05},
    {"patience": 1, "min_delta": -0.05, "restore_best_weights": True},  # sign
    {"patience": 1, "baseline": 0.75},
    {"patience": 3, "baseline": 0.4, "restore_best_weights": True},  # never beaten
    {"start_from_epoch": 2},
    {"patience": 2, "start_from_epoch": 2, "restore_best_weights": True},
    {"patience": 1, "start_from_epoch": 20, "restore_best_weights": True},
]


@pytest.mark.parametrize("arguments", KERAS_ARGUMENTS, ids=str)
@pytest.mark.parametrize("sequence", list(SEQUENCES), ids=str)
def test_without_a_criterion_it_stops_exactly_like_keras(arguments, sequence):
    values = SEQUENCES[sequence]
    ours, theirs = (
        EarlyStopping(**arguments),
        keras.callbacks.EarlyStopping(**arguments),
    )
    assert _drive(ours, values) == _drive(theirs, values)
    assert ours.stopped_epoch == theirs.stopped_epoch
    assert ours.best == theirs.best
    assert ours.best_epoch == theirs.best_epoch


@pytest.mark.parametrize("sequence", list(SEQUENCES), ids=str)
def test_max_mode_matches_keras_too(sequence):
    scores = [1 - v for v in SEQUENCES[sequence]]
    arguments = {"monitor": "val_accuracy", "mode": "max", "patience": 2}
    ours = EarlyStopping(**arguments, restore_best_weights=True)
    theirs = keras.callbacks.EarlyStopping(**arguments, restore_best_weights=True)
    assert _drive(ours, scores, monitor="val_accuracy") == _drive(
        theirs, scores, monitor="val_accuracy"
    )
    assert (ours.stopped_epoch, ours.best) == (theirs.stopped_epoch, theirs.best)


MAX_ARGUMENTS = [
    {"mode": "max"},
    {"mode": "max", "patience": 1, "min_delta": 0.05},
    {"mode": "max", "patience": 1, "min_delta": -0.05, "baseline": 0.3},
    {"mode": "max", "patience": 2, "start_from_epoch": 2, "restore_best_weights": True},
]


@pytest.mark.parametrize("arguments", MAX_ARGUMENTS, ids=str)
@pytest.mark.parametrize("sequence", list(SEQUENCES), ids=str)
def test_max_mode_arguments_match_keras(arguments, sequence):
    scores = [1 - v for v in SEQUENCES[sequence]]
    ours, theirs = _pair(monitor="val_f1", **arguments)
    assert _play(ours, scores, "val_f1") == _play(theirs, scores, "val_f1")


def _pair(**arguments):
    return EarlyStopping(**arguments), keras.callbacks.EarlyStopping(**arguments)


def _as_numbers(value):
    if "bfloat16" in str(getattr(value, "dtype", "")):
        value = keras.ops.cast(value, "float32")  # TensorFlow's has no NumPy form
    return np.asarray(keras.ops.convert_to_numpy(value), "float64").tolist()


def _play(callback, values, monitor="val_loss", model=None):
    """Drives `callback` like `_drive`; returns everything Keras' callback exposes.

    An exception is part of the outcome: its type and the epoch it came at.
    """
    model = model or _tiny_model()
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.set_weights(
            [np.full(w.shape, epoch, "float32") for w in model.get_weights()]
        )
        try:
            callback.on_epoch_end(epoch, {monitor: value})
        except Exception as error:  # the outcome compared with Keras'
            return ("raised", type(error), epoch)
        if model.stop_training:
            break
    callback.on_train_end()
    best = None if callback.best is None else _as_numbers(callback.best)
    return (
        epoch,
        float(model.get_weights()[0].flat[0]),
        callback.stopped_epoch,
        best,
        callback.best_epoch,
        callback.wait,
    )


VALUE_TYPES = {
    "python_float": float,
    "numpy_scalar": np.float32,
    "numpy_0d": lambda v: np.array(v, "float32"),
    "numpy_shape_1": lambda v: np.array([v], "float32"),  # keras.metrics.F1Score
    "tensor_0d": lambda v: keras.ops.convert_to_tensor(v, "float32"),
    "tensor_shape_1": lambda v: keras.ops.convert_to_tensor([v], "float32"),
    # Half precision: NumPy's float16, and bfloat16 (NumPy kind "V"; a
    # TensorFlow bfloat16 tensor does not even convert to NumPy).
    "numpy_float16": np.float16,
    "numpy_bfloat16": lambda v: np.array(v, ml_dtypes.bfloat16),
    "tensor_bfloat16": lambda v: keras.ops.convert_to_tensor(v, "bfloat16"),
}


@pytest.mark.parametrize("arguments", KERAS_ARGUMENTS[1:7:2], ids=str)
@pytest.mark.parametrize("value_type", list(VALUE_TYPES), ids=str)
@pytest.mark.parametrize("sequence", ["falls_then_rises", "noisy"], ids=str)
def test_every_value_keras_accepts_is_accepted_the_same(
    arguments, value_type, sequence
):
    values = [VALUE_TYPES[value_type](v) for v in SEQUENCES[sequence]]
    ours, theirs = _pair(**arguments)
    outcome = _play(ours, values)
    assert outcome[0] != "raised"
    assert outcome == _play(theirs, values)


REJECTED = {
    "numpy_vector": lambda v: np.array([v, v / 2], "float32"),  # F1Score per class
    "tensor_vector": lambda v: keras.ops.convert_to_tensor([v, v / 2], "float32"),
    "string": str,
}


@pytest.mark.parametrize(
    "arguments",
    [{}, {"baseline": 0.9}, {"start_from_epoch": 2}, {"check_finite": False}],
    ids=str,
)
@pytest.mark.parametrize("value_type", list(REJECTED), ids=str)
def test_values_keras_rejects_are_rejected_with_its_error_at_its_epoch(
    arguments, value_type
):
    values = [REJECTED[value_type](v) for v in SEQUENCES["falls_then_rises"]]
    keras_arguments = {k: v for k, v in arguments.items() if k != "check_finite"}
    ours = EarlyStopping(**arguments)
    theirs = keras.callbacks.EarlyStopping(**keras_arguments)
    outcome = _play(ours, values)
    assert outcome[0] == "raised"
    assert outcome == _play(theirs, values)


def test_a_vector_keras_never_got_to_compare_is_kept_and_restored_like_keras():
    values = [np.array([0.5, 0.25], "float32")]  # one epoch: nothing to compare
    ours, theirs = _pair(restore_best_weights=True)
    assert _play(ours, values) == _play(theirs, values)


@pytest.mark.parametrize(
    ("monitor", "logs"),
    [("val_los", {"val_loss": 0.5}), ("val_custom", {"val_custom": 0.5})],
)
def test_an_undecidable_mode_is_keras_value_error_at_the_first_epoch_end(monitor, logs):
    for callback in _pair(monitor=monitor):  # not at construction
        callback.set_model(_tiny_model())
        callback.on_train_begin()  # nor at the start of training
        with pytest.raises(ValueError, match="isn't able to automatically determine"):
            callback.on_epoch_end(0, logs)
    ours = EarlyStopping(monitor=monitor)
    ours.set_model(_tiny_model())
    with pytest.raises(
        ValueError, match=rf"Available metrics are: {next(iter(logs))}\."
    ):
        ours.on_epoch_end(0, logs)


def test_the_mode_comes_from_the_compiled_metric_like_keras(digits):
    x, y = digits
    model = _digits_model(units=8)
    model.fit(x[:32], y[:32], validation_data=(x[32:64], y[32:64]), verbose=0)
    values = [0.5, 0.6, 0.55, 0.7, 0.6, 0.6, 0.6]  # accuracy: higher is better
    ours, theirs = _pair(monitor="val_accuracy", patience=2)
    assert _play(ours, values, "val_accuracy", model) == _play(
        theirs, values, "val_accuracy", model
    )
    assert ours.monitor_op is theirs.monitor_op is keras.ops.greater
    assert ours.min_delta == theirs.min_delta


def test_keras_attributes_match_after_a_fit_with_a_shape_1_metric():
    values = [np.array([v], "float32") for v in SEQUENCES["noisy"]]
    ours, theirs = _pair(monitor="val_f1_score", mode="max", patience=2)
    _play(ours, values, "val_f1_score"), _play(theirs, values, "val_f1_score")
    assert isinstance(ours.best, np.ndarray) and ours.best.shape == (1,)
    assert (ours.min_delta, ours.monitor_op) == (theirs.min_delta, theirs.monitor_op)


def test_is_a_keras_early_stopping_and_keeps_every_argument():
    callback = EarlyStopping(
        monitor="loss", min_delta=0.1, patience=4, mode="min", start_from_epoch=2
    )
    assert isinstance(callback, keras.callbacks.EarlyStopping)
    assert (callback.monitor, callback.patience, callback.start_from_epoch) == (
        "loss",
        4,
        2,
    )
    assert callback.check_finite is True and callback.criterion is None


def test_an_unknown_mode_warns_and_falls_back_to_auto_like_keras():
    with pytest.warns(UserWarning, match="mode 'sideways' is unknown"):
        callback = EarlyStopping(mode="sideways")
    assert callback.mode == "auto"


def test_patience_stop_has_a_reason():
    callback = EarlyStopping(patience=2)
    _drive(callback, SEQUENCES["falls_then_rises"])
    reason = callback.stopping_reason
    assert isinstance(reason, StoppingReason)
    assert (
        reason.criterion == "patience" and reason.epoch == callback.stopped_epoch == 4
    )
    assert "no improvement in `val_loss` for 2 epochs" in reason


class TestCriteria:
    def test_gl_stops_after_first_epoch_over_alpha(self):
        # GL: 0, 0, 0, 2.86, 7.14 -> stops after t = 5 (epoch 4)
        callback = EarlyStopping(criterion=GL(5))
        epochs, _ = _drive(callback, SEQUENCES["falls_then_rises"])
        assert epochs == 5 and callback.stopped_epoch == 4
        reason = callback.stopping_reason
        assert reason.criterion == "GL(5)"
        assert reason.value == pytest.approx(100 * (0.75 / 0.7 - 1))
        assert str(reason) == "Epoch 5: early stopping by GL(5): GL=7.143 > 5."

    def test_string_shorthand_is_the_same_criterion(self):
        callback = EarlyStopping(criterion="GL5")
        assert callback.criterion == GL(5)
        _drive(callback, SEQUENCES["falls_then_rises"])
        assert callback.stopped_epoch == 4

    def test_criterion_turns_keras_patience_off(self):
        # Keras with patience=0 would stop at the first non-improving epoch (3).
        callback = EarlyStopping(criterion=GL(50))
        epochs, _ = _drive(callback, SEQUENCES["noisy"])
        assert epochs == len(SEQUENCES["noisy"]) and callback.stopping_reason is None

    def test_patience_joins_a_criterion_with_or(self):
        callback = EarlyStopping(criterion=GL(50) | Patience(2))
        _drive(callback, SEQUENCES["falls_then_rises"])
        assert callback.stopped_epoch == 4
        assert callback.stopping_reason.criterion == "Patience(2)"

    def test_up_stops_at_strip_ends_only(self):
        # k = 2, strip ends t = 2, 4, 6, 8: 0.5, 0.6, 0.7, 0.8
        values = [0.9, 0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8]
        callback = EarlyStopping(criterion=UP(3, strip_length=2))
        epochs, _ = _drive(callback, values)
        assert epochs == 8 and callback.stopping_reason.value == 3

    def test_pq_reads_the_named_training_monitor(self):
        # k = 2; at t = 4: GL = 20, P_2 = 500, PQ = 0.04
        val, train = [0.8, 0.5, 0.55, 0.6], [1.0, 0.5, 0.2, 0.1]
        callback = EarlyStopping(
            criterion=PQ(0.03, strip_length=2), training_monitor="train_error"
        )
        _drive(callback, val, extra={"train_error": train})
        assert callback.stopped_epoch == 3
        assert callback.stopping_reason.value == pytest.approx(0.04)

    def test_pq_without_its_training_monitor_is_an_error_naming_the_logs(self):
        callback = EarlyStopping(criterion=PQ(0.5), training_monitor="train_error")
        with pytest.raises(
            ValueError, match=r"`train_error`.*Available metrics are: val_loss"
        ):
            _drive(callback, [0.5, 0.6])

    def test_and_needs_every_criterion_at_the_same_epoch(self):
        callback = EarlyStopping(criterion=GL(5) & UP(1, strip_length=5))
        epochs, _ = _drive(callback, SEQUENCES["falls_then_rises"])
        # GL > 5 from t = 5 on; UP(1) at the strip end t = 5 needs E_va(0): never.
        assert epochs == len(SEQUENCES["falls_then_rises"])
        assert callback.stopping_reason is None

    def test_criterion_history_holds_prechelts_measures(self):
        values = SEQUENCES["falls_then_rises"]
        train = [1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.45]
        callback = EarlyStopping(criterion=GL(500))
        _drive(callback, values, extra={"loss": train})
        history = callback.criterion_history
        assert [row["epoch"] for row in history] == list(range(len(values)))
        assert history[4] == {"epoch": 4, **criteria.measures(values[:5], train[:5])}
        assert history[4]["P_k"] is not None and history[3]["P_k"] is None

    def test_max_mode_with_a_criterion_is_refused_at_construction(self):
        with pytest.raises(
            ValueError, match=r"`val_accuracy` is maximized.*monitor='val_loss'"
        ):
            EarlyStopping(monitor="val_accuracy", mode="max", criterion=GL(5))

    def test_non_default_patience_with_a_criterion_suggests_patience(self):
        with pytest.raises(
            ValueError,
            match=r"Received: patience=3\. .*criterion=GL\(5\) \| Patience\(3\)",
        ):
            EarlyStopping(patience=3, criterion=GL(5))

    def test_baseline_with_a_criterion_is_refused(self):
        with pytest.raises(ValueError, match=r"Received: baseline=0\.5"):
            EarlyStopping(baseline=0.5, criterion=GL(5))


class TestExtras:
    def test_check_finite_stops_at_once_and_restores_the_best(self):
        callback = EarlyStopping(patience=10, restore_best_weights=True)
        epochs, weights = _drive(callback, [0.9, 0.5, 0.7, math.nan, 0.4])
        assert epochs == 4 and callback.stopped_epoch == 3
        assert callback.stopping_reason.criterion == "check_finite"
        assert "`val_loss` is nan" in callback.stopping_reason
        assert weights == 1  # the best epoch's weights

    def test_check_finite_false_waits_out_patience_like_keras(self):
        values = [0.9, 0.5, math.nan, math.nan, math.nan, math.nan]
        ours = EarlyStopping(patience=3, check_finite=False)
        theirs = keras.callbacks.EarlyStopping(patience=3)
        assert _drive(ours, values) == _drive(theirs, values) == (5, 4.0)

    def test_stopping_threshold_stops_once_the_value_is_better(self):
        callback = EarlyStopping(stopping_threshold=0.65, patience=100)
        _drive(callback, SEQUENCES["keeps_falling"])
        assert callback.stopped_epoch == 4  # 0.6 < 0.65; 0.7 is not
        assert callback.stopping_reason.criterion == "stopping_threshold"

    def test_divergence_threshold_stops_once_the_value_is_worse(self):
        callback = EarlyStopping(divergence_threshold=0.85, criterion=GL(1000))
        _drive(callback, [0.8, 0.7, 0.72, 0.9, 0.6])
        assert callback.stopped_epoch == 3  # 0.9 > 0.85
        assert callback.stopping_reason.criterion == "divergence_threshold"

    def test_thresholds_follow_max_mode(self):
        callback = EarlyStopping(monitor="val_acc", mode="max", stopping_threshold=0.8)
        _drive(callback, [0.5, 0.7, 0.85, 0.9], monitor="val_acc")
        assert callback.stopped_epoch == 2

    def test_best_weights_are_restored_when_no_rule_fired(self):
        callback = EarlyStopping(criterion=GL(1000), restore_best_weights=True)
        epochs, weights = _drive(callback, SEQUENCES["falls_then_rises"])
        assert epochs == len(SEQUENCES["falls_then_rises"]) and weights == 2

    def test_best_weights_are_restored_whichever_criterion_stopped(self):
        callback = EarlyStopping(
            criterion=UP(1, strip_length=2), restore_best_weights=True
        )
        epochs, weights = _drive(callback, [0.9, 0.5, 0.2, 0.6, 0.9, 0.9])
        assert epochs == 4 and weights == 2

    def test_a_missing_monitor_warns_with_the_available_keys(self):
        # mode="min": in "auto" mode Keras (and so this callback) cannot tell the
        # direction of `val_los` and raises first (see the parity tests).
        callback = EarlyStopping(monitor="val_los", mode="min")
        with pytest.warns(
            UserWarning, match="`val_los`.*Available metrics are: val_loss"
        ):
            callback.set_model(_tiny_model())
            callback.on_train_begin()
            callback.on_epoch_end(0, {"val_loss": 0.3})

    def test_strict_makes_a_missing_monitor_an_error(self):
        callback = EarlyStopping(monitor="val_los", strict=True)
        callback.set_model(_tiny_model())
        callback.on_train_begin()
        with pytest.raises(ValueError, match="Available metrics are: loss, val_loss"):
            callback.on_epoch_end(0, {"loss": 0.2, "val_loss": 0.3})

    def test_verbose_prints_the_reason_and_verbose_0_prints_nothing(self, capsys):
        _drive(
            EarlyStopping(criterion=GL(5), restore_best_weights=True, verbose=1),
            SEQUENCES["falls_then_rises"],
        )
        out = capsys.readouterr().out
        assert "Epoch 5: early stopping by GL(5): GL=7.143 > 5." in out
        assert "best epoch: 3" in out
        _drive(
            EarlyStopping(criterion=GL(5), restore_best_weights=True),
            SEQUENCES["falls_then_rises"],
        )
        assert capsys.readouterr().out == ""

    def test_one_instance_can_be_reused_across_fits(self):
        callback = EarlyStopping(criterion=GL(5))
        _drive(callback, SEQUENCES["falls_then_rises"])
        epochs, _ = _drive(callback, SEQUENCES["keeps_falling"])
        assert epochs == 5 and callback.stopping_reason is None
        assert callback.stopped_epoch == 0 and len(callback.criterion_history) == 5

    def test_stopping_reason_keeps_its_parts_through_copy_and_pickle(self):
        callback = EarlyStopping(criterion=GL(5))
        _drive(callback, SEQUENCES["falls_then_rises"])
        for clone in (
            copy.deepcopy(callback.stopping_reason),
            pickle.loads(pickle.dumps(callback.stopping_reason)),
        ):
            assert clone == callback.stopping_reason
            assert (clone.criterion, clone.epoch) == ("GL(5)", 4)

    def test_log_dir_writes_prechelts_measures_for_tensorboard(self, tmp_path):
        from tensorboard.backend.event_processing.event_accumulator import (
            EventAccumulator,
        )

        values = SEQUENCES["falls_then_rises"]
        callback = EarlyStopping(criterion=GL(500), log_dir=str(tmp_path))
        _drive(callback, values, extra={"loss": [1 - 0.05 * i for i in range(8)]})
        events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0}).Reload()
        gl = events.Tensors("early_stopping/GL")
        assert [e.step for e in gl] == list(range(8))
        written = [e.tensor_proto.float_val[0] for e in gl]
        expected = [row["GL"] for row in callback.criterion_history]
        assert written == pytest.approx(expected, rel=1e-6)
        # P_k and PQ exist at the strip end (t = 5) only.
        assert [e.step for e in events.Tensors("early_stopping/P_k")] == [4]
        assert [e.step for e in events.Tensors("early_stopping/PQ")] == [4]


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        (
            {"patience": "3"},
            TypeError,
            r"Invalid type for argument `patience`. Expected a number. "
            r"Received: patience='3'",
        ),
        ({"start_from_epoch": None}, TypeError, "Received: start_from_epoch=None"),
        ({"baseline": [0.5, 0.6]}, TypeError, r"Received: baseline=\[0.5, 0.6\]"),
        ({"min_delta": "0.1"}, TypeError, "Received: min_delta='0.1'"),
        ({"monitor": ""}, ValueError, "Received: monitor=''"),
        ({"criterion": "GL"}, ValueError, "Received: criterion='GL'"),
        ({"criterion": 5}, TypeError, "Received: criterion=5"),
        ({"training_monitor": 3}, TypeError, "Received: training_monitor=3"),
        (
            {"stopping_threshold": "low"},
            TypeError,
            "Received: stopping_threshold='low'",
        ),
        (
            {"divergence_threshold": math.inf},
            ValueError,
            "Received: divergence_threshold=inf",
        ),
        ({"check_finite": 1}, TypeError, "Received: check_finite=1"),
        ({"strict": "yes"}, TypeError, "Received: strict='yes'"),
        ({"log_dir": 7}, TypeError, "Received: log_dir=7"),
    ],
)
def test_bad_arguments_are_explained_in_keras_wording(arguments, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping(**arguments)


ODD_ARGUMENTS_KERAS_TAKES = [
    {"patience": 2.0},
    {"patience": 1.5},
    {"patience": -1},
    {"start_from_epoch": 1.5},
    {"start_from_epoch": -2, "patience": 1},
    {"baseline": math.inf, "patience": 1},
    {"min_delta": math.inf, "patience": 1},
    {"min_delta": np.array(0.05), "patience": 1},
    {"baseline": np.float32(0.6), "patience": 2},
    {"baseline": np.array([0.75]), "patience": 1},
]


@pytest.mark.parametrize("arguments", ODD_ARGUMENTS_KERAS_TAKES, ids=str)
@pytest.mark.parametrize("sequence", ["falls_then_rises", "noisy"], ids=str)
def test_odd_arguments_keras_takes_are_taken_the_same(arguments, sequence):
    """A float or negative patience, an infinite baseline, a 0-d array:
    Keras takes them as they are, and so do we, with its outcome."""
    ours, theirs = _pair(**arguments)
    outcome = _play(ours, SEQUENCES[sequence])
    assert outcome[0] != "raised"
    assert outcome == _play(theirs, SEQUENCES[sequence])


def _digits_model(units: int = 128, learning_rate: float = 0.001) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def test_a_real_fit_stops_by_gl_and_restores_the_best_epoch(digits):
    x, y = digits
    keras.utils.set_random_seed(1)
    model = _digits_model(learning_rate=0.003)  # overfits in ~70 epochs, not ~120
    callback = EarlyStopping(criterion=GL(5), restore_best_weights=True)
    history = model.fit(
        x[:200],
        y[:200],
        validation_data=(x[1000:1300], y[1000:1300]),
        epochs=150,
        batch_size=64,
        verbose=0,
        callbacks=[callback],
    )
    epochs_run = len(history.history["val_loss"])
    assert epochs_run < 150 and callback.stopped_epoch == epochs_run - 1
    assert callback.stopping_reason.criterion == "GL(5)"
    assert callback.stopping_reason.value > 5
    best_val_loss = min(history.history["val_loss"])
    assert callback.best == pytest.approx(best_val_loss)
    restored_val_loss = model.evaluate(x[1000:1300], y[1000:1300], verbose=0)[0]
    assert restored_val_loss == pytest.approx(best_val_loss, rel=1e-4)
    assert restored_val_loss < history.history["val_loss"][-1]


def test_a_criterion_on_a_maximized_metric_fails_at_the_first_epoch_end(digits):
    x, y = digits
    model = _digits_model(units=8)
    callback = EarlyStopping(monitor="val_accuracy", criterion=GL(5))
    with pytest.raises(ValueError, match="`val_accuracy` is maximized"):
        model.fit(
            x[:64],
            y[:64],
            validation_data=(x[64:96], y[64:96]),
            epochs=2,
            verbose=0,
            callbacks=[callback],
        )


@pytest.mark.parametrize("restore_best_weights", [False, True])
def test_a_real_fit_on_f1_score_runs_like_keras(digits, restore_best_weights):
    x, y = digits
    binary = (y == 3).astype("float32")[:, None]
    histories = []
    for callback_class in (EarlyStopping, keras.callbacks.EarlyStopping):
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(1, activation="sigmoid")]
        )
        model.compile("sgd", "binary_crossentropy", metrics=[keras.metrics.F1Score()])
        callback = callback_class(
            monitor="val_f1_score",
            patience=1,
            restore_best_weights=restore_best_weights,
        )
        history = model.fit(
            x[:256],
            binary[:256],
            validation_data=(x[256:512], binary[256:512]),
            epochs=6,
            batch_size=64,
            shuffle=False,
            verbose=0,
            callbacks=[callback],
        )
        histories.append(
            (
                len(history.history["loss"]),
                callback.stopped_epoch,
                callback.best_epoch,
                [w.tolist() for w in model.get_weights()],
            )
        )
    assert histories[0] == histories[1]


class _NanToZero(keras.layers.Layer):
    """Maps NaN activations to 0, as TensorFlow's relu does on some CPUs."""

    def call(self, x):
        return keras.ops.where(keras.ops.isnan(x), keras.ops.zeros_like(x), x)


class _Plant(keras.callbacks.Callback):
    """Writes NaN into one entry of `pick(model)` at the start (or end) of an epoch."""

    def __init__(self, epoch, pick, at="begin"):
        super().__init__()
        self.epoch, self.pick, self.at = epoch, pick, at

    def _plant(self, epoch):
        if epoch == self.epoch:
            variable = self.pick(self.model)
            value = keras.ops.convert_to_numpy(variable.value).copy()
            value.flat[0] = np.nan
            variable.assign(value)

    def on_epoch_begin(self, epoch, logs=None):
        if self.at == "begin":
            self._plant(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self.at == "end":
            self._plant(epoch)


class _Record(keras.callbacks.Callback):
    """Keeps every epoch's weights (host copies: a test's reference only)."""

    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def _state_watch_fit(layer, pick, *, at="begin", plant_epoch=2, **arguments):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), *layer, keras.layers.Dense(3, activation="softmax")],
        name="watched",
    )
    model.compile(
        keras.optimizers.Adam(0.01, name="adam"), "sparse_categorical_crossentropy"
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 1] > 0).astype("int32") + (x[:, 2] > 0).astype("int32")
    record, stopper = _Record(), EarlyStopping(monitor="loss", patience=50, **arguments)
    history = model.fit(
        x,
        y,
        epochs=6,
        batch_size=16,
        verbose=0,
        callbacks=[_Plant(plant_epoch, lambda m: pick(m), at), record, stopper],
    )
    return model, history.history["loss"], record.weights, stopper


WATCHED = {
    "kernel": (
        lambda: [keras.layers.Dense(5, name="first"), _NanToZero()],
        lambda m: m.get_layer("first").kernel,
        "begin",
        "weight `watched/first/kernel`",
    ),
    "moving_variance": (
        lambda: [keras.layers.Dense(5), keras.layers.BatchNormalization(name="bn")],
        lambda m: m.get_layer("bn").moving_variance,
        "begin",
        "weight `watched/bn/moving_variance`",
    ),
    "optimizer_slot": (
        lambda: [keras.layers.Dense(5)],
        lambda m: next(v for v in m.optimizer.variables if "momentum" in v.path),
        "end",
        "optimizer variable `adam/",
    ),
}


class TestStateWatch:
    @pytest.mark.parametrize("planted", list(WATCHED))
    def test_a_nonfinite_variable_stops_and_the_best_weights_come_back(self, planted):
        layer, pick, at, named = WATCHED[planted]
        model, losses, weights, stopper = _state_watch_fit(
            layer(), pick, at=at, restore_best_weights=True
        )
        assert all(math.isfinite(loss) for loss in losses)  # the loss saw nothing
        assert len(losses) == 3 and stopper.stopped_epoch == 2  # noticed in epoch 2
        reason = stopper.stopping_reason
        assert reason.criterion == "check_finite" and named in reason
        assert reason.endswith("is not finite.") and reason.value is None
        assert stopper.best_epoch < 2
        restored = model.get_weights()
        assert all(np.isfinite(w).all() for w in restored)
        for got, kept in zip(restored, weights[stopper.best_epoch], strict=True):
            np.testing.assert_array_equal(got, kept)

    def test_without_restore_it_still_stops_in_that_epoch(self):
        layer, pick, at, named = WATCHED["kernel"]
        _, losses, _, stopper = _state_watch_fit(layer(), pick, at=at)
        assert len(losses) == 3 and named in stopper.stopping_reason

    def test_check_finite_false_trains_on_like_keras(self):
        layer, pick, _, _ = WATCHED["kernel"]
        model, losses, _, stopper = _state_watch_fit(layer(), pick, check_finite=False)
        assert len(losses) == 6 and stopper.stopping_reason is None
        assert all(math.isfinite(loss) for loss in losses)
        assert np.isnan(model.get_layer("first").kernel.numpy()).any()

    def test_the_train_end_check_catches_what_no_epoch_end_saw(self):
        model = _tiny_model()
        stopper = EarlyStopping(restore_best_weights=True, patience=5)
        _drive(stopper, [0.5, 0.4])  # epoch 1 is the best
        stopper.set_model(model)
        model.set_weights([np.full(w.shape, 7.0, "float32") for w in model.weights])
        kernel = model.weights[0]
        kernel.assign(np.full(kernel.shape, np.nan, "float32"))
        stopper.on_train_end()
        assert stopper.stopping_reason.criterion == "check_finite"
        assert "weight `" in stopper.stopping_reason
        assert float(model.get_weights()[0].flat[0]) == 1.0


class _WeightsOnly:
    """Keras' own test's stand-in for a model (keras/src/callbacks/
    early_stopping_test.py, `DummyModel`): `get_weights` / `set_weights` and
    `stop_training`, no variables; its "weights" are the epoch's number."""

    def __init__(self):
        self.stop_training = False
        self.weights = -1

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        self.weights = weights


def _drive_weights_only(callback, losses, *, stop_after=None):
    """Keras' test loop: epoch e's weights are `e`; `stop_after` is another
    callback asking for a stop after that epoch."""
    callback.set_model(_WeightsOnly())
    callback.on_train_begin()
    epochs_trained = 0
    for epoch, loss in enumerate(losses):
        epochs_trained += 1
        callback.model.set_weights(epoch)
        callback.on_epoch_end(epoch, logs={"val_loss": loss})
        if epoch == stop_after:
            callback.model.stop_training = True
        if callback.model.stop_training:
            break
    callback.on_train_end()
    return epochs_trained, callback.model.get_weights()


class TestWithoutAKerasModel:
    """Keras 3.15.1's `test_early_stopping_final_weights_when_restoring_model_weights`:
    what Keras' EarlyStopping accepts as a model, ours accepts."""

    @pytest.mark.parametrize(
        ("arguments", "losses", "stop_after", "expected"),
        [
            # Best at epoch 2 (0.1); patience 2 stops after epoch 4.
            ({"patience": 2}, [0.2, 0.15, 0.1, 0.11, 0.12], None, (5, 2)),
            # No epoch beats the baseline: 5 epochs, the best (epoch 2) back.
            (
                {"patience": 5, "baseline": 0.5},
                [0.9, 0.8, 0.7, 0.71, 0.72, 0.73],
                None,
                (5, 2),
            ),
            # Another callback asks for the stop after epoch 3.
            (
                {"patience": 5, "baseline": 0.5},
                [0.9, 0.8, 0.7, 0.71, 0.72, 0.73],
                3,
                (4, 2),
            ),
        ],
        ids=["patience", "baseline_never_beaten", "another_callback_stops"],
    )
    def test_final_weights_are_the_best_epochs_like_keras(
        self, arguments, losses, stop_after, expected
    ):
        arguments = {"monitor": "val_loss", "restore_best_weights": True, **arguments}
        theirs = keras.callbacks.EarlyStopping(**arguments)
        ours = EarlyStopping(**arguments)
        assert _drive_weights_only(theirs, losses, stop_after=stop_after) == expected
        assert _drive_weights_only(ours, losses, stop_after=stop_after) == expected
        assert (ours.best_epoch, ours.stopped_epoch) == (
            theirs.best_epoch,
            theirs.stopped_epoch,
        )

    def test_a_nonfinite_value_still_stops_at_once_and_restores(self):
        callback = EarlyStopping(patience=10, restore_best_weights=True)
        epochs, weights = _drive_weights_only(callback, [0.9, 0.5, 0.7, math.nan])
        assert (epochs, weights) == (4, 1)
        assert callback.stopping_reason.criterion == "check_finite"

    def test_an_object_without_get_weights_is_a_type_error_naming_them(self):
        callback = EarlyStopping(restore_best_weights=True)
        callback.set_model(object())
        callback.on_train_begin()
        with pytest.raises(TypeError, match="`get_weights` and `set_weights`"):
            callback.on_epoch_end(0, {"val_loss": 0.5})


class TestRelativeMinDelta:
    @pytest.mark.parametrize(
        ("values", "min_delta_mode", "expected_epochs_run"),
        [
            # rel: 0.95 + 0.1 * 1.0 is not below 1.0: patience 1 stops at once.
            ([1.0, 0.95, 0.8, 0.75], "rel", 2),
            # abs: 0.95 + 0.1 is not below 1.0 either, but 0.8 + 0.1 < 0.95 ...
            ([1.0, 0.85, 0.8, 0.7], "abs", 3),
            # ... where rel needs 0.8 + 0.085 < 0.85: stops at the same epoch.
            ([1.0, 0.85, 0.8, 0.7], "rel", 3),
            # Small values: rel's margin shrinks with them, abs' does not.
            ([0.1, 0.05, 0.03, 0.02], "rel", 4),
            ([0.1, 0.05, 0.03, 0.02], "abs", 2),
        ],
    )
    def test_stops_at_the_hand_computed_epoch(
        self, values, min_delta_mode, expected_epochs_run
    ):
        callback = EarlyStopping(
            patience=1, min_delta=0.1, min_delta_mode=min_delta_mode
        )
        assert _drive(callback, values)[0] == expected_epochs_run

    def test_max_mode_scales_by_the_best(self):
        callback = EarlyStopping(
            monitor="val_accuracy", mode="max", patience=1, min_delta=0.1,
            min_delta_mode="rel",
        )  # fmt: skip
        # 0.54 does not beat 0.5 * 1.1 = 0.55.
        assert _drive(callback, [0.5, 0.54, 0.9], monitor="val_accuracy")[0] == 2

    def test_an_unknown_mode_is_refused_in_keras_wording(self):
        with pytest.raises(
            ValueError, match=r"Invalid value for argument `min_delta_mode`"
        ):
            EarlyStopping(min_delta_mode="percent")


LOSSES = [1.0, 1.1, 1.2, 1.3, 1.4]
ACCURACIES = [0.5, 0.4, 0.6, 0.5, 0.5]


class TestSeveralMetrics:
    def _callback(self, **arguments):
        return EarlyStopping(
            monitor=["val_loss", "val_accuracy"], mode=["min", "max"], **arguments
        )

    @pytest.mark.parametrize(
        ("values", "accuracies", "expected_stop_epoch"),
        [
            # The loss stalls from epoch 1, the accuracy from epoch 2: both
            # have gone 2 epochs without improving at epoch 4.
            (LOSSES, ACCURACIES, 4),
            ([1.0, 0.9, 1.0, 1.1, 1.2], [0.5, 0.4, 0.4, 0.4, 0.4], 3),
            (LOSSES, [0.5, 0.6, 0.7, 0.8, 0.9], None),  # never all stalled
        ],
    )
    def test_stops_when_all_have_stalled(self, values, accuracies, expected_stop_epoch):
        callback = self._callback(patience=2)
        epochs_run, _ = _drive(callback, values, extra={"val_accuracy": accuracies})
        if expected_stop_epoch is None:
            assert epochs_run == len(values) and callback.stopping_reason is None
        else:
            assert callback.stopped_epoch == expected_stop_epoch
            assert epochs_run == expected_stop_epoch + 1
            assert "`val_loss`" in callback.stopping_reason
            assert "`val_accuracy`" in callback.stopping_reason

    def test_restores_the_best_epoch_of_the_first_metric(self):
        callback = self._callback(patience=2, restore_best_weights=True)
        _, weights = _drive(callback, LOSSES, extra={"val_accuracy": ACCURACIES})
        assert weights == 0.0  # epoch 0: the lowest loss (the accuracy's is 2)
        assert callback.best == 1.0 and callback.best_epoch == 0
        assert callback.wait == 2  # epochs since any metric improved

    def test_each_mode_is_inferred_as_keras_does(self, digits):
        x, y = digits
        keras.utils.set_random_seed(0)
        model = _digits_model(units=8)
        callback = EarlyStopping(monitor=["val_loss", "val_accuracy"], patience=1)
        model.fit(
            x[:64], y[:64], validation_data=(x[64:96], y[64:96]), epochs=2,
            verbose=0, callbacks=[callback],
        )  # fmt: skip
        ours = [probe_op(callback, name) for name in callback.monitors]
        assert ours == [keras.ops.less, keras.ops.greater]

    def test_a_criterion_on_a_maximized_one_is_refused(self):
        with pytest.raises(ValueError, match="`val_accuracy` is maximized"):
            EarlyStopping(
                monitor=["val_loss", "val_accuracy"], mode=["min", "max"],
                criterion=GL(5),
            )  # fmt: skip

    @pytest.mark.parametrize(
        ("arguments", "error", "match"),
        [
            ({"monitor": ["val_loss", "val_loss"]}, ValueError, "distinct"),
            ({"monitor": ["val_loss", "loss"], "mode": ["min"]}, ValueError, "`mode`"),
            ({"monitor": 3}, TypeError, "`monitor`"),
        ],
    )
    def test_bad_lists_are_explained(self, arguments, error, match):
        with pytest.raises(error, match=match):
            EarlyStopping(**arguments)


def probe_op(callback, name):
    """Keras' own EarlyStopping's mode for `name` on the callback's model."""
    keras_callback = keras.callbacks.EarlyStopping(monitor=name)
    keras_callback.set_model(callback.model)
    set_monitor_op(keras_callback)
    return keras_callback.monitor_op


class TestTimeLimit:
    def test_a_spent_budget_stops_with_the_time_in_the_reason(self):
        callback = EarlyStopping(criterion=GL(5) | criteria.TimeLimit(1e-9))
        assert _drive(callback, [1.0, 0.9, 0.8])[0] == 1
        reason = callback.stopping_reason
        assert reason.criterion == "TimeLimit(1e-09)" and reason.value > 0
        assert "s since training began, time limit 1e-09 s" in reason

    def test_an_unspent_budget_leaves_the_other_rules(self):
        callback = EarlyStopping(criterion=GL(5) | criteria.TimeLimit(3600))
        assert _drive(callback, [1.0, 0.9, 1.0])[0] == 3
        assert callback.stopping_reason.criterion == "GL(5)"

    def test_it_works_on_a_maximized_metric(self):
        callback = EarlyStopping(
            monitor="val_accuracy", mode="max", criterion=criteria.TimeLimit(1e-9)
        )
        assert _drive(callback, [0.5, 0.6], monitor="val_accuracy")[0] == 1


def _resume(values, cut, make, extra=None):
    """Plays `values[:cut]` on one callback, its state through JSON into a
    fresh one, and the rest there; returns (epochs run after the cut, weight)."""
    first = make()
    _drive(first, values[:cut], extra=extra)  # ends with on_train_end: harmless
    state = first.get_state()
    weights = state.pop("best_weights")
    state = json.loads(json.dumps(state))
    state["best_weights"] = weights
    second, model = make(), _tiny_model()
    second.set_model(model)
    model.stop_training = False
    second.on_train_begin()
    second.set_state(state)
    for epoch in range(cut, len(values)):
        model.set_weights([np.full(w.shape, epoch, "float32") for w in model.weights])
        logs = {"val_loss": values[epoch]}
        logs.update({k: v[epoch] for k, v in (extra or {}).items()})
        second.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    second.on_train_end()
    return second, float(model.get_weights()[0].flat[0])


class TestState:
    @pytest.mark.parametrize(
        ("values", "expected_stop_epoch", "expected_weights"),
        [
            # patience 3: best 0.7 at epoch 2, stop at 5; cut after epoch 3.
            (SEQUENCES["falls_then_rises"], 5, 2.0),
            (SEQUENCES["noisy"], 9, 6.0),
        ],
    )
    def test_a_state_put_back_stops_where_the_whole_run_does(
        self, values, expected_stop_epoch, expected_weights
    ):
        def make():
            return EarlyStopping(patience=3, restore_best_weights=True)

        whole = make()
        _, whole_weights = _drive(whole, values)
        resumed, weights = _resume(values, 4, make)
        assert whole.stopped_epoch == resumed.stopped_epoch == expected_stop_epoch
        assert whole_weights == weights == expected_weights
        assert resumed.best_epoch == whole.best_epoch
        assert str(resumed.stopping_reason) == str(whole.stopping_reason)

    def test_keras_own_forgets_its_patience_on_a_fresh_start(self):
        values = SEQUENCES["falls_then_rises"]
        keras_callback = keras.callbacks.EarlyStopping(patience=3)
        _drive(keras_callback, values[:4])
        fresh = keras.callbacks.EarlyStopping(patience=3)
        assert _drive(fresh, values[4:])[0] == 4  # 4 more epochs, not 2

    def test_several_metrics_and_time_come_back(self):
        def make():
            return EarlyStopping(
                monitor=["val_loss", "val_accuracy"], mode=["min", "max"],
                patience=2,
            )  # fmt: skip

        extra = {"val_accuracy": ACCURACIES}
        resumed, _ = _resume(LOSSES, 3, make, extra)
        assert resumed.stopped_epoch == 4
        assert resumed.get_state()["elapsed"] > 0

    def test_a_state_of_other_metrics_is_refused(self):
        state = EarlyStopping(monitor="val_loss").get_state()
        with pytest.raises(ValueError, match="Invalid value for argument `state`"):
            EarlyStopping(monitor="loss").set_state(state)


class TestValidationFreq:
    def _drive_every_other(self, callback, validated):
        """Epochs 0, 2, ... log only `loss` (not validated), as `fit` does."""
        values = [v for value in validated for v in (None, value)]
        model = _tiny_model()
        callback.set_model(model)
        model.stop_training = False
        callback.on_train_begin()
        for epoch, value in enumerate(values):
            logs = {"loss": 0.5} if value is None else {"loss": 0.5, "val_loss": value}
            callback.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback.on_train_end()
        return epoch

    @pytest.mark.parametrize(
        ("validated", "expected_stop_epoch"),
        [
            ([1.0, 1.1, 1.2], 5),  # the 3rd validated epoch: wait 2
            ([1.0, 0.9, 1.0, 0.95, 1.1], 7),  # wait 2 at the 4th validated
        ],
    )
    def test_patience_counts_validated_epochs_silently(
        self, validated, expected_stop_epoch
    ):
        callback = EarlyStopping(patience=2)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # no "not available"
            self._drive_every_other(callback, validated)
        assert callback.stopped_epoch == expected_stop_epoch

    def test_a_fit_that_never_validates_still_warns(self):
        callback = EarlyStopping(patience=2)
        model = _tiny_model()
        callback.set_model(model)
        callback.on_train_begin()
        with pytest.warns(UserWarning, match="`val_loss` which is not available"):
            for epoch in range(3):
                callback.on_epoch_end(epoch, {"loss": 0.5})  # no `val_` key
            callback.on_train_end()

    def test_a_real_fit_stops_at_a_validated_epoch(self, digits):
        x, y = digits
        keras.utils.set_random_seed(0)
        model = _digits_model(units=32, learning_rate=0.05)
        callback = EarlyStopping(patience=1)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            history = model.fit(
                x[:200], y[:200], validation_data=(x[1000:1300], y[1000:1300]),
                validation_freq=2, epochs=40, batch_size=200, verbose=0,
                callbacks=[callback],
            )  # fmt: skip
        validated = history.history["val_loss"]
        assert callback.stopped_epoch % 2 == 1  # epochs 1, 3, ... are validated
        assert len(validated) == (callback.stopped_epoch + 1) // 2
        assert validated[-1] >= validated[-2]  # patience 1: the last did not improve


class _Interrupt(keras.callbacks.Callback):
    """Raises at the start of an epoch, as Keras' own BackupAndRestore tests do."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("Interrupting!")


def _backup_fit(digits, make, backup_dir, interrupt_at=None):
    """Trains on digits with BackupAndRestore; interrupted and resumed if asked.

    Returns the stopper of the (last) fit and the model's first kernel."""
    x, y = digits
    keras.utils.set_random_seed(0)
    model = _digits_model(units=32, learning_rate=0.05)

    def fit(callbacks):
        model.fit(
            x[:300], y[:300], validation_data=(x[1000:1300], y[1000:1300]),
            epochs=100, batch_size=300, shuffle=False, verbose=0, callbacks=callbacks,
        )  # fmt: skip

    stopper = make()
    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    if interrupt_at is not None:
        with pytest.raises(RuntimeError, match="Interrupting!"):
            fit([backup, stopper, _Interrupt(interrupt_at)])
        stopper = make()  # a new process: nothing of the old callback is left
    fit([stopper, keras.callbacks.BackupAndRestore(str(backup_dir))])
    return stopper, keras.ops.convert_to_numpy(model.weights[0])


class TestBackupAndRestore:
    def test_a_resumed_run_stops_like_an_uninterrupted_one(self, digits, tmp_path):
        def make():
            return EarlyStopping(patience=3, restore_best_weights=True)

        whole, whole_kernel = _backup_fit(digits, make, tmp_path / "whole")
        stop = whole.stopped_epoch
        assert 0 < whole.best_epoch < stop - 1  # the cut falls inside patience
        resumed, kernel = _backup_fit(digits, make, tmp_path / "cut", stop - 1)
        assert resumed.stopped_epoch == stop
        assert resumed.best_epoch == whole.best_epoch
        assert str(resumed.stopping_reason) == str(whole.stopping_reason)
        np.testing.assert_allclose(kernel, whole_kernel, rtol=1e-5, atol=1e-6)
        assert not (tmp_path / "cut").exists()  # Keras removed ours with its own

    @pytest.mark.any_backend  # Keras' own callback: shown once, not per backend
    def test_keras_own_early_stopping_does_not(self, digits, tmp_path):
        def make():
            return keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)

        whole, _ = _backup_fit(digits, make, tmp_path / "whole")
        stop = whole.stopped_epoch
        resumed, _ = _backup_fit(digits, make, tmp_path / "cut", stop - 1)
        assert resumed.stopped_epoch != stop  # it forgot its patience
