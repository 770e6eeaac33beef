"""ConstantSparsity, PolynomialDecay: TF-MOT's semantics, checks, serialization."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from keras import ops

from keras_bettermodels.pruning.schedules import (
    ConstantSparsity,
    PolynomialDecay,
    PruningSchedule,
)


@pytest.mark.parametrize(
    ("step", "prunes"),
    [
        (0, False),
        (9, False),
        (10, True),
        (15, False),
        (20, True),
        (50, True),
        (55, False),
        (60, False),
        (1000, False),
    ],
)
def test_constant_sparsity_updates_every_frequency_steps_within_its_range(step, prunes):
    schedule = ConstantSparsity(0.75, begin_step=10, end_step=50, frequency=10)
    assert schedule.prunes_at(step) is prunes
    assert schedule.sparsity_at(step) == pytest.approx(0.75)


def test_constant_sparsity_with_end_step_minus_one_prunes_forever():
    schedule = ConstantSparsity(0.5, begin_step=0, frequency=100)
    assert schedule.end_step == -1
    assert [schedule.prunes_at(s) for s in (0, 100, 10**6, 10**6 + 1)] == [
        True,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.2),
        (-5, 0.2),  # before begin_step: the initial sparsity
        (50, 0.8 + (0.2 - 0.8) * 0.5**3),
        (25, 0.8 + (0.2 - 0.8) * 0.75**3),
        (100, 0.8),
        (500, 0.8),  # after end_step: the final sparsity
    ],
)
def test_polynomial_decay_follows_zhu_and_gupta(step, expected):
    schedule = PolynomialDecay(0.2, 0.8, begin_step=0, end_step=100, frequency=10)
    assert schedule.sparsity_at(step) == pytest.approx(expected, abs=1e-6)


def test_polynomial_decay_power_one_is_linear():
    schedule = PolynomialDecay(0.0, 0.5, begin_step=100, end_step=200, power=1)
    assert schedule.sparsity_at(150) == pytest.approx(0.25)


def test_polynomial_decay_updates_from_begin_to_end_step_inclusive():
    schedule = PolynomialDecay(0.0, 0.8, begin_step=10, end_step=30, frequency=10)
    updates = [s for s in range(60) if schedule.prunes_at(s)]
    assert updates == [10, 20, 30]


def test_schedules_accept_an_integer_tensor_step():
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, frequency=10)
    should_prune, sparsity = schedule(ops.convert_to_tensor(50, "int32"))
    assert bool(ops.convert_to_numpy(should_prune))
    assert float(ops.convert_to_numpy(sparsity)) == pytest.approx(0.7)
    assert keras.backend.standardize_dtype(sparsity.dtype) == "float32"


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: ConstantSparsity(1.0, 0),
            ValueError,
            r"Invalid value for argument `target_sparsity`\. Expected a number in "
            r"\[0, 1\)\. Received: target_sparsity=1\.0",
        ),
        (lambda: ConstantSparsity(-0.1, 0), ValueError, "target_sparsity=-0.1"),
        (
            lambda: ConstantSparsity("0.5", 0),
            TypeError,
            "Invalid type for argument `target_sparsity`",
        ),
        (
            lambda: ConstantSparsity(0.5, -1),
            ValueError,
            r"`begin_step`\. Expected a non-negative integer\. Received: begin_step=-1",
        ),
        (
            lambda: ConstantSparsity(0.5, 10, end_step=5),
            ValueError,
            r"`end_step`\. Expected -1 \(prune forever\) or an integer >= "
            r"begin_step=10\. Received: end_step=5",
        ),
        (
            lambda: ConstantSparsity(0.5, 0, frequency=0),
            ValueError,
            r"`frequency`\. Expected a positive integer\. Received: frequency=0",
        ),
        (
            lambda: ConstantSparsity(0.5, 0, end_step=1.5),
            TypeError,
            "Invalid type for argument `end_step`",
        ),
        (
            lambda: PolynomialDecay(0.0, 1.0, 0, 100),
            ValueError,
            "Received: final_sparsity=1.0",
        ),
        (
            lambda: PolynomialDecay(0.5, 0.2, 0, 100),
            ValueError,
            r"`final_sparsity`\. Expected a number >= initial_sparsity=0\.5\. "
            r"Received: final_sparsity=0\.2",
        ),
        (
            lambda: PolynomialDecay(0.0, 0.5, 100, 100),
            ValueError,
            r"`end_step`\. Expected an integer > begin_step=100\. "
            r"Received: end_step=100",
        ),
        (lambda: PolynomialDecay(0.0, 0.5, 100, 50), ValueError, "end_step=50"),
        (lambda: PolynomialDecay(0.0, 0.5, 0, -1), ValueError, "end_step=-1"),
        (
            lambda: PolynomialDecay(0.0, 0.5, 0, 100, power=0),
            ValueError,
            r"`power`\. Expected a positive number",
        ),
    ],
)
def test_bad_arguments_are_refused_in_keras_wording(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_polynomial_decay_warns_when_end_step_is_off_the_grid_and_it_matters():
    # Last update at step 100, where the curve still climbs: 77.0 % of 80 %.
    with pytest.warns(
        UserWarning, match=r"last updated at step 100, to sparsity 0\.770"
    ):
        PolynomialDecay(0.0, 0.8, begin_step=0, end_step=150, frequency=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PolynomialDecay(0.0, 0.8, begin_step=5, end_step=95, frequency=10)
        # Off the grid, but 5 steps short of a flat end: 0.01 points short.
        PolynomialDecay(0.0, 0.8, begin_step=0, end_step=95, frequency=10)


def test_tfmot_s_own_example_schedule_gives_no_warning():
    """The "pruning with Keras" example: 2 epochs of ceil(54000 / 128) steps."""
    end_step = np.ceil(60000 * (1 - 0.1) / 128).astype(np.int32) * 2  # 844
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schedule = PolynomialDecay(
            initial_sparsity=0.50, final_sparsity=0.80, begin_step=0, end_step=end_step
        )
    assert schedule.end_step == 844 and isinstance(schedule.end_step, int)
    assert schedule.sparsity_at(800) == pytest.approx(0.8, abs=1e-4)


@pytest.mark.parametrize(
    "schedule",
    [
        ConstantSparsity(0.6, begin_step=5, end_step=50, frequency=5),
        PolynomialDecay(0.1, 0.9, begin_step=0, end_step=40, power=2, frequency=4),
    ],
    ids=repr,
)
def test_schedules_round_trip_through_config_and_keras_serialization(schedule):
    assert type(schedule).from_config(schedule.get_config()) == schedule
    config = keras.saving.serialize_keras_object(schedule)
    assert config["registered_name"].startswith("keras_bettermodels>")
    restored = keras.saving.deserialize_keras_object(config)
    assert restored == schedule
    steps = np.arange(0, 60)
    assert [restored.sparsity_at(s) for s in steps] == [
        schedule.sparsity_at(s) for s in steps
    ]


def test_repr_names_every_argument():
    assert repr(ConstantSparsity(0.5, 0)) == (
        "ConstantSparsity(target_sparsity=0.5, begin_step=0, end_step=-1, "
        "frequency=100)"
    )


def test_a_custom_schedule_only_needs_call_and_get_config():
    class Steps(PruningSchedule):
        def __call__(self, step):
            sparsity = ops.where(ops.greater_equal(step, 10), 0.8, 0.5)
            return self._should_prune(step, 0, 20, 5), ops.cast(sparsity, "float32")

        def get_config(self):
            return {}

    schedule = Steps()
    assert schedule.sparsity_at(3) == pytest.approx(0.5)
    assert schedule.sparsity_at(12) == pytest.approx(0.8)
    assert [s for s in range(30) if schedule.prunes_at(s)] == [0, 5, 10, 15, 20]


@pytest.mark.parametrize(
    "schedule",
    [
        ConstantSparsity(0.6, begin_step=5, end_step=50, frequency=5),
        PolynomialDecay(0.1, 0.9, begin_step=0, end_step=40, power=2, frequency=4),
    ],
    ids=repr,
)
def test_the_host_table_agrees_with_the_schedule(schedule):
    """PyTorch reads the schedule from a table computed once on the CPU."""
    for step in (0, 3, 4, 5, 39, 40, 41, 4095, 4096, 9000, 2):
        prunes, sparsity = schedule._on_host(step)
        assert prunes is schedule.prunes_at(step), step
        assert sparsity == pytest.approx(schedule.sparsity_at(step)), step


def test_a_schedule_that_is_not_element_wise_is_read_step_by_step():
    class Branching(PruningSchedule):
        def __call__(self, step):
            sparsity = ops.cond(ops.greater_equal(step, 10), lambda: 0.8, lambda: 0.4)
            return ops.equal(ops.mod(step, 5), 0), ops.cast(sparsity, "float32")

        def get_config(self):
            return {}

    schedule = Branching()
    assert schedule._on_host(3) == (False, pytest.approx(0.4))
    assert schedule._on_host(15) == (True, pytest.approx(0.8))


def test_falling_back_to_one_step_at_a_time_is_logged(caplog):
    class Branching(PruningSchedule):
        def __call__(self, step):
            sparsity = ops.cond(ops.greater_equal(step, 10), lambda: 0.8, lambda: 0.4)
            return ops.equal(ops.mod(step, 5), 0), ops.cast(sparsity, "float32")

        def get_config(self):
            return {}

    with caplog.at_level("DEBUG", logger="keras_bettermodels.pruning.schedules"):
        assert Branching()._on_host(15) == (True, pytest.approx(0.8))
    assert "Branching() does not work on a vector of steps" in caplog.text
    assert "one step at a time" in caplog.text


def test_a_broken_schedule_still_raises_its_own_error():
    class Broken(PruningSchedule):
        def __call__(self, step):
            raise ZeroDivisionError("planted")

        def get_config(self):
            return {}

    with pytest.raises(ZeroDivisionError, match="planted"):
        Broken()._on_host(0)
