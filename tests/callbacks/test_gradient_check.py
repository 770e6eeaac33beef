"""GradientCheckCallback in real fits: when it checks, what a failure does, its logs."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks.gradient_check import (
    GradientCheckCallback,
    GradientCheckError,
)
from keras_bettermodels.gradient_check.report import GradientCheckReport
from tests.gradient_check import planted


def _mlp(units=16):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(units, activation="tanh"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


# Fits are the costly part of these tests (a compiled train function per
# model, a float64 copy per model): most tests share one model of each kind.


@pytest.fixture(scope="module")
def mlp():
    keras.utils.set_random_seed(0)
    return _mlp()


@pytest.fixture(scope="module")
def buggy():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            planted.ScaledKernelDense(8, activation="tanh", name="scaled"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_checks_at_the_start_and_every_n_epochs(digits, mlp, capsys):
    x, y = digits
    model = mlp
    check = GradientCheckCallback(x[:16], y[:16], every_n_epochs=2, seed=0)
    model.fit(x[:64], y[:64], epochs=4, batch_size=32, verbose=0, callbacks=[check])
    assert check.steps == [0, 2, 4]
    assert len(check.reports) == 3
    assert all(isinstance(r, GradientCheckReport) and r.passed for r in check.reports)
    # The weights moved between the checks, and each check saw them.
    assert len({r.loss for r in check.reports}) == 3
    out = capsys.readouterr().out
    assert "Gradient check at the start of training: relative error" in out
    assert "Gradient check after epoch 4" in out
    # The log line's number is the one whose band is the verdict, and says whose.
    first = check.reports[0]
    assert (
        f"relative error {first.relative_error:.2e} ({first.verdict}, "
        f"set by {first.set_by})" in out
    )


def test_fit_trains_the_same_with_and_without_the_callback(digits):
    x, y = digits

    def train(callbacks):
        keras.utils.set_random_seed(1)
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(16, activation="tanh"),
                keras.layers.Dropout(0.2),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(
            x[:64],
            y[:64],
            epochs=2,
            batch_size=32,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )
        return model.get_weights()

    plain = train([])
    checked = train(
        [GradientCheckCallback(x[:16], y[:16], every_n_epochs=1, verbose=0)]
    )
    for a, b in zip(plain, checked, strict=True):
        np.testing.assert_array_equal(a, b)


def test_verbose_0_prints_nothing(digits, mlp, capsys):
    x, y = digits
    model = mlp
    check = GradientCheckCallback(x[:8], y[:8], verbose=0)
    model.fit(x[:32], y[:32], epochs=1, verbose=0, callbacks=[check])
    assert capsys.readouterr().out == ""
    assert len(check.reports) == 1


def test_a_failure_warns_with_the_table_by_default(digits, buggy):
    x, y = digits
    model = buggy
    check = GradientCheckCallback(x[:16], y[:16], verbose=0, seed=0)
    with pytest.warns(UserWarning, match=r"(?s)failed.*scaled/kernel.*probably a bug"):
        history = model.fit(x[:32], y[:32], epochs=2, verbose=0, callbacks=[check])
    assert len(history.history["loss"]) == 2
    assert check.reports[0].verdict == "bug"


def test_on_failure_raise_raises_with_the_report(digits, buggy):
    x, y = digits
    model = buggy
    check = GradientCheckCallback(x[:16], y[:16], on_failure="raise", verbose=0)
    with pytest.raises(GradientCheckError, match="scaled/kernel") as caught:
        model.fit(x[:32], y[:32], epochs=2, verbose=0, callbacks=[check])
    assert caught.value.report is check.reports[0]
    assert not caught.value.report.passed


def test_on_failure_stop_stops_training(digits, buggy):
    x, y = digits
    model = buggy
    check = GradientCheckCallback(x[:16], y[:16], on_failure="stop", verbose=0)
    with pytest.warns(UserWarning, match="failed"):
        history = model.fit(
            x[:64], y[:64], epochs=5, batch_size=16, verbose=0, callbacks=[check]
        )
    assert len(history.history["loss"]) == 1  # Keras stops after the first batch


def test_log_dir_writes_the_report_for_the_gradient_check_tab(digits, mlp, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    from keras_bettermodels.tensorboard import metadata, summary

    x, y = digits
    model = mlp
    check = GradientCheckCallback(
        x[:8], y[:8], every_n_epochs=1, verbose=0, log_dir=str(tmp_path)
    )
    model.fit(x[:32], y[:32], epochs=2, verbose=0, callbacks=[check])
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0}).Reload()
    written = events.Tensors("gradient_check/report")
    assert [e.step for e in written] == [0, 1, 2]
    for event, report in zip(written, check.reports, strict=True):
        assert summary.read_json(event.tensor_proto) == json.loads(
            json.dumps(report.to_dict())
        )
    plugin = events.SummaryMetadata("gradient_check/report").plugin_data
    assert plugin.plugin_name == metadata.GRADIENT_CHECK_PLUGIN
    assert metadata.parse_plugin_content(plugin.content) == {"version": 1}
    errors = events.Tensors("gradient_check/relative_error")
    assert [e.tensor_proto.float_val[0] for e in errors] == pytest.approx(
        [r.relative_error for r in check.reports], rel=1e-6
    )


def test_one_instance_can_be_reused_across_fits(digits, mlp):
    x, y = digits
    model = mlp
    check = GradientCheckCallback(x[:8], y[:8], every_n_epochs=1, verbose=0)
    model.fit(x[:32], y[:32], epochs=2, verbose=0, callbacks=[check])
    model.fit(x[:32], y[:32], epochs=1, verbose=0, callbacks=[check])
    assert check.steps == [0, 1]


def test_check_kwargs_reach_check_gradients(digits, mlp):
    x, y = digits
    model = mlp
    check = GradientCheckCallback(
        x[:8],
        y[:8],
        method="coordinate",
        max_coordinates_per_variable=5,
        epsilon=1e-5,
        verbose=0,
    )
    model.fit(x[:32], y[:32], epochs=1, verbose=0, callbacks=[check])
    report = check.reports[0]
    assert report.method == "coordinate" and report.epsilon == 1e-5
    assert [v.checked for v in report.variables] == [5, 5, 5, 5]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"on_failure": "ignore"}, ValueError, "Received: on_failure='ignore'"),
        ({"every_n_epochs": 0}, ValueError, "Received: every_n_epochs=0"),
        ({"every_n_epochs": 1.5}, TypeError, "Received: every_n_epochs=1.5"),
        ({"method": "random"}, ValueError, "Received: method='random'"),
        ({"verbose": -1}, ValueError, "Received: verbose=-1"),
        ({"log_dir": 3}, TypeError, "Received: log_dir=3"),
        ({"epochs": 3}, TypeError, r"passed to GradientCheckCallback: `epochs`"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        GradientCheckCallback(np.zeros((2, 64)), np.zeros(2), **kwargs)


def test_keeps_every_argument():
    x = np.zeros((2, 64))
    check = GradientCheckCallback(
        x, None, every_n_epochs=3, on_failure="stop", verbose=0, seed=4
    )
    assert check.x is x and check.y is None
    assert (check.every_n_epochs, check.on_failure, check.method) == (
        3,
        "stop",
        "directional",
    )
    assert check.check_kwargs == {"seed": 4}
