"""sensitivity: what each prunable layer, pruned alone, costs the model's metric.

No retraining: the scan says which layers tolerate pruning before a schedule
is chosen (the per-layer sensitivity of Han et al. 2015 and Li et al. 2017).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from keras_bettermodels import _validation
from keras_bettermodels._compat import metrics as _metrics
from keras_bettermodels._compat.layers import flatten_layers
from keras_bettermodels.pruning.prunable_layer import (
    PrunableLayer,
    prunable_names,
    prunable_weight_name,
)
from keras_bettermodels.pruning.wrapper import PruneLowMagnitude

__all__ = ["DEFAULT_SPARSITIES", "SensitivityReport", "sensitivity"]

DEFAULT_SPARSITIES = (0.25, 0.5, 0.7, 0.8, 0.9, 0.95)

_METRIC_EXPECTED = (
    "a metric: the name of one of the model's compiled metrics or of a Keras "
    'metric (such as "accuracy"), a `keras.metrics.Metric`, or a function of '
    "`(y_true, y_pred)`"
)


@dataclasses.dataclass(frozen=True)
class SensitivityReport:
    """The metric of a model with one layer at a time pruned, per sparsity.

    What `sensitivity` returns; `print` it for a table, `plot()` it.

    Attributes:
        metric: the metric's name (a key of `model.evaluate(...,
            return_dict=True)` when the scan evaluated the compiled model).
        mode: `"max"` when higher values of the metric are better, `"min"`
            when lower ones are.
        baseline: the metric of the model as it was, nothing pruned.
        tolerance: how much worse than `baseline` a suggested sparsity may
            leave the metric, in the metric's units.
        sparsities: the sparsities scanned, in increasing order.
        values: layer name -> the metric at each of `sparsities`, with that
            layer alone pruned; layers in the model's order.
        sizes: layer name -> the number of weights pruned in it.
    """

    metric: str
    mode: str
    baseline: float
    tolerance: float
    sparsities: tuple[float, ...]
    values: dict[str, tuple[float, ...]]
    sizes: dict[str, int]

    @property
    def layers(self) -> list[str]:
        """The names of the layers scanned, in the model's order."""
        return list(self.values)

    @property
    def suggested(self) -> dict[str, float]:
        """Layer name -> suggested sparsity at `tolerance` (see `suggest`)."""
        return self.suggest()

    def suggest(self, tolerance: float | None = None) -> dict[str, float]:
        """The highest sparsity each layer keeps the metric within `tolerance` at.

        For each layer: the highest scanned sparsity such that at it and at
        every lower scanned sparsity the metric is at most `tolerance` worse
        than `baseline` (lower for `mode="max"`, higher for `mode="min"`; to
        float32 rounding); `0.0` when even the lowest one is worse. A
        non-finite value (a diverged loss) counts as worse.

        Args:
            tolerance: the largest loss of metric allowed, in the metric's
                units, such as `0.01` for one point of accuracy. Defaults to
                `None`: the report's `tolerance`.

        Returns:
            A dict from layer name to sparsity.
        """
        if tolerance is not None:
            tolerance = _check_tolerance(tolerance)
        allowed = self.tolerance if tolerance is None else tolerance
        return {
            layer: _suggest(self.baseline, row, self.sparsities, allowed, self.mode)
            for layer, row in self.values.items()
        }

    def __getitem__(self, layer: str) -> dict[float, float]:
        """Sparsity -> metric, for one layer."""
        if layer not in self.values:
            raise KeyError(
                f"No layer {layer!r} in this sensitivity scan. Layers: "
                f"{', '.join(self.values)}."
            )
        return dict(zip(self.sparsities, self.values[layer], strict=True))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with `"suggested"`; `from_dict` reads it back."""
        return {
            "metric": self.metric,
            "mode": self.mode,
            "baseline": self.baseline,
            "tolerance": self.tolerance,
            "sparsities": list(self.sparsities),
            "values": {layer: list(row) for layer, row in self.values.items()},
            "sizes": dict(self.sizes),
            "suggested": self.suggested,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SensitivityReport:
        """The report `to_dict` returned (its `"suggested"` is recomputed)."""
        return cls(
            metric=str(data["metric"]),
            mode=str(data["mode"]),
            baseline=float(data["baseline"]),
            tolerance=float(data["tolerance"]),
            sparsities=tuple(float(s) for s in data["sparsities"]),
            values={
                str(layer): tuple(float(v) for v in row)
                for layer, row in data["values"].items()
            },
            sizes={str(layer): int(n) for layer, n in data["sizes"].items()},
        )

    def __str__(self) -> str:
        better = "higher" if self.mode == "max" else "lower"
        suggested = self.suggested
        header = ("layer", "weights", *map(_percent, self.sparsities), "suggested")
        rows = [
            (
                layer,
                str(self.sizes.get(layer, "")),
                *(f"{v:.4f}" for v in row),
                _percent(suggested[layer]),
            )
            for layer, row in self.values.items()
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def line(row: tuple[str, ...]) -> str:
            return "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()

        rule = "-" * len(line(header))
        title = (
            f"{self.metric} ({better} is better) with one layer pruned at a time; "
            f"unpruned {self.baseline:.4f}, tolerance {self.tolerance:g}"
        )
        return "\n".join([title, line(header), rule, *map(line, rows)])

    def plot(self, ax: Any = None) -> Any:
        """Draws the metric against sparsity, one line per layer, with matplotlib.

        The unpruned baseline is a dashed line, the band within `tolerance`
        of it is shaded, and each layer's suggested sparsity is circled.

        Args:
            ax: the matplotlib `Axes` to draw on. Defaults to `None`: a new
                figure's.

        Returns:
            The `Axes`.

        Raises:
            ImportError: if matplotlib is not installed.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError(
                "SensitivityReport.plot() needs matplotlib, which is not "
                "installed. Install it with `pip install matplotlib`, or read "
                "the numbers from `print(report)` or `report.to_dict()`."
            ) from error
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.2))
        xs = [100 * s for s in self.sparsities]
        suggested = self.suggested
        for layer, row in self.values.items():
            (drawn,) = ax.plot(xs, row, marker=".", label=layer)
            if (chosen := suggested[layer]) in self.sparsities:
                value = row[self.sparsities.index(chosen)]
                circle = {"markersize": 10, "markerfacecolor": "none"}
                ax.plot([100 * chosen], [value], "o", color=drawn.get_color(), **circle)
        edge = self.baseline - self.tolerance * (1 if self.mode == "max" else -1)
        ax.axhline(self.baseline, color="gray", linestyle="--", label="unpruned")
        ax.axhspan(
            min(edge, self.baseline),
            max(edge, self.baseline),
            color="gray",
            alpha=0.15,
            label=f"within tolerance ({self.tolerance:g})",
        )
        ax.set_xlabel("sparsity of the one layer pruned (%)")
        ax.set_ylabel(self.metric)
        ax.set_title("Pruning sensitivity (circled: suggested sparsity)")
        ax.legend(fontsize="small")
        return ax


def _percent(sparsity: float) -> str:
    return f"{100 * sparsity:.4g}%"


def _suggest(
    baseline: float,
    row: Sequence[float],
    sparsities: Sequence[float],
    tolerance: float,
    mode: str,
) -> float:
    """The highest sparsity up to which the metric stays within tolerance."""
    chosen = 0.0
    for sparsity, value in zip(sparsities, row, strict=True):
        worse = baseline - value if mode == "max" else value - baseline
        # Within tolerance to float32 rounding; NaN is never within.
        if not (worse <= tolerance or math.isclose(worse, tolerance, rel_tol=1e-6)):
            break
        chosen = sparsity
    return chosen


def sensitivity(
    model: keras.Model,
    x: Any,
    y: Any = None,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    *,
    metric: Any = None,
    mode: str = "auto",
    tolerance: float = 0.01,
    batch_size: int | None = None,
    verbose: int | str = "auto",
) -> SensitivityReport:
    """Scans each prunable layer alone: the model's metric at each sparsity.

    For every layer `prune_low_magnitude` prunes (Dense, EinsumDense,
    Conv1D/2D/3D, DepthwiseConv2D, Embedding, their subclasses and
    `PrunableLayer`s; nested models' too, rows named by layer name, or by
    path where two share a name), and every sparsity, the layer's kernel is
    pruned by magnitude (`magnitude_mask`'s rule), the model evaluated
    once on `(x, y)`, and the kernel put back. Nothing is retrained and the
    other layers stay as they are. The masks are computed on the device,
    with `keras.ops`, on every backend.

    The model's weights are restored exactly afterwards, even when an
    evaluation raises (or is interrupted). One evaluation of the unpruned
    model, then one per layer and sparsity.

    The metric is, by default, the first metric the model was compiled with,
    or its loss if it has none, read from `model.evaluate`. `metric=` names
    another compiled metric (`"loss"` included), or gives a metric to compute
    on `model.predict`'s outputs: a Keras metric's name (`"accuracy"` is
    resolved as `compile` resolves it), a `keras.metrics.Metric`, or a
    function of `(y_true, y_pred)`; an uncompiled model needs one.

    Args:
        model: a Keras model (Sequential, functional or subclassed).
        x: input data, as `model.evaluate` takes it.
        y: target data. Defaults to `None` (for a dataset yielding
            `(x, y)`, with a compiled metric).
        sparsities: the fractions of each kernel to prune, each in [0, 1).
            They are scanned in increasing order. Defaults to
            `(0.25, 0.5, 0.7, 0.8, 0.9, 0.95)`.
        metric: the metric to measure. Defaults to `None`: the model's first
            compiled metric, or its loss.
        mode: `"max"` if higher values of the metric are better, `"min"` if
            lower ones are, or `"auto"`: `"min"` for losses, else the
            direction Keras' own metric declares (accuracy: `"max"`, mean
            squared error: `"min"`), as in `keras.callbacks.EarlyStopping`.
            Defaults to `"auto"`.
        tolerance: how much worse than the unpruned model a layer's suggested
            sparsity may leave the metric, in the metric's units (`0.01` is one
            point of accuracy). Defaults to `0.01`.
        batch_size: the evaluation batch size. Defaults to `None`: 32, as in
            `model.evaluate`.
        verbose: `0` for silence, `1` (or `"auto"`) for a progress bar over
            the evaluations. Defaults to `"auto"`.

    Returns:
        A `SensitivityReport`: per layer and sparsity the metric, the
        unpruned baseline, and a suggested sparsity per layer (the highest one
        up to which the metric stays within `tolerance`).

    Raises:
        TypeError: if `model` is not a Keras model, or for an argument of the
            wrong type.
        ValueError: for a sparsity outside [0, 1), a negative tolerance, an
            unknown mode, an uncompiled model without `metric`, a metric
            neither compiled nor known to Keras, a metric whose direction
            `"auto"` cannot tell, or a model with nothing to prune.

    Example:

    ```python
    from keras_bettermodels.pruning import sensitivity

    report = sensitivity(model, x_test, y_test, sparsities=(0.5, 0.8, 0.9))
    print(report)  # one row per layer, one column per sparsity
    report.suggested  # {"dense": 0.9, "dense_1": 0.8, ...}
    report.plot()  # needs matplotlib
    ```

    References:
        Song Han, Jeff Pool, John Tran and William J. Dally, "Learning both
        Weights and Connections for Efficient Neural Networks", NeurIPS 2015.
        Hao Li, Asim Kadav, Igor Durdanovic, Hanan Samet and Hans Peter Graf,
        "Pruning Filters for Efficient ConvNets", ICLR 2017.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid_type("model", "a Keras model", model))
    sparsities = _check_sparsities(sparsities)
    tolerance = _check_tolerance(tolerance)
    if mode not in ("auto", "min", "max"):
        raise ValueError(
            _validation.invalid_value("mode", '"auto", "min" or "max"', mode)
        )
    if batch_size is not None:
        batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    if verbose not in (0, 1, "auto") or isinstance(verbose, bool):
        raise ValueError(
            _validation.invalid_value("verbose", '0, 1 or "auto"', verbose)
        )
    if metric is None and not model.compiled:
        raise ValueError(
            _validation.invalid_value(
                "metric",
                f"{_METRIC_EXPECTED} when the model is not compiled",
                metric,
                'Compile the model, or pass `metric=` (such as metric="accuracy").',
            )
        )
    # Found before any evaluation, unless the first one is what builds the model.
    targets = _targets(model) if model.built else None
    name, score, baseline, metric_object = _scorer(model, x, y, metric, batch_size)
    mode = _resolve_mode(mode, name, metric, metric_object)
    if targets is None:
        targets = _targets(model)
    progbar = (
        keras.utils.Progbar(
            len(targets) * len(sparsities), verbose=1, unit_name="evaluation"
        )
        if verbose
        else None
    )
    values: dict[str, tuple[float, ...]] = {}
    try:
        for layer_name, weights in targets:
            row = []
            originals = [ops.copy(weight.value) for weight in weights]
            try:
                pruners = [_Pruner(original) for original in originals]
                for sparsity in sparsities:
                    for weight, pruner in zip(weights, pruners, strict=True):
                        weight.assign(pruner.pruned(sparsity))
                    row.append(score())
                    if progbar is not None:
                        progbar.add(1)
            finally:
                for weight, original in zip(weights, originals, strict=True):
                    weight.assign(original)
            values[layer_name] = tuple(row)
    finally:
        if isinstance(metric, keras.metrics.Metric):
            metric.reset_state()
    return SensitivityReport(
        metric=name,
        mode=mode,
        baseline=baseline,
        tolerance=tolerance,
        sparsities=sparsities,
        values=values,
        sizes={
            layer_name: sum(math.prod(weight.shape) for weight in weights)
            for layer_name, weights in targets
        },
    )


class _Pruner:
    """One weight magnitude-pruned at any sparsity, on the device.

    `magnitude_mask`'s rule (the `max(round(n * (1 - sparsity)), 1)` weights
    of largest magnitude kept, ties with the smallest kept one too), with the
    magnitudes sorted once for all the sparsities of a scan.
    """

    def __init__(self, original: Any) -> None:
        self.original = original
        self.magnitudes = ops.abs(original)
        self.size = math.prod(original.shape)
        self.ascending = ops.sort(ops.reshape(self.magnitudes, (-1,)))

    def pruned(self, sparsity: float) -> Any:
        keep = max(round(self.size * (1.0 - sparsity)), 1)
        threshold = ops.take(self.ascending, self.size - keep)
        kept = ops.greater_equal(self.magnitudes, threshold)
        return ops.where(kept, self.original, 0.0)


def _check_sparsities(sparsities: Any) -> tuple[float, ...]:
    expected = "a non-empty list of sparsities, each a number in [0, 1)"
    try:
        if isinstance(sparsities, str):
            raise TypeError
        items = list(sparsities)
    except TypeError:
        raise TypeError(
            _validation.invalid_type("sparsities", expected, sparsities)
        ) from None
    if not items:
        raise ValueError(_validation.invalid_value("sparsities", expected, sparsities))
    checked = set()
    for item in items:
        try:
            value = _validation.check_number("sparsities", item)
        except TypeError:
            raise TypeError(
                _validation.invalid_type("sparsities", expected, sparsities)
            ) from None
        if not 0.0 <= value < 1.0:
            raise ValueError(
                _validation.invalid_value(
                    "sparsities",
                    expected,
                    sparsities,
                    f"{value} is outside [0, 1).",
                )
            )
        checked.add(value)
    return tuple(sorted(checked))


def _check_tolerance(tolerance: Any) -> float:
    value = _validation.check_number("tolerance", tolerance)
    if value < 0:
        raise ValueError(
            _validation.invalid_value("tolerance", "a non-negative number", tolerance)
        )
    return value


def _targets(model: keras.Model) -> list[tuple[str, list[keras.Variable]]]:
    """(name, weights to prune) for each prunable layer, in the model's order."""
    layers = flatten_layers(model, include_self=False)
    inner = {
        id(layer.layer) for layer in layers if isinstance(layer, PruneLowMagnitude)
    }
    targets: list[tuple[Any, list[keras.Variable]]] = []
    for layer in layers:
        if id(layer) in inner or not layer.built:
            continue
        if isinstance(layer, PruneLowMagnitude):
            weights = list(layer.pruned_weights)
        elif isinstance(layer, PrunableLayer):
            weights = list(layer.get_prunable_weights())
        else:
            attribute = prunable_weight_name(layer)
            weights = [] if attribute is None else [getattr(layer, attribute, None)]
        # Float variables only: a quantized or LoRA kernel is not one.
        weights = [
            w
            for w in weights
            if isinstance(w, keras.Variable) and "float" in str(w.dtype)
        ]
        if weights:
            targets.append((layer, weights))
    if not targets:
        raise ValueError(
            f"Model `{model.name}` has no layer that can be pruned. Prunable "
            f"layer types: {prunable_names()}."
        )
    # Rows are named by layer name, or by path where two layers share a name
    # (in two nested models, say).
    names = [layer.name for layer, _ in targets]
    return [
        (
            str(getattr(layer, "path", None) or layer.name)
            if names.count(layer.name) > 1
            else layer.name,
            weights,
        )
        for layer, weights in targets
    ]


def _scorer(
    model: keras.Model, x: Any, y: Any, metric: Any, batch_size: int | None
) -> tuple[str, Callable[[], float], float, Any]:
    """(name, a function that measures the model now, the baseline, the metric).

    A compiled metric (or the loss) is read from `model.evaluate`; any other
    metric is computed on `model.predict`'s outputs.
    """
    options = {"batch_size": batch_size, "verbose": 0, "return_dict": True}
    logs: dict[str, Any] = {}
    if (metric is None or isinstance(metric, str)) and model.compiled:
        logs = model.evaluate(x, y, **options)
        compiled = _metrics.compiled_metrics(model)
        if metric is None:
            names = [m.name for m in compiled if m.name in logs]
            key = names[0] if names else "loss"
        else:
            key = metric
        if key in logs:

            def evaluate() -> float:
                return float(model.evaluate(x, y, **options)[key])

            found = next((m for m in compiled if m.name == key), None)
            return key, evaluate, float(logs[key]), found
    if y is None:
        raise ValueError(
            _validation.invalid_value(
                "y",
                f"target data to compute metric={metric!r} on the model's predictions",
                y,
            )
        )

    def predict() -> Any:
        return model.predict(x, batch_size=batch_size, verbose=0)

    predictions = predict()
    if isinstance(metric, keras.metrics.Metric):
        metric_object = metric
    else:
        try:
            metric_object = _metrics.resolve_metric(metric, y, predictions)
        except (ValueError, TypeError):
            compiled_names = f" Compiled metrics: {', '.join(logs)}." if logs else ""
            raise ValueError(
                _validation.invalid_value(
                    "metric",
                    _METRIC_EXPECTED,
                    metric,
                    f"Keras knows no metric {metric!r}.{compiled_names}",
                )
            ) from None

    def measure(y_pred: Any) -> float:
        metric_object.reset_state()
        metric_object.update_state(y, y_pred)
        return float(ops.convert_to_numpy(metric_object.result()))

    name = metric if isinstance(metric, str) else str(metric_object.name)
    return name, lambda: measure(predict()), measure(predictions), metric_object


def _resolve_mode(mode: str, name: str, metric: Any, metric_object: Any) -> str:
    if mode != "auto":
        return mode
    if name.endswith("loss") or isinstance(metric, keras.losses.Loss):
        return "min"
    direction = _metrics.metric_direction(metric_object)
    if direction is not None:
        return "max" if direction == "up" else "min"
    raise ValueError(
        _validation.invalid_value(
            "mode",
            f'"min" or "max" for metric {name!r}',
            mode,
            "Keras cannot tell whether higher or lower values of this metric "
            'are better: pass mode="max" (like accuracy) or mode="min" (like '
            "an error).",
        )
    )
