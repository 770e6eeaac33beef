"""Keras' metric internals: a model's compiled metrics, a metric's direction.

Checked against Keras 3.15.1 (JAX, TensorFlow and PyTorch backends).
`tests/_compat/test_metrics.py` fails loudly when one of them moves.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compiled_metrics", "metric_direction", "resolve_metric"]


def compiled_metrics(model: Any) -> list[Any]:
    """The metrics given to `model.compile(metrics=...)`, built, in their order.

    Empty until the model has trained or evaluated once (Keras builds them on
    the first batch) and for a model compiled without metrics. Their names
    are the keys of `model.evaluate(..., return_dict=True)`. Keras 3.15.1:
    `model.metrics` holds a `CompileMetrics` (flat `.metrics` once built) and,
    for some models, `MetricsList`s.
    """
    from keras.src.trainers.compile_utils import CompileMetrics, MetricsList

    found: list[Any] = []
    for metric in getattr(model, "metrics", []):
        if isinstance(metric, CompileMetrics | MetricsList):
            found.extend(m for m in metric.metrics if m is not None)
    return found


def metric_direction(metric: Any) -> str | None:
    """`"up"` if higher values of `metric` are better, `"down"` if lower, or `None`.

    Keras' built-in metrics say so themselves; custom ones and wrapped
    functions usually do not. Keras 3.15.1: `Metric._direction`, read by
    `MonitorCallback._set_monitor_op` for `mode="auto"`.
    """
    direction = getattr(metric, "_direction", None)
    return direction if direction in ("up", "down") else None


def resolve_metric(identifier: Any, y_true: Any, y_pred: Any) -> Any:
    """The `keras.metrics.Metric` that `compile(metrics=[identifier])` would use.

    As `compile` does, `"accuracy"` (or `"acc"`) becomes binary, sparse
    categorical or categorical accuracy from the shapes of `y_true` and
    `y_pred`; other names and functions go through `keras.metrics.get`, and a
    function is wrapped in a `MeanMetricWrapper`. Keras 3.15.1:
    `keras.src.trainers.compile_utils.get_metric`.
    """
    from keras.src.trainers.compile_utils import get_metric

    return get_metric(identifier, y_true, y_pred)
