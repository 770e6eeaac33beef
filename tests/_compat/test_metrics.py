"""The metrics seam: compiled metrics, a metric's direction, `compile`'s resolution.

Checked against Keras 3.15.1. A failure here means Keras moved
`CompileMetrics.metrics`, `Metric._direction` or `compile_utils.get_metric`,
which `keras_bettermodels.pruning.sensitivity` relies on.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels._compat.metrics import (
    compiled_metrics,
    metric_direction,
    resolve_metric,
)

pytestmark = pytest.mark.any_backend


def test_compiled_metrics_are_listed_in_compile_order_once_built():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseTopKCategoricalAccuracy(2, name="top2"), "acc"],
    )
    assert compiled_metrics(model) == []  # built by the first batch
    x, y = np.zeros((4, 4), "float32"), np.zeros(4, "int32")
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    names = [metric.name for metric in compiled_metrics(model)]
    assert names == ["top2", "acc"]
    assert set(names) <= set(logs)


def test_metric_direction_reads_keras_own():
    assert metric_direction(keras.metrics.Accuracy()) == "up"
    assert metric_direction(keras.metrics.MeanSquaredError()) == "down"
    assert metric_direction(keras.metrics.MeanMetricWrapper(lambda t, p: p)) is None
    assert metric_direction(object()) is None


def test_resolve_metric_picks_the_accuracy_compile_would():
    labels, logits = np.zeros(4, "int32"), np.zeros((4, 3), "float32")
    metric = resolve_metric("accuracy", labels, logits)
    assert isinstance(metric, keras.metrics.SparseCategoricalAccuracy)
    assert metric.name == "accuracy"
    binary = resolve_metric("acc", np.zeros((4, 1)), np.zeros((4, 1)))
    assert isinstance(binary, keras.metrics.BinaryAccuracy)
    assert isinstance(resolve_metric("mae", labels, logits), keras.metrics.Metric)
    with pytest.raises(ValueError):
        resolve_metric("no_such_metric", labels, logits)
