"""CacheTimingCallback on the zoo: nothing cached, so the speedup reads about 1.

Each zoo model fits 4 epochs on NumPy arrays with `validation_split=0.25`:
the input everyone starts with, where nothing is cached from one epoch to the
next. The first epoch, less its compilation, is a steady one, so the speedup
must read between 0.5 and 2 on every backend, and validation (a third of the
steps, forward only) must take less time than training. The callback waits
for the device where training gives way to validation (issue 24); these
models' steps are so small that the host, not the device, sets the pace, so
the wait has little to catch up on here: the planted device work in
`tests/callbacks/test_cache_timing.py` is what shows the wait matters. Here
every kind of model must read about 1 with it.

The zoo's 64 samples are repeated `REPEAT` times, so that an epoch takes
about half a second or more: the first epoch's stalls beyond compilation (tens
of milliseconds on JAX, measured) and a busy machine's stay small beside it.
A step of these tiny models takes under a millisecond on JAX, 1-2 ms on
TensorFlow and 2-40 ms on PyTorch with one thread (its LSTM steps through time
in Python), hence more repeats on JAX and fewer on PyTorch.

A busy machine (a load of 5-8 on 2 cores while these tests were written)
stretches any one epoch, up to twofold: 4 epochs leave three to take the
steady median of (one flagged as compiled again still leaves two), and a
speedup out of the band is measured once more, on the same compiled model,
before the test fails: a stretched epoch does not come twice, while an error
in what the callback books where would.

Compilation makes up most of a fit (4-17 s per model on JAX on a busy 2-core
machine), so `make test` times two models of different kinds (a convnet,
several inputs and outputs); the rest of the zoo (the recurrent net and the
transformer block among them) runs with `-m slow`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks import CacheTimingCallback
from keras_bettermodels.timing import TimingReport

# PyTorch's spinning intra-op threads make milliseconds-long steps erratic on a
# busy 2-core machine: the same one-thread fixture as the callback's tests.
from tests.callbacks.test_cache_timing import _one_torch_thread  # noqa: F401
from tests.zoo.models import ZOO

BATCH_SIZE = 8
# JAX: 8192 samples, 768 training and 256 validation steps an epoch.
REPEAT = {"jax": 128, "tensorflow": 32, "torch": 16}[keras.backend.backend()]
EPOCHS = 4  # see the module docstring
#: Timed in `make test`; the others are marked slow.
KINDS = ("convnet", "multi_input_output")


def _repeat(data: Any) -> Any:
    return keras.tree.map_structure(
        lambda array: np.concatenate([array] * REPEAT), data
    )


def _fit(case: Any) -> TimingReport:
    timer = CacheTimingCallback(batch_size=BATCH_SIZE, verbose=0)
    case.model.fit(
        _repeat(case.x),
        _repeat(case.y),
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        validation_split=0.25,
        verbose=0,
        callbacks=[timer],
    )
    return timer.report()


@pytest.mark.parametrize(
    "name",
    [
        name if name in KINDS else pytest.param(name, marks=pytest.mark.slow)
        for name in sorted(ZOO)
    ],
)
def test_uncached_arrays_read_about_1(name):
    case = ZOO[name]()
    report = _fit(case)
    assert len(report.epochs) == EPOCHS
    assert all(epoch.time > 0 for epoch in report.epochs), str(report)
    for epoch in report.epochs[1:]:  # the first compiles the validation step
        # A third of training's steps, forward only: far less than training.
        assert 0 < epoch.validation_time < epoch.time, str(report)
    if not 0.5 < report.speedup < 2:
        # One more fit of the same model, compiled already: a busy machine's
        # stretched epoch does not come twice (see the module docstring).
        report = _fit(case)
    assert 0.5 < report.speedup < 2, str(report)
