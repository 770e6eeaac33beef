"""The arithmetic of a gradient check: differences, Ng's relative error, bands, kinks.

Pure NumPy: nothing here knows about Keras or a backend, so it is tested with
hand-made numbers.

A *probe* is one direction v (a random unit vector, or a coordinate axis) in
which the loss J was evaluated at θ − εv, θ and θ + εv, together with the
analytic directional derivative ∇J·v that backpropagation gives. From these:

- the central difference (J(θ+εv) − J(θ−εv)) / 2ε estimates ∇J·v with an error
  of O(ε²) plus rounding;
- the one-sided differences (J(θ+εv) − J(θ)) / ε and (J(θ) − J(θ−εv)) / ε
  agree with each other to O(ε) where J is smooth, and disagree by O(1) when a
  step crosses a kink (a ReLU at 0, a max-pool tie): that is how kinks are told
  apart from bugs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keras_bettermodels import _validation

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_THRESHOLDS",
    "KINK_AGREEMENT",
    "KINK_JUMP",
    "NOISE_FLOOR_FACTOR",
    "NUDGE",
    "VERDICTS",
    "Probe",
    "check_thresholds",
    "compare",
    "relative_error",
    "verdict",
    "worst",
]

#: The finite-difference step in float64. The central difference has a
#: truncation error of about ε²·|J'''|/6 and a rounding error of about
#: 1e-16·|J|/ε: with ε = 1e-6 both stay near 1e-10 for a loss of order 1,
#: three orders of magnitude below the "great" band, while the step is small
#: enough that it rarely crosses a kink (a ReLU is crossed only by units whose
#: pre-activation lies within about 1e-6 of zero).
DEFAULT_EPSILON = 1e-6
#: Upper bounds of the "great", "ok" and "check" bands; anything from the last
#: one up is a "bug" (Ng: ≤ 1e-7 great, ~1e-5 double-check, ≥ 1e-3 a bug).
DEFAULT_THRESHOLDS = (1e-7, 1e-5, 1e-3)
#: The verdicts, best first.
VERDICTS = ("great", "ok", "check", "bug")
#: A difference is measured against at least this many times its rounding
#: noise (the denominator of the relative error never falls below it), so that
#: a gradient that is zero or too small to resolve in float64 (the bias of a
#: layer followed by batch normalization) is not mistaken for a wrong one.
NOISE_FLOOR_FACTOR = 1e6
#: A step crosses a kink when the one-sided differences differ by more than
#: this many times their rounding noise ...
KINK_JUMP = 100.0
#: ... and the analytic derivative agrees with one of them to within this
#: fraction of their difference (a smooth J puts it halfway between them).
KINK_AGREEMENT = 0.1

#: When a failing check crossed kinks, it is repeated at θ moved by ± this
#: fraction of each variable's RMS (of the whole model's, for a variable that
#: is all zeros, such as Keras' zero biases). Keras' zero biases on exact-zero
#: inputs (black pixels, padding, one-hot rows) put ReLUs exactly on their
#: kinks, where every direction that moves a bias crosses one; a nudge of 1e-3
#: sets those pre-activations about 1e-4 from zero, 100 steps ε away, while
#: the weights stay within 0.1 % of the model's.
NUDGE = 1e-3

_EPS64 = float(np.finfo(np.float64).eps)


def check_thresholds(thresholds: Any) -> tuple[float, float, float]:
    """Checks `thresholds`: three increasing positive numbers.

    Args:
        thresholds: the upper bounds of the "great", "ok" and "check" bands.

    Returns:
        The thresholds as a tuple of floats.

    Raises:
        TypeError: if `thresholds` is not a sequence of three numbers.
        ValueError: if they are not positive and strictly increasing.
    """
    expected = (
        "three increasing positive numbers (the upper bounds of the 'great', "
        "'ok' and 'check' bands), such as (1e-7, 1e-5, 1e-3)"
    )
    if not isinstance(thresholds, Sequence) or isinstance(thresholds, str):
        raise TypeError(_validation.invalid_type("thresholds", expected, thresholds))
    if len(thresholds) != 3:
        raise ValueError(_validation.invalid_value("thresholds", expected, thresholds))
    values = []
    for value in thresholds:
        if not _validation._is_real(value):
            raise TypeError(
                _validation.invalid_type("thresholds", expected, thresholds)
            )
        values.append(float(value))
    if not all(math.isfinite(v) and v > 0 for v in values) or not (
        values[0] < values[1] < values[2]
    ):
        raise ValueError(_validation.invalid_value("thresholds", expected, thresholds))
    return values[0], values[1], values[2]


def relative_error(
    numeric: Any,
    analytic: Any,
    *,
    floor: float = 0.0,
) -> float:
    """Ng's relative difference ‖numeric − analytic‖ / (‖numeric‖ + ‖analytic‖).

    Args:
        numeric: the finite-difference estimates (a number or an array).
        analytic: the backpropagated values, of the same shape.
        floor: the smallest denominator: errors between gradients too small to
            resolve are measured against the resolution instead. Defaults to
            `0.0`.

    Returns:
        The relative error, in [0, 1] when `floor` is 0; 0 when both are zero.

    Raises:
        ValueError: if the shapes differ.

    Example:

    ```python
    relative_error([1.0, 2.0], [1.0, 2.0 + 1e-9])  # about 3e-10
    ```

    References:
        Andrew Ng, "Improving Deep Neural Networks", week 1: gradient checking.
    """
    a = np.asarray(numeric, dtype=np.float64).ravel()
    b = np.asarray(analytic, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(
            "`numeric` and `analytic` must have the same size. "
            f"Received: {a.size} and {b.size} values"
        )
    difference = float(np.linalg.norm(a - b))
    denominator = max(float(np.linalg.norm(a) + np.linalg.norm(b)), floor)
    if difference == 0.0:
        return 0.0
    if denominator == 0.0 or not math.isfinite(difference):
        return math.inf
    return difference / denominator


def verdict(
    error: float, thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS
) -> str:
    """The band a relative error falls in: "great", "ok", "check" or "bug".

    `great` < 1e-7 ≤ `ok` < 1e-5 ≤ `check` < 1e-3 ≤ `bug` with the default
    thresholds; a NaN or infinite error is a "bug".

    Args:
        error: a relative error.
        thresholds: the upper bounds of the first three bands. Defaults to
            `(1e-7, 1e-5, 1e-3)`.

    Returns:
        One of `VERDICTS`.
    """
    if not math.isfinite(error):
        return "bug"
    for name, bound in zip(VERDICTS, thresholds, strict=False):
        if error < bound:
            return name
    return "bug"


def worst(verdicts: Iterable[str]) -> str:
    """The worst of some verdicts ("great" if there are none)."""
    return max(verdicts, key=VERDICTS.index, default="great")


@dataclass(frozen=True)
class Probe:
    """The loss evaluated around θ in one direction v, and ∇J·v.

    Attributes:
        plus: J(θ + εv).
        minus: J(θ − εv).
        center: J(θ).
        analytic: ∇J·v from backpropagation.
        epsilon: the step ε.
        far: at a kink, J two steps out on the side that did not cross it
            (J(θ + 2εv) or J(θ − 2εv)), for a second-order one-sided
            difference; `None` otherwise.
    """

    plus: float
    minus: float
    center: float
    analytic: float
    epsilon: float
    far: float | None = None

    @property
    def central(self) -> float:
        """(J(θ+εv) − J(θ−εv)) / 2ε."""
        return (self.plus - self.minus) / (2 * self.epsilon)

    @property
    def forward(self) -> float:
        """(J(θ+εv) − J(θ)) / ε."""
        return (self.plus - self.center) / self.epsilon

    @property
    def backward(self) -> float:
        """(J(θ) − J(θ−εv)) / ε."""
        return (self.center - self.minus) / self.epsilon

    @property
    def noise(self) -> float:
        """The rounding error of a difference: one ulp of J in each evaluation."""
        magnitude = max(abs(self.plus), abs(self.minus), abs(self.center))
        return 2 * _EPS64 * magnitude / self.epsilon

    @property
    def rough(self) -> bool:
        """Whether the one-sided differences disagree beyond rounding.

        True at a kink, whichever side crossed it; also where J curves
        strongly, so a rough probe is a reason to look again, not a verdict.
        """
        jump = abs(self.forward - self.backward)
        return not math.isfinite(jump) or jump > KINK_JUMP * self.noise

    @property
    def kink(self) -> bool:
        """Whether a step crossed a non-differentiable point.

        Where J is smooth the analytic derivative lies halfway between the two
        one-sided differences, which differ by only ε·vᵀHv. When a step crosses
        a kink on one side, the one-sided differences jump apart while the
        analytic derivative (a derivative at θ, on θ's side) still agrees with
        the difference on the side that did not cross.
        """
        if not self.rough:
            return False
        forward, backward = self.forward, self.backward
        jump = abs(forward - backward)
        if not math.isfinite(jump):
            return False
        closest = min(abs(forward - self.analytic), abs(backward - self.analytic))
        return closest <= KINK_AGREEMENT * jump

    @property
    def smooth_side(self) -> int:
        """At a kink, +1 or −1: the side of θ whose step did not cross it; else 0."""
        if not self.kink:
            return 0
        forward, backward = self.forward, self.backward
        if abs(forward - self.analytic) <= abs(backward - self.analytic):
            return 1
        return -1

    @property
    def numeric(self) -> float:
        """The finite-difference estimate of ∇J·v to compare with `analytic`.

        The central difference; at a kink, the one-sided difference on the side
        of θ that did not cross it, of second order when `far` is known
        ((∓3J(θ) ± 4J(θ±εv) ∓ J(θ±2εv)) / 2ε), of first order otherwise.
        """
        side = self.smooth_side
        if side == 0:
            return self.central
        near = self.plus if side > 0 else self.minus
        if self.far is None:
            return side * (near - self.center) / self.epsilon
        return side * (4 * near - 3 * self.center - self.far) / (2 * self.epsilon)


def compare(
    probes: Sequence[Probe],
    thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS,
) -> tuple[float, str]:
    """Relative error and verdict of a group of probes.

    Args:
        probes: the directions checked together (one variable's, or all).
        thresholds: the band bounds. Defaults to `(1e-7, 1e-5, 1e-3)`.

    Returns:
        `(relative_error, verdict)`; `(0.0, "great")` for no probes.
    """
    if not probes:
        return 0.0, "great"
    numeric = [p.numeric for p in probes]
    analytic = [p.analytic for p in probes]
    noise = float(np.linalg.norm([p.noise for p in probes]))
    error = relative_error(numeric, analytic, floor=NOISE_FLOOR_FACTOR * noise)
    return error, verdict(error, thresholds)
