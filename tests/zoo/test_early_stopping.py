"""EarlyStopping with Prechelt's criteria on the zoo: it runs, records, restores.

Each zoo model trains a few epochs twice, with `GL(5)` and then with a
combination that reads the training loss (`PQ` on strips of 2 epochs) and
stops at the first rise of the validation loss (`UP(1)` on strips of 1), both
with `restore_best_weights=True` on a quarter of the data held out. Every fit
must record one `criterion_history` entry per epoch, with GL(t) as
`keras_bettermodels.criteria` computes it from the logged validation losses
and the strip measures exactly at strip ends; and whether or not a criterion
stopped it, leave the weights of the best epoch.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from keras_bettermodels import criteria
from keras_bettermodels.callbacks import EarlyStopping
from keras_bettermodels.criteria import GL, PQ, UP
from tests.zoo.models import ZOO

EPOCHS = 4
FIT = {
    "epochs": EPOCHS,
    "batch_size": 16,
    "validation_split": 0.25,
    "shuffle": False,
    "verbose": 0,
}
STRIP = 2


def _stoppers() -> list[EarlyStopping]:
    return [
        EarlyStopping(criterion=GL(5), restore_best_weights=True),
        # UP(1) on strips of 1 epoch stops at the first rise: mid-fit on most
        # of the zoo. PQ's strips of 2 set those of `criterion_history`.
        EarlyStopping(
            criterion=PQ(0.5, strip_length=STRIP) | UP(1, strip_length=1),
            training_monitor="loss",
            restore_best_weights=True,
        ),
    ]


class WeightsAtEpochEnd(keras.callbacks.Callback):
    """Keeps a copy of every weight (moving statistics too) at each epoch end."""

    def on_train_begin(self, logs: Any = None) -> None:
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.weights.append([w.copy() for w in self.model.get_weights()])


def _check_history(stopper: EarlyStopping, val_losses: list[float]) -> None:
    strip = stopper.criterion.strip_length or criteria.DEFAULT_STRIP_LENGTH
    assert [row["epoch"] for row in stopper.criterion_history] == list(
        range(len(val_losses))
    )
    for t, row in enumerate(stopper.criterion_history, start=1):
        assert row["GL"] == pytest.approx(
            criteria.generalization_loss(val_losses[:t]), rel=1e-5, abs=1e-6
        )
        at_strip_end = t % strip == 0
        for measure in ("P_k", "PQ", "UP"):
            assert (row[measure] is not None) == at_strip_end, (t, row)


@pytest.mark.parametrize("name", list(ZOO))
def test_criteria_run_record_every_epoch_and_restore_the_best(name: str) -> None:
    keras.utils.set_random_seed(0)
    case = ZOO[name]()
    for stopper in _stoppers():
        recorder = WeightsAtEpochEnd()
        history = case.model.fit(
            case.x, case.y, callbacks=[stopper, recorder], **FIT
        ).history
        val_losses = [float(v) for v in history["val_loss"]]
        epochs = len(val_losses)
        assert len(history["loss"]) == epochs
        assert len(stopper.criterion_history) == epochs
        _check_history(stopper, val_losses)

        if stopper.stopping_reason is None:
            assert epochs == EPOCHS and stopper.stopped_epoch == 0
        else:
            assert stopper.stopped_epoch == epochs - 1
            assert stopper.stopping_reason.epoch == epochs - 1
            parts = getattr(stopper.criterion, "criteria", (stopper.criterion,))
            assert stopper.stopping_reason.criterion in {repr(c) for c in parts}

        # The best epoch is the first with the lowest validation loss, and its
        # weights are the ones the model is left with.
        assert stopper.best_epoch == int(np.argmin(val_losses))
        best = recorder.weights[stopper.best_epoch]
        restored = case.model.get_weights()
        assert len(restored) == len(best)
        for after, expected in zip(restored, best, strict=True):
            np.testing.assert_array_equal(after, expected)
