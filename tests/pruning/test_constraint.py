"""MaskConstraint: pruned weights stay exactly zero through every optimizer step."""

from __future__ import annotations

import keras
import numpy as np

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning import ConstantSparsity, PolynomialDecay
from keras_bettermodels.pruning.wrapper import PruneLowMagnitude
from tests.pruning._helpers import (
    AfterEachStep,
    compile_for_test,
    data,
    fit_one_epoch_in_steps_of_8,
    numpy,
)

EVERY_STEP = ConstantSparsity(0.5, begin_step=0, frequency=1)


def test_pruned_weights_stay_exactly_zero_after_every_adam_step():
    """Adam keeps moving weights whose gradient became zero: its momentum does.

    Pruning starts at step 4, after Adam has built momentum for every weight;
    the optimizer's first moment stays non-zero at pruned positions, yet the
    stored kernel must be exactly zero there after each step.
    """
    keras.utils.set_random_seed(1)
    x, y = data(96)
    schedule = PolynomialDecay(0.3, 0.7, begin_step=4, end_step=8, frequency=2)
    wrapper = PruneLowMagnitude(
        keras.layers.Dense(16, activation="relu"), schedule=schedule
    )
    model = compile_for_test(
        keras.Sequential([keras.Input((8,)), wrapper, keras.layers.Dense(3)]), 0.05
    )

    def probe(model):
        kernel = numpy(wrapper.pruned_weight)
        pruned = numpy(wrapper.pruning_mask) == 0
        momentum = next(
            numpy(v)
            for v in model.optimizer.variables
            if v.shape == kernel.shape and "momentum" in v.path
        )
        return (
            int(pruned.sum()),
            float(np.abs(kernel[pruned]).max()) if pruned.any() else 0.0,
            float(np.abs(momentum[pruned]).max()) if pruned.any() else 0.0,
        )

    recorder = AfterEachStep(probe)
    fit_one_epoch_in_steps_of_8(model, x, y, recorder)

    counts, kernel_max, momentum_max = zip(*recorder.records, strict=True)
    assert counts[:4] == (0, 0, 0, 0)
    assert counts[4] > 0 and counts[-1] > counts[4]
    assert max(kernel_max) == 0.0
    assert all(m > 0 for m in momentum_max[4:])  # Adam would have moved them


def test_an_existing_kernel_constraint_still_applies():
    keras.utils.set_random_seed(3)
    x, y = data()
    dense = keras.layers.Dense(16, kernel_constraint=keras.constraints.NonNeg())
    wrapper = PruneLowMagnitude(dense, schedule=EVERY_STEP)
    model = compile_for_test(
        keras.Sequential([keras.Input((8,)), wrapper, keras.layers.Dense(3)])
    )
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[UpdatePruningMasks()])
    kernel, mask = numpy(dense.kernel), numpy(wrapper.pruning_mask)
    assert kernel.min() >= 0
    assert np.all(kernel[mask == 0] == 0)
    assert dense.get_config()["kernel_constraint"]["class_name"] == "NonNeg"
