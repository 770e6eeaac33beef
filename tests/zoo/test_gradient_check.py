"""`check_gradients` on everyday models: Keras' layers pass, planted bugs fail, located.

At Keras' default initialisation the zoo's ReLUs sit exactly on their kinks
(zero biases on black pixels and padding); after a few epochs they do not. A
correct model is "great" or "ok" in both states, with both methods; a wrong
gradient planted in one layer is a "bug" in that layer's variables.
"""

from __future__ import annotations

import keras
import pytest

from keras_bettermodels import check_gradients
from keras_bettermodels.gradient_check import _core
from tests.zoo.models import PLANTED, ZOO

BATCH = 16


def _batch(case, size=BATCH):
    return keras.tree.map_structure(lambda a: a[:size], (case.x, case.y))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_keras_own_layers_pass_at_initialisation_and_after_a_few_epochs(name):
    keras.utils.set_random_seed(0)
    case = ZOO[name]()
    x, y = _batch(case)
    report = check_gradients(case.model, x, y, seed=0, verbose=0)
    assert report.passed, report
    assert _core.verdict(report.relative_error, report.thresholds) == report.verdict
    # The same model (its float64 copy is reused) once its ReLUs have moved.
    case.model.fit(case.x, case.y, epochs=3, batch_size=16, verbose=0)
    report = check_gradients(case.model, x, y, seed=1, verbose=0)
    assert report.passed, report


@pytest.mark.parametrize("seed", range(3))
def test_the_keras_io_convnet_passes_at_initialisation_on_every_seed(seed):
    keras.utils.set_random_seed(seed)
    case = ZOO["convnet"]()
    x, y = _batch(case)
    report = check_gradients(case.model, x, y, seed=seed, verbose=0)
    assert report.passed, report
    # Its zero biases on black pixels put ReLUs on their kinks: said, not hidden.
    assert report.kinks and report.nudge is not None, report


def test_the_coordinate_method_passes_the_convnet_at_initialisation():
    keras.utils.set_random_seed(2)
    case = ZOO["convnet"]()
    x, y = _batch(case)
    report = check_gradients(
        case.model,
        x,
        y,
        method="coordinate",
        max_coordinates_per_variable=8,
        seed=2,
        verbose=0,
    )
    assert report.passed, report


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_a_planted_bug_is_caught_and_located(name):
    keras.utils.set_random_seed(0)
    case = PLANTED[name]()
    x, y = _batch(case)
    report = check_gradients(case.model, x, y, seed=0, verbose=0)
    assert report.verdict == "bug", report
    failed = [v.name for v in report.failed_variables]
    assert failed and all(n.split("/")[-2] == case.planted for n in failed), report
    assert report.set_by in [*failed, "(all variables)"], report
