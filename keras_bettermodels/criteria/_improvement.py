"""The one comparison of early stopping: does a value improve on a reference?

Keras' bookkeeping (`best`, `wait`), the `Patience` criterion and the
thresholds all ask it. Values are signed, lower is better: the caller negates a
maximized metric, so one comparison serves both modes.
"""

from __future__ import annotations

import math

# (significand bits, smallest normal frexp exponent, first overflowing exponent)
_FORMATS = {
    "float16": (11, -13, 16),
    "bfloat16": (8, -125, 128),
    "float32": (24, -125, 128),
}
PRECISIONS = ("float64", *_FORMATS)
MIN_DELTA_MODES = ("abs", "rel")


def round_to(x: float, precision: str) -> float:
    """`x` rounded to the nearest `precision` float, ties to even, as a cast does."""
    if precision == "float64" or x == 0 or not math.isfinite(x):
        return x
    bits, min_exponent, max_exponent = _FORMATS[precision]
    exponent = max(math.frexp(x)[1], min_exponent)  # subnormals keep fewer bits
    rounded = math.ldexp(round(math.ldexp(x, bits - exponent)), exponent - bits)
    if abs(rounded) >= math.ldexp(1.0, max_exponent):
        return math.copysign(math.inf, x)
    return rounded


def improves(
    value: float,
    reference: float | None,
    min_delta: float = 0.0,
    precision: str = "float64",
    *,
    min_delta_mode: str = "abs",
) -> bool:
    """Whether `value` is below `reference` by more than `min_delta`.

    Keras' `_is_improvement` on signed values: anything improves on no
    reference, and both sides are compared in `precision`, the float type Keras
    compares the logged values in (its `floatx`, float32, for Python floats), so
    that ties round as Keras' do. NaN improves on nothing but `None`.

    Args:
        value: the signed value (lower is better).
        reference: what it must beat (signed), or `None`.
        min_delta: the margin, `>= 0`. Defaults to `0`.
        precision: `"float64"`, `"float32"`, `"float16"` or `"bfloat16"`.
            Defaults to `"float64"` (exact).
        min_delta_mode: `"abs"`: the margin is `min_delta`, as Keras'; `"rel"`:
            it is `min_delta * |reference|` (skorch's `threshold_mode="rel"`).
            Defaults to `"abs"`.
    """
    if reference is None:
        return True
    if min_delta_mode == "rel":
        min_delta = min_delta * abs(reference)
    return round_to(value + min_delta, precision) < round_to(reference, precision)
