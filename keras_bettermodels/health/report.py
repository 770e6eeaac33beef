"""The training-health report: per-layer statistics at sampled steps, and findings.

Pure Python: nothing here imports Keras or a backend. Every object round-trips
through a dict of JSON types (`to_dict` / `from_dict`), which is what goes to
TensorBoard.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from keras_bettermodels import _validation

__all__ = [
    "CODES",
    "DEAD_UNITS",
    "EXPLODING_GRADIENTS",
    "FLOAT16_OVERFLOW",
    "FLOAT16_UNDERFLOW",
    "LOSS_SPIKE",
    "REPORT_VERSION",
    "STATISTICS",
    "VANISHING_GRADIENTS",
    "Finding",
    "HealthReport",
    "LayerStats",
]

#: A layer's activations or gradients pass float16's largest value (65,504).
FLOAT16_OVERFLOW = "float16-overflow"
#: Many of a layer's non-zero activations or gradients are below float16's
#: smallest subnormal (2^-24) and would be flushed to zero.
FLOAT16_UNDERFLOW = "float16-underflow"
#: A share of a layer's units are zero on every sample of the batch.
DEAD_UNITS = "dead-units"
#: A layer's gradient is far larger than the other layers' (or not finite).
EXPLODING_GRADIENTS = "exploding-gradients"
#: A layer's gradient is far smaller than the other layers'.
VANISHING_GRADIENTS = "vanishing-gradients"
#: A finite training loss far above the running window of recent losses.
LOSS_SPIKE = "loss-spike"
CODES = (
    FLOAT16_OVERFLOW,
    FLOAT16_UNDERFLOW,
    DEAD_UNITS,
    EXPLODING_GRADIENTS,
    VANISHING_GRADIENTS,
    LOSS_SPIKE,
)
#: The version of `HealthReport.to_dict`'s format.
REPORT_VERSION = 1

#: The statistics of a `LayerStats` row, in table order.
STATISTICS = (
    "grad_norm",
    "update_ratio",
    "weight_norm",
    "activation_abs_max",
    "activation_min_nonzero",
    "gradient_abs_max",
    "gradient_min_nonzero",
    "dead_fraction",
    "activation_underflow",
    "gradient_underflow",
)


def _number(value: Any) -> float | None:
    """A JSON-safe float: `None` stays `None`; NaN and infinities are kept
    (JSON's `NaN` / `Infinity`, which TensorBoard's writer and reader keep)."""
    return None if value is None else float(value)


@dataclass(frozen=True)
class LayerStats:
    """One layer's statistics at one sampled step (one row of the table).

    A statistic that could not be measured (a layer whose output is not
    reachable in the model's graph, a layer with no trainable weight, no
    update measured yet) is `None`.

    Attributes:
        step: the 0-based training step (batches since the start of `fit`)
            after which the sample was taken.
        layer: the layer's `path`, e.g. `"sequential/dense_1"`.
        params: the number of the layer's trainable parameters.
        grad_norm: the L2 norm of the loss's gradient with respect to the
            layer's trainable weights, on the sample batch.
        update_ratio: ‖ΔW‖ / ‖W‖ over the training step just taken (the
            optimizer's update relative to the weights).
        weight_norm: ‖W‖, the L2 norm of the layer's trainable weights.
        activation_abs_max: the largest |value| of the layer's outputs.
        activation_min_nonzero: the smallest non-zero |value| of its outputs.
        gradient_abs_max: the largest |value| of the gradient.
        gradient_min_nonzero: the smallest non-zero |value| of the gradient.
        dead_fraction: the share of the layer's units (the last axis of its
            output: a Dense unit, a conv filter) that are exactly zero on
            every sample (and every position) of the batch.
        activation_underflow: the share of the outputs' non-zero values
            below float16's smallest subnormal, 2^-24.
        gradient_underflow: the same share among the gradient's values
            times the loss scale (`health.probe.loss_scale`).
    """

    step: int
    layer: str
    params: int
    grad_norm: float | None = None
    update_ratio: float | None = None
    weight_norm: float | None = None
    activation_abs_max: float | None = None
    activation_min_nonzero: float | None = None
    gradient_abs_max: float | None = None
    gradient_min_nonzero: float | None = None
    dead_fraction: float | None = None
    activation_underflow: float | None = None
    gradient_underflow: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerStats:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in STATISTICS:
            values[name] = _number(values.get(name))
        return cls(**values)

    @property
    def grad_rms(self) -> float | None:
        """The gradient's root mean square per parameter: ‖g‖ / √params."""
        if self.grad_norm is None or self.params <= 0:
            return None
        return self.grad_norm / math.sqrt(self.params)


@dataclass(frozen=True)
class Finding:
    """One thing the training-health check found, naming the layer.

    Args:
        code: one of `CODES`: `"float16-overflow"`, `"float16-underflow"`,
            `"dead-units"`, `"exploding-gradients"`, `"vanishing-gradients"`,
            `"loss-spike"`.
        layer: the layer's `path`; `None` for a `loss-spike` (the whole
            model's loss).
        step: the 0-based training step it was found at.
        message: what was found and what to do, in a sentence or two.
        value: the number read (the overflowing value, the share of dead
            units, the gradient's ratio to the median layer's, the spiking
            loss). Defaults to `None`.

    Raises:
        ValueError: for an unknown `code`.
    """

    code: str
    layer: str | None
    step: int
    message: str
    value: float | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(
                _validation.invalid_value("code", f"one of {CODES}", self.code)
            )

    def __str__(self) -> str:
        where = "" if self.layer is None else f" in `{self.layer}`"
        return f"{self.code}{where} at step {self.step}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            code=data["code"],
            layer=data.get("layer"),
            step=int(data["step"]),
            message=data["message"],
            value=_number(data.get("value")),
        )


@dataclass(frozen=True)
class HealthReport:
    """What `TrainingHealth` measured during one `fit`.

    Attributes:
        layers: the paths of the layers with weights, in forward order.
        rows: the table: one `LayerStats` per layer per sampled step, in
            step order, then forward order.
        findings: the findings, in the order they were made.
        policy: the model's dtype policy's name, e.g. `"mixed_float16"`.
        losses: `(step, loss)` of each training step's loss, as read back
            from the running mean Keras logs (`loss-spike`'s input).
    """

    layers: tuple[str, ...] = ()
    rows: tuple[LayerStats, ...] = ()
    findings: tuple[Finding, ...] = ()
    policy: str = "float32"
    losses: tuple[tuple[int, float], ...] = field(default=())

    @property
    def steps(self) -> list[int]:
        """The sampled steps, in order."""
        return sorted({row.step for row in self.rows})

    def table(self, step: int | None = None) -> list[LayerStats]:
        """The rows at `step` (the last sampled step when `None`)."""
        steps = self.steps
        if not steps:
            return []
        chosen = steps[-1] if step is None else step
        return [row for row in self.rows if row.step == chosen]

    def codes(self) -> list[str]:
        """The codes of the findings, in order."""
        return [finding.code for finding in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON types, for TensorBoard (see `from_dict`)."""
        return {
            "version": REPORT_VERSION,
            "policy": self.policy,
            "num_findings": len(self.findings),
            "num_steps": len(self.steps),
            "statistics": list(STATISTICS),
            "layers": list(self.layers),
            "steps": self.steps,
            "rows": [row.to_dict() for row in self.rows],
            "findings": [finding.to_dict() for finding in self.findings],
            "losses": [[step, loss] for step, loss in self.losses],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthReport:
        """The report that `to_dict` returned (unknown keys are ignored)."""
        version = data.get("version", REPORT_VERSION)
        if type(version) is not int or version > REPORT_VERSION:
            raise ValueError(
                _validation.invalid_value(
                    "data",
                    f"a report of format version <= {REPORT_VERSION}",
                    version,
                    "Upgrade keras-bettermodels to read it.",
                )
            )
        return cls(
            layers=tuple(data.get("layers", ())),
            rows=tuple(LayerStats.from_dict(row) for row in data.get("rows", ())),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", ())),
            policy=str(data.get("policy", "float32")),
            losses=tuple(
                (int(step), float(loss)) for step, loss in data.get("losses", ())
            ),
        )

    def __str__(self) -> str:
        lines = [f"Training health ({len(self.steps)} sampled steps):"]
        lines += [f"  {finding}" for finding in self.findings] or ["  no finding"]
        return "\n".join(lines)
