"""EpochClock: the epoch split, driven by a scripted clock."""

from __future__ import annotations

import pytest

from keras_bettermodels.timing._clock import EpochClock

pytestmark = pytest.mark.backend_independent


class ScriptedClock:
    """Returns the next scripted reading at each call."""

    def __init__(self, readings):
        self.readings = list(readings)

    def __call__(self):
        return self.readings.pop(0)


def test_an_epoch_with_validation_keeps_validation_apart():
    #        begin step0 step1 step2 test_begin test_end end
    clock = EpochClock(ScriptedClock([10.0, 10.1, 12.0, 12.5, 13.0, 14.5, 14.6]))
    clock.epoch_begin(0)
    for step in range(3):
        clock.step_begin(step)
    clock.test_begin()
    clock.test_end()
    timing = clock.epoch_end(batch_size=8)
    assert timing.epoch == 0
    assert timing.validation_time == pytest.approx(1.5)
    assert timing.time == pytest.approx(4.6 - 1.5)
    assert timing.steps == 3
    assert timing.samples == 24
    assert timing.time_to_first_step == pytest.approx(0.1)
    assert timing.first_step_time == pytest.approx(2.0)  # to the second step
    assert timing.last_step_time == pytest.approx(0.5)  # to validation


def test_a_one_step_epoch_has_its_first_step_end_at_the_epoch_end():
    clock = EpochClock(ScriptedClock([0.0, 0.2, 1.0]))
    clock.epoch_begin(4)
    clock.step_begin(0)
    timing = clock.epoch_end()
    assert (timing.epoch, timing.steps, timing.samples) == (4, 1, None)
    assert timing.first_step_time == pytest.approx(1.0)
    assert timing.last_step_time == 0.0  # the last step is the first


def test_steps_per_execution_and_the_known_step_count():
    # Keras passes the first step of each execution: 0, 4, 8 for 10 steps.
    clock = EpochClock(ScriptedClock([0.0, 0.1, 0.2, 0.3, 0.4]))
    clock.epoch_begin(0)
    for step in (0, 4, 8):
        clock.step_begin(step)
    assert clock.epoch_end(steps_per_execution=4, steps_limit=10).steps == 10


def test_an_epoch_without_steps():
    clock = EpochClock(ScriptedClock([0.0, 0.3]))
    clock.epoch_begin(0)
    timing = clock.epoch_end()
    assert (timing.steps, timing.first_step_time, timing.time) == (0, 0.3, 0.3)


def test_validation_outside_an_epoch_is_ignored():
    clock = EpochClock(ScriptedClock([0.0, 1.0, 2.0]))
    clock.test_begin()  # model.evaluate(..., callbacks=[timer]) after fit
    clock.test_end()
    assert not clock.in_epoch
    clock.epoch_begin(0)
    assert clock.in_epoch
    assert clock.epoch_end().validation_time == 0.0


def test_epoch_end_without_a_beginning_is_an_error():
    with pytest.raises(RuntimeError, match="before `epoch_begin`"):
        EpochClock().epoch_end()


def test_each_epoch_starts_afresh():
    clock = EpochClock(ScriptedClock([0.0, 0.5, 1.0, 2.0, 2.1, 2.2, 2.3, 3.1]))
    clock.epoch_begin(0)
    clock.step_begin(0)
    clock.step_begin(1)
    clock.epoch_end()
    clock.epoch_begin(1)
    clock.step_begin(0)
    clock.step_begin(1)
    second = clock.epoch_end()
    assert second.first_step_time == pytest.approx(0.2)
    assert second.time == pytest.approx(1.0)


class RecordingWait:
    """A stand-in for the device wait: counts its calls, advances nothing."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


def test_the_wait_books_the_devices_backlog_to_training():
    # begin step0 step1 | test_begin: before, after the wait | test_end:
    # before, after | epoch_end: before, after
    readings = [0.0, 0.1, 0.2, 0.3, 1.3, 1.4, 1.5, 1.6, 1.6]
    wait = RecordingWait()
    clock = EpochClock(ScriptedClock(readings), wait=wait)
    clock.epoch_begin(0)
    clock.step_begin(0)
    clock.step_begin(1)
    assert wait.calls == 0  # never per step
    clock.test_begin()
    clock.test_end()
    timing = clock.epoch_end()
    assert wait.calls == 3  # training to validation, validation's end, epoch end
    # Training ends after the wait: the device ran the steps until 1.3.
    assert timing.time == pytest.approx(1.6 - (1.5 - 1.3))
    assert timing.validation_time == pytest.approx(1.5 - 1.3)
    assert timing.last_step_time == pytest.approx(1.3 - 0.2)
    assert timing.sync_time == pytest.approx(1.0 + 0.1 + 0.0)


def test_no_wait_outside_an_epoch_and_each_epoch_counts_its_own():
    wait = RecordingWait()
    clock = EpochClock(ScriptedClock([0.0, 0.5, 0.7, 1.0, 1.1, 1.4]), wait=wait)
    clock.test_begin()  # model.evaluate(..., callbacks=[timer]) after fit
    clock.test_end()
    assert wait.calls == 0
    clock.epoch_begin(0)
    assert clock.epoch_end().sync_time == pytest.approx(0.2)
    clock.epoch_begin(1)
    assert clock.epoch_end().sync_time == pytest.approx(0.3)
    assert wait.calls == 2
