"""What the learning curves say: high bias, high variance or a good fit.

Andrew Ng's recipe for regularization, read off the curves of a `fit`:

- avoidable bias = E_tr − E_target, the training error above the error one
  aims for (human-level or Bayes error; 0 when not given);
- variance = E_va − E_tr, the gap between validation and training error;
- **high bias**: try a bigger model or train longer; **high variance**: get
  more data or regularize (L1/L2, dropout); work first on the larger gap.

Errors are error rates (1 − accuracy) when the history has `accuracy` and
`val_accuracy`, else the losses `loss` and `val_loss`; both are read at the
last epoch. A gap is "high" when it exceeds the tolerance:

- error rates: 1 percentage point. Ng's examples (Structuring Machine
  Learning Projects, "Avoidable bias"): a gap of 0.5 point (human 7.5 %,
  training 8 %) is not worth working on, one of 2 points (training 8 %,
  validation 10 %) is;
- losses: 10 % of the first epoch's training loss (the untrained model's),
  this project's choice — Ng gives his thresholds for error rates only.

Besides the curves, given the model: `l2-with-adam` when a layer has an L2
regularizer and the optimizer is Adam (not AdamW): Adam divides the L2
gradient by its running scale, so the penalty decays weights unevenly and
weaker than intended — decoupled weight decay (AdamW) is what was meant
(Loshchilov & Hutter 2019).

Pure Python over the history dict: the model, when given, is only inspected.

References:
    Andrew Ng, Deep Learning Specialization: "Improving Deep Neural
    Networks", week 1 (bias / variance, the basic recipe) and "Structuring
    Machine Learning Projects", week 1 (avoidable bias).
    Ilya Loshchilov, Frank Hutter, "Decoupled Weight Decay Regularization",
    ICLR 2019.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from keras_bettermodels import _validation

__all__ = ["CODES", "ERROR_RATE_TOLERANCE", "LOSS_TOLERANCE", "Finding", "diagnose"]

CODES = ("high-bias", "high-variance", "good-fit", "l2-with-adam")
#: A gap between error rates counts above this (1 percentage point; Ng).
ERROR_RATE_TOLERANCE = 0.01
#: A gap between losses counts above this fraction of the first training loss.
LOSS_TOLERANCE = 0.1
_REGULARIZERS = (
    "kernel_regularizer",
    "bias_regularizer",
    "recurrent_regularizer",
    "depthwise_regularizer",
    "pointwise_regularizer",
    "embeddings_regularizer",
)


@dataclass(frozen=True)
class Finding:
    """One thing the curves (or the model) say.

    Attributes:
        code: `"high-bias"`, `"high-variance"`, `"good-fit"` or
            `"l2-with-adam"`.
        message: the reading and Ng's advice, in one sentence.
        value: the gap read (avoidable bias, variance, the larger of the two
            for a good fit), or `None` for `l2-with-adam`.
    """

    code: str
    message: str
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(**data)

    def __str__(self) -> str:
        return self.message


def _curves(history: Any) -> Mapping[str, Sequence[float]]:
    curves = getattr(history, "history", history)  # a keras.callbacks.History
    if not isinstance(curves, Mapping):
        raise TypeError(
            _validation.invalid_type(
                "history", "a keras.callbacks.History or its `history` dict", history
            )
        )
    for key in ("loss", "val_loss"):
        values = curves.get(key)
        if not isinstance(values, Sequence) or not values:
            raise ValueError(
                _validation.invalid_value(
                    "history",
                    "the curves of a fit with validation, with `loss` and "
                    "`val_loss` for at least one epoch",
                    sorted(curves),
                    "Pass `validation_data` or `validation_split` to `fit`.",
                )
            )
    return curves


def _last(curves: Mapping[str, Sequence[float]], key: str) -> float:
    value = curves[key][-1]
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(_validation.invalid_type(f"history[{key!r}]", "numbers", value))
    return float(value)


def _fmt(x: float, rates: bool) -> str:
    return f"{100 * x:.1f} %" if rates else f"{x:.4g}"


def _gap(x: float, rates: bool) -> str:
    return f"{100 * x:.1f} points" if rates else f"{x:.4g}"


def diagnose(
    history: Any, target_error: float | None = None, model: Any = None
) -> list[Finding]:
    """Reads the learning curves of a `fit`, as in Ng's recipe (module doc).

    Args:
        history: what `fit` returned (a `keras.callbacks.History`) or its
            `history` dict, with `loss` and `val_loss` (and `accuracy` and
            `val_accuracy`, read instead when present).
        target_error: the error one aims for (human-level or Bayes error), in
            the curves' unit: an error rate (0.02 for 2 %) when the history has
            accuracies, else a loss. Defaults to `None` (0).
        model: the trained model, to look for L2 with Adam. Defaults to `None`.

    Returns:
        The findings: `high-bias` and/or `high-variance` (the larger gap
        first), or `good-fit`; then `l2-with-adam` if it applies.

    Raises:
        TypeError: for a `history` that is not one, or non-numbers in it.
        ValueError: for a history without validation, or a negative
            `target_error`.

    Example:

    ```python
    history = model.fit(x, y, validation_split=0.2, epochs=20)
    for finding in keras_bettermodels.diagnose(history, model=model):
        print(finding.code, finding.message)
    ```
    """
    curves = _curves(history)
    target = _validation.check_optional_number("target_error", target_error) or 0.0
    if target < 0:
        raise ValueError(
            _validation.invalid_value("target_error", "an error, >= 0", target_error)
        )
    rates = "accuracy" in curves and "val_accuracy" in curves
    if rates:
        train = 1.0 - _last(curves, "accuracy")
        val = 1.0 - _last(curves, "val_accuracy")
        tolerance = ERROR_RATE_TOLERANCE
        source = "error"
    else:
        train, val = _last(curves, "loss"), _last(curves, "val_loss")
        first = float(curves["loss"][0])
        tolerance = LOSS_TOLERANCE * first if math.isfinite(first) else math.inf
        source = "loss"
    # Rounded: 1 - 0.99 is 0.010000000000000009, not above a 1-point tolerance.
    bias, variance = round(train - target, 12), round(val - train, 12)
    found = []
    if bias > tolerance:
        found.append(
            Finding(
                "high-bias",
                f"High bias: the training {source} {_fmt(train, rates)} is "
                f"{_gap(bias, rates)} above the target {_fmt(target, rates)} "
                "(the model underfits); try a bigger model or train longer.",
                bias,
            )
        )
    if variance > tolerance:
        found.append(
            Finding(
                "high-variance",
                f"High variance: the validation {source} {_fmt(val, rates)} is "
                f"{_gap(variance, rates)} above the training {source} "
                f"{_fmt(train, rates)} (the model overfits); get more data or "
                "regularize (L1/L2, dropout).",
                variance,
            )
        )
    found.sort(key=lambda finding: -(finding.value or 0.0))  # the larger first
    if not found:
        found.append(
            Finding(
                "good-fit",
                f"Good fit: the training {source} {_fmt(train, rates)} is within "
                f"{_gap(tolerance, rates)} of the target and the validation "
                f"{source} {_fmt(val, rates)} within it of the training one; "
                "keep the model, or lower the target to push further.",
                max(bias, variance),
            )
        )
    if model is not None:
        found.extend(_l2_with_adam(model))
    return found


def _layers(layer: Any) -> Iterator[Any]:
    yield layer
    for inner in getattr(layer, "layers", None) or ():
        if inner is not layer:
            yield from _layers(inner)


def _has_l2(layer: Any) -> bool:
    for name in _REGULARIZERS:
        regularizer = getattr(layer, name, None)
        get_config = getattr(regularizer, "get_config", None)
        if callable(get_config) and float(get_config().get("l2", 0) or 0) > 0:
            return True
    return False


def _l2_with_adam(model: Any) -> list[Finding]:
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # loss scaling
    name = type(optimizer).__name__
    adam = name in ("Adam", "Adamax", "Nadam", "AMSGrad")
    if not adam or getattr(optimizer, "weight_decay", None):
        return []
    layers = [layer.name for layer in _layers(model) if _has_l2(layer)]
    if not layers:
        return []
    shown = ", ".join(layers[:3]) + (", ..." if len(layers) > 3 else "")
    return [
        Finding(
            "l2-with-adam",
            f"L2 with Adam: {shown} add an L2 penalty that {name} rescales per "
            "weight, so it regularizes less than meant; use decoupled weight "
            "decay instead, `keras.optimizers.AdamW(weight_decay=...)`, without "
            "the L2 regularizers (Loshchilov & Hutter 2019).",
        )
    ]
