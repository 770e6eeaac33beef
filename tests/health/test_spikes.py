"""Each step's loss from Keras' running mean, and the spike window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_bettermodels.health.spikes import BatchLosses, SpikeDetector

pytestmark = pytest.mark.backend_independent


def _running_means(losses):
    return [sum(losses[: i + 1]) / (i + 1) for i in range(len(losses))]


def test_batch_losses_are_read_back_from_the_running_mean():
    losses = [2.0, 1.5, 1.2, 12.0, 1.1]
    reader = BatchLosses()
    read = [reader.read(i, m) for i, m in enumerate(_running_means(losses))]
    assert read == pytest.approx(losses)


def test_logs_every_k_steps_read_the_mean_in_between():
    means = _running_means([1.0, 3.0, 2.0, 4.0])
    reader = BatchLosses()
    assert reader.read(1, means[1]) == pytest.approx(2.0)
    assert reader.read(3, means[3]) == pytest.approx(3.0)


def test_a_new_epoch_starts_afresh():
    reader = BatchLosses()
    reader.read(0, 5.0)
    reader.reset()
    assert reader.read(0, 1.0) == 1.0
    assert reader.read(1, None) is None


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ([1.0] * 10 + [10.0], [10]),
        ([1.0] * 9 + [10.0], []),  # the window is not full yet
        ([1.0] * 10 + [math.nan, 10.0, 1.0, 10.0], [11, 13]),  # NaN is not a spike
    ],
)
def test_spikes_over_the_window(losses, expected):
    detector = SpikeDetector(factor=3.0, window=10)
    assert [i for i, loss in enumerate(losses) if detector.record(loss)] == expected


def test_decreasing_loss_makes_no_spike():
    detector = SpikeDetector()
    assert not any(detector.record(10.0 / (1 + i)) for i in range(100))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="`window`"):
        SpikeDetector(window=0)


def test_a_rise_near_zero_loss_is_not_a_spike():
    detector = SpikeDetector()
    losses = [2.3] + [0.001] * 10 + [0.004]
    assert not any(detector.record(loss) for loss in losses)


def _heavy_tailed(samples, seed):
    """A converged model's batch losses: lognormal, one in 100 ~10× the median."""
    return list(np.exp(np.random.default_rng(seed).normal(size=samples)) * 1e-3)


def test_a_converged_models_heavy_tailed_losses_make_no_spike_but_a_jump_does():
    # The old rule (3× the window's mean, 4 sigmas, 10 % of the first loss)
    # flagged 1 step in 10 to 15 of these.
    first = SpikeDetector()
    assert not any(first.record(loss) for loss in _heavy_tailed(300, 0))
    again = SpikeDetector(history=first.history)  # the same model fitted again
    losses = _heavy_tailed(300, 1)
    assert not any(again.record(loss) for loss in losses)
    assert again.record(10 * max(losses)) is not None
