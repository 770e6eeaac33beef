"""`GradientCheckReport` and `VariableCheck`: what a gradient check found.

Plain dataclasses: printed with the article's reference table, and turned into
JSON-ready dicts (`to_dict()`) for logs and the TensorBoard "Gradient check" tab.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keras_bettermodels.gradient_check import _core

__all__ = ["GradientCheckReport", "VariableCheck"]

#: Ng's reading of each band, for the reference table.
MEANINGS = {
    "great": "the gradient is right",
    "ok": "fine for most models",
    "check": "double-check the components",
    "bug": "there is probably a bug",
}
ALL_VARIABLES = "(all variables)"


def _float(value: Any) -> float:
    return float(value) if value is not None else math.nan


@dataclass(frozen=True)
class VariableCheck:
    """The gradient check of one trainable variable.

    Attributes:
        name: the variable's path in the model, such as `"dense/kernel"`
            (`"(all variables)"` for the directions over all variables).
        shape: the variable's shape.
        relative_error: Ng's relative error over the directions (or
            coordinates) checked in this variable.
        verdict: "great", "ok", "check" or "bug".
        checked: how many directions (or coordinates) were compared.
        kinks: how many of them crossed a non-differentiable point; those were
            compared with the one-sided difference on the side of θ that did not
            cross it.
    """

    name: str
    shape: tuple[int, ...]
    relative_error: float
    verdict: str
    checked: int = 0
    kinks: int = 0

    @property
    def size(self) -> int:
        """The number of entries of the variable."""
        return math.prod(self.shape)

    @property
    def passed(self) -> bool:
        """Whether the verdict is "great" or "ok"."""
        return self.verdict in ("great", "ok")

    def to_dict(self) -> dict[str, Any]:
        """Returns the check as a JSON-ready dict (see the docs for the fields)."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "size": self.size,
            "relative_error": self.relative_error,
            "verdict": self.verdict,
            "checked": self.checked,
            "kinks": self.kinks,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariableCheck:
        """Rebuilds a check from `to_dict()`'s output."""
        return cls(
            name=str(data["name"]),
            shape=tuple(int(d) for d in data["shape"]),
            relative_error=_float(data["relative_error"]),
            verdict=str(data["verdict"]),
            checked=int(data.get("checked", 0)),
            kinks=int(data.get("kinks", 0)),
        )


@dataclass(frozen=True)
class GradientCheckReport:
    """What `check_gradients` found: one relative error, a verdict, per-variable checks.

    Attributes:
        relative_error: the largest of the rows' relative errors (Ng's
            ‖numeric − analytic‖ / (‖numeric‖ + ‖analytic‖), per variable and
            over all variables): the number whose band is the verdict, so a
            bug in one small variable fails the report.
        verdict: "great", "ok", "check" or "bug": the band of
            `relative_error`.
        variables: a `VariableCheck` per trainable variable, in the order of
            `model.trainable_variables`.
        kinks: the names of the variables in which a step crossed a
            non-differentiable point (a ReLU at 0, a max-pool tie). A direction
            that crossed one on one side is compared with the one-sided
            difference on the other; when kinks sit exactly at the weights
            (every step crosses one, as with zero biases on zero inputs), the
            check is repeated at nudged weights (see `nudge`). Kinks are never
            reported as bugs.
        method: "directional" or "coordinate".
        epsilon: the finite-difference step.
        thresholds: the upper bounds of the "great", "ok" and "check" bands.
        loss: J(θ), the loss the check differentiated (float64).
        num_parameters: the number of trainable parameters.
        num_evaluations: how many times J was evaluated (forward passes),
            besides the one backpropagation.
        elapsed: the wall time of the check in seconds.
        backend: the Keras backend that computed it.
        all_variables: the check along directions over all variables together
            (directional method, more than one variable), else `None`.
        num_directions: random directions per variable (directional method).
        max_coordinates_per_variable: the coordinate method's cap per
            variable (`None`: every coordinate).
        seed: the seed of the random directions and coordinates.
        training: whether J was computed in training mode.
        set_by: the row (a variable's path, or `"(all variables)"`) whose
            relative error is `relative_error`.
        nudge: `None` when the check ran at the model's weights; else the
            relative size of the move (±`nudge` × each variable's RMS) that put
            the weights off the kinks they sat on, where the check ran instead.
    """

    relative_error: float
    verdict: str
    variables: list[VariableCheck]
    kinks: list[str] = field(default_factory=list)
    method: str = "directional"
    epsilon: float = _core.DEFAULT_EPSILON
    thresholds: tuple[float, float, float] = _core.DEFAULT_THRESHOLDS
    loss: float = math.nan
    num_parameters: int = 0
    num_evaluations: int = 0
    elapsed: float = 0.0
    backend: str = ""
    all_variables: VariableCheck | None = None
    num_directions: int | None = None
    max_coordinates_per_variable: int | None = None
    seed: int | None = None
    training: bool = True
    set_by: str | None = None
    nudge: float | None = None

    @property
    def passed(self) -> bool:
        """Whether the verdict is "great" or "ok"."""
        return self.verdict in ("great", "ok")

    @property
    def failed_variables(self) -> list[VariableCheck]:
        """The variables whose verdict is "check" or "bug"."""
        return [v for v in self.variables if not v.passed]

    def to_dict(self) -> dict[str, Any]:
        """Returns the report as a JSON-ready dict.

        This is the payload the `GradientCheckCallback` writes for TensorBoard
        (format version 1); the fields are documented in
        `docs/gradient-check.md`.
        """
        return {
            "relative_error": self.relative_error,
            "verdict": self.verdict,
            "passed": self.passed,
            "method": self.method,
            "epsilon": self.epsilon,
            "thresholds": {
                name: bound
                for name, bound in zip(_core.VERDICTS, self.thresholds, strict=False)
            },
            "loss": self.loss,
            "num_parameters": self.num_parameters,
            "num_evaluations": self.num_evaluations,
            "elapsed": self.elapsed,
            "backend": self.backend,
            "num_directions": self.num_directions,
            "max_coordinates_per_variable": self.max_coordinates_per_variable,
            "seed": self.seed,
            "training": self.training,
            "variables": [v.to_dict() for v in self.variables],
            "all_variables": (
                None if self.all_variables is None else self.all_variables.to_dict()
            ),
            "kinks": list(self.kinks),
            "set_by": self.set_by,
            "nudge": self.nudge,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GradientCheckReport:
        """Rebuilds a report from `to_dict()`'s output (for example, read from logs)."""
        thresholds = data.get("thresholds") or {}
        all_variables = data.get("all_variables")
        return cls(
            relative_error=_float(data["relative_error"]),
            verdict=str(data["verdict"]),
            variables=[VariableCheck.from_dict(v) for v in data.get("variables", [])],
            kinks=[str(name) for name in data.get("kinks", [])],
            method=str(data.get("method", "directional")),
            epsilon=_float(data.get("epsilon")),
            thresholds=(
                _float(thresholds.get("great")),
                _float(thresholds.get("ok")),
                _float(thresholds.get("check")),
            ),
            loss=_float(data.get("loss")),
            num_parameters=int(data.get("num_parameters", 0)),
            num_evaluations=int(data.get("num_evaluations", 0)),
            elapsed=float(data.get("elapsed", 0.0)),
            backend=str(data.get("backend", "")),
            all_variables=(
                None
                if all_variables is None
                else VariableCheck.from_dict(all_variables)
            ),
            num_directions=data.get("num_directions"),
            max_coordinates_per_variable=data.get("max_coordinates_per_variable"),
            seed=data.get("seed"),
            training=bool(data.get("training", True)),
            set_by=None if data.get("set_by") is None else str(data["set_by"]),
            nudge=None if data.get("nudge") is None else float(data["nudge"]),
        )

    def __str__(self) -> str:
        status = "passed" if self.passed else "FAILED"
        if self.method == "directional":
            how = f"{self.num_directions} random directions per variable"
        elif self.max_coordinates_per_variable is None:
            how = "every coordinate"
        else:
            how = f"up to {self.max_coordinates_per_variable} coordinates per variable"
        headline = (
            f"Gradient check {status}: relative error {self.relative_error:.2e} "
            f"({self.verdict})"
        )
        if self.set_by is not None:
            headline += f", set by {self.set_by}"
        lines = [
            headline,
            f"{self.method} check, {how}, epsilon={self.epsilon:g}, float64, "
            f"J={self.loss:.6g}, {self.num_parameters:,} parameters, "
            f"{self.elapsed:.2f} s on {self.backend or 'unknown backend'}",
            "",
        ]
        rows = list(self.variables)
        if self.all_variables is not None:
            rows.append(self.all_variables)
        unit = "Directions" if self.method == "directional" else "Coordinates"
        name_width = max([len("Variable"), *(len(v.name) for v in rows)])
        shape_width = max([len("Shape"), *(len(str(v.shape)) for v in rows)])
        lines.append(
            f"  {'Variable':<{name_width}}  {'Shape':<{shape_width}}  "
            f"{unit:>11}  {'Relative error':>14}  Verdict"
        )
        for row in rows:
            mark = ""
            if row.kinks:
                mark = f"  ({row.kinks} crossed a kink)"
            lines.append(
                f"  {row.name:<{name_width}}  {row.shape!s:<{shape_width}}  "
                f"{row.checked:>11}  {row.relative_error:>14.2e}  "
                f"{row.verdict}{mark}"
            )
        lines += ["", "  Relative error     Verdict  Reading (Ng)"]
        great, ok, check = self.thresholds
        bands = (
            f"< {great:.0e}",
            f"{great:.0e} .. {ok:.0e}",
            f"{ok:.0e} .. {check:.0e}",
            f">= {check:.0e}",
        )
        for band, name in zip(bands, _core.VERDICTS, strict=True):
            arrow = "  <-" if name == self.verdict else ""
            lines.append(f"  {band:<17}  {name:<7}  {MEANINGS[name]}{arrow}")
        if self.nudge is not None:
            lines += [
                "",
                "Kinks at the weights: steps in "
                + ", ".join(self.kinks)
                + " were not smooth on either side, as when ReLUs sit exactly at "
                "0 (zero biases on zero inputs: black pixels, padding). Checked "
                f"at the weights nudged by ±{self.nudge:g} × each variable's RMS "
                "instead, where a wrong gradient is still wrong.",
            ]
        elif self.kinks:
            lines += [
                "",
                "Kinks (a step crossed a non-differentiable point, such as a ReLU "
                "at 0; compared one-sidedly, not counted as bugs): "
                + ", ".join(self.kinks),
            ]
        failed = self.failed_variables
        if failed:
            lines += [
                "",
                "Failing: "
                + ", ".join(f"{v.name} ({v.verdict})" for v in failed)
                + ". A wrong gradient in a layer also spoils those of the layers "
                "before it: look first at the failing variable closest to the "
                "output.",
            ]
        return "\n".join(lines)
