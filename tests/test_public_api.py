"""The public surface, lazy imports, and which backend a test run uses."""

from __future__ import annotations

import os

import pytest

import keras_bettermodels
from tests._imports import heavy_modules_after


@pytest.mark.backend_independent
def test_public_surface():
    assert keras_bettermodels.__version__ == "0.1.0.dev0"
    assert set(keras_bettermodels.__all__) >= {
        "EarlyStopping",
        "GL",
        "PQ",
        "UP",
        "Patience",
        "callbacks",
        "criteria",
        "diagnose",
    }
    from keras_bettermodels import callbacks, criteria

    assert set(callbacks.__all__) >= {
        "CacheTimingCallback",
        "EarlyStopping",
        "StoppingReason",
    }
    from keras_bettermodels import layers, pruning, timing, tuners

    assert "UpdatePruningMasks" in callbacks.__all__
    assert layers.__all__ == ["PruneLowMagnitude"]
    assert set(pruning.__all__) >= {
        "ConstantSparsity",
        "PolynomialDecay",
        "PruningSchedule",
        "prune_low_magnitude",
        "strip_pruning",
        "sparsity_report",
        # and the rest of tfmot.sparsity.keras
        "PrunableLayer",
        "PruneForLatencyOnXNNPack",
        "PruningPolicy",
        "PruningSummaries",
        "UpdatePruningStep",
        "prune_scope",
    }
    assert set(pruning.TFMOT_NAMES) <= set(pruning.__all__)
    assert tuners.__all__ == [
        "BayesianOptimization",
        "GridSearch",
        "Hyperband",
        "RandomSearch",
        "ResultsTable",
        "RetrainInfo",
        "RetrainOnFullData",
        "one_standard_error",
    ]
    for name in ("RandomSearch", "Hyperband", "BayesianOptimization", "GridSearch"):
        assert name in keras_bettermodels.__all__
        assert getattr(keras_bettermodels, name) is getattr(tuners, name)
    assert keras_bettermodels.RetrainOnFullData is tuners.RetrainOnFullData

    assert {
        "measure_pipeline",
        "compare_cache",
        "TimingReport",
        "inspect_pipeline",
    } <= set(timing.__all__)
    for name in (
        "GL",
        "PQ",
        "UP",
        "Patience",
        "TimeLimit",
        "AnyOf",
        "AllOf",
        "get",
        "measures",
    ):
        assert name in criteria.__all__
    from keras_bettermodels import gradient_check, precision

    assert {
        "GradientCheckCallback",
        "GradientCheckError",
        "MixedPrecisionGuard",
    } <= set(callbacks.__all__)
    assert {
        "check_gradients",
        "GradientCheckReport",
        "VariableCheck",
        "ModelNotRebuildableError",
    } <= set(gradient_check.__all__)
    assert set(precision.__all__) == {
        "CODES",
        "LEVELS",
        "Finding",
        "PrecisionComparison",
        "audit",
        "compare_precision",
        "float32_outputs",
    }
    assert keras_bettermodels.check_gradients is gradient_check.check_gradients
    assert keras_bettermodels.MixedPrecisionGuard is callbacks.MixedPrecisionGuard
    assert keras_bettermodels.EarlyStopping is callbacks.EarlyStopping
    assert keras_bettermodels.GL is criteria.GL


@pytest.mark.backend_independent
def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        keras_bettermodels.Nope  # noqa: B018


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "module",
    [
        "keras_bettermodels",
        "keras_bettermodels.tensorboard",
        "keras_bettermodels.criteria",
        "keras_bettermodels.timing",
        "keras_bettermodels.gradient_check",
        "keras_bettermodels.precision",
    ],
)
def test_importing_light_modules_loads_no_backend(module):
    """TensorBoard imports our plugins; that must not pull in Keras or a backend."""
    assert heavy_modules_after(f"import {module}") == []


def test_the_suite_runs_on_the_backend_it_was_given():
    import keras

    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")
