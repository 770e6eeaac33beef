"""The decisions: which layer's statistics make a finding, and why.

Pure functions over the `LayerStats` rows of one sampled step, in forward
order. Thresholds and their sources:

- **float16's range**: the largest finite float16 is 65,504 and its smallest
  subnormal 2^-24 ≈ 5.96e-8 (IEEE 754 binary16). A value past 65,504 becomes
  infinite in float16; a non-zero value below 2^-24 becomes 0. Micikevicius
  et al. (2018) show both: activations that overflow, and gradients that
  underflow (the reason for loss scaling). `float16-overflow` is the *first*
  layer, in forward order, whose outputs pass 65,504 (or are not finite):
  the layers after it only inherit its infinities, and the gradient of every
  layer, before it too, is NaN then. Only when no layer's outputs overflow
  are the gradients looked at, again the first layer in forward order.
  `float16-underflow` is the first layer where at least
  `UNDERFLOW_SHARE` (10 %) of the non-zero outputs or gradient values are
  below 2^-24 — the gradient's once multiplied by the loss scale backprop
  runs at (a `LossScaleOptimizer`'s initial scale, 2^15 by default, also for
  "would under `mixed_float16`"; 1 without loss scaling); Micikevicius et al.
  found most of the gradient values lost that way in their SSD example
  without loss scaling, this project flags a tenth.
- **Dead units**: a unit is dead on a batch when it is exactly 0 for every
  sample (a ReLU whose input stays negative). CS231n (Karpathy, "Neural
  Networks Part 3") warns that "as much as 40 % of your network can be
  dead" after a too-high learning rate; `DEAD_SHARE` flags a layer from
  40 % of its units (a layer of one unit from that one).
- **Exploding and vanishing gradients**, relative to the other layers
  (Glorot & Bengio 2010 compare the gradients' spread layer by layer;
  Pascanu et al. 2013 describe both failures): each layer's root mean
  square gradient per parameter (‖g‖ / √params, so a big layer is not
  penalised for its size) is compared to the median over the layers with
  trainable weights. Above `EXPLODING_RATIO` (100×) the median, or not
  finite, is `exploding-gradients`; below `VANISHING_RATIO` (1/1,000 of the
  median) is `vanishing-gradients`. Healthy networks keep their layers
  within an order of magnitude or two of each other (Glorot & Bengio's
  normalized initialisation aims at equal variances); two orders up, or
  three down, is this project's choice. At least `MIN_LAYERS` (3) layers
  with a gradient are needed: with fewer there is no "other layers".

References:
    Paulius Micikevicius et al., "Mixed Precision Training", ICLR 2018.
    Xavier Glorot, Yoshua Bengio, "Understanding the difficulty of training
    deep feedforward neural networks", AISTATS 2010.
    Razvan Pascanu, Tomas Mikolov, Yoshua Bengio, "On the difficulty of
    training recurrent neural networks", ICML 2013.
    Andrej Karpathy, CS231n notes, "Neural Networks Part 1: Setting up the
    Architecture" (dying ReLUs).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from keras_bettermodels.health.report import (
    DEAD_UNITS,
    EXPLODING_GRADIENTS,
    FLOAT16_OVERFLOW,
    FLOAT16_UNDERFLOW,
    VANISHING_GRADIENTS,
    Finding,
    LayerStats,
)

__all__ = [
    "DEAD_SHARE",
    "EXPLODING_RATIO",
    "FLOAT16_MAX",
    "FLOAT16_TINY",
    "MIN_LAYERS",
    "UNDERFLOW_SHARE",
    "VANISHING_RATIO",
    "dead_units",
    "diagnose",
    "float16_range",
    "gradient_spread",
]

#: The largest finite float16.
FLOAT16_MAX = 65504.0
#: float16's smallest subnormal, 2^-24: smaller non-zero values become 0.
FLOAT16_TINY = 2.0**-24
#: `float16-underflow` from this share of non-zero values below `FLOAT16_TINY`.
UNDERFLOW_SHARE = 0.1
#: `dead-units` from this share of a layer's units.
DEAD_SHARE = 0.4
#: `exploding-gradients` above this multiple of the median layer's RMS gradient.
EXPLODING_RATIO = 100.0
#: `vanishing-gradients` below this fraction of the median layer's RMS gradient.
VANISHING_RATIO = 1e-3
#: Layers with a gradient needed to compare them.
MIN_LAYERS = 3

_OVERFLOW_FIX = (
    'Compute this layer in float32 (`dtype="float32"`), normalise its inputs, '
    "or keep its weights small (initialisation, a smaller learning rate); keep "
    "the model's outputs in float32."
)
_UNDERFLOW_FIX = (
    "Keep loss scaling on (`compile(auto_scale_loss=True)`, the default under "
    "mixed_float16), or compute this layer in float32."
)


def _too_big(value: float | None) -> bool:
    return value is not None and not (abs(value) <= FLOAT16_MAX)  # NaN too


def _first_overflow(
    rows: Sequence[LayerStats], name: str, attribute: str
) -> tuple[LayerStats, str, float] | None:
    for row in rows:
        value = getattr(row, attribute)
        if _too_big(value):
            return row, name, value
    return None


def _is_float16(policy: str) -> bool:
    return "float16" in policy and "bfloat16" not in policy


def float16_range(rows: Sequence[LayerStats], policy: str) -> list[Finding]:
    """The first layer that overflows float16, and the first that underflows.

    Args:
        rows: one step's rows, in forward order.
        policy: the dtype policy's name. Under a bfloat16 or float64 policy
            float16's range does not apply: no finding. Under float32, a
            finding says the layer *would* overflow under `mixed_float16`.

    Returns:
        At most one `float16-overflow` and one `float16-underflow`.
    """
    if "bfloat16" in policy or "float64" in policy:
        return []
    now = _is_float16(policy)
    found: list[Finding] = []
    overflow = _first_overflow(rows, "outputs", "activation_abs_max") or (
        _first_overflow(rows, "gradient", "gradient_abs_max")
    )
    if overflow is not None:
        row, name, value = overflow
        verb = (
            "reach" if now else "would overflow float16 under mixed_float16: they reach"
        )
        shown = f"{value:.4g}" if math.isfinite(value) else "inf or NaN"
        found.append(
            Finding(
                FLOAT16_OVERFLOW,
                row.layer,
                row.step,
                f"The layer's {name} {verb} {shown}, past float16's largest "
                f"value {FLOAT16_MAX:.0f}; it is the first layer in forward "
                f"order to do so. {_OVERFLOW_FIX}",
                value,
            )
        )
    for row in rows:
        shares = [
            (name, share)
            for name, share in (
                ("outputs", row.activation_underflow),
                ("gradient", row.gradient_underflow),
            )
            if share is not None and share >= UNDERFLOW_SHARE
        ]
        if shares:
            name, share = shares[0]
            mood = "are" if now else "would be, under mixed_float16,"
            if name == "gradient":  # measured against 2^-24 / the loss scale
                name = "gradient, times the loss scale,"
            found.append(
                Finding(
                    FLOAT16_UNDERFLOW,
                    row.layer,
                    row.step,
                    f"{share:.0%} of the non-zero values of the layer's {name} "
                    f"{mood} below float16's smallest subnormal (2^-24) and "
                    f"flushed to 0. {_UNDERFLOW_FIX}",
                    share,
                )
            )
            break
    return found


def dead_units(rows: Sequence[LayerStats]) -> list[Finding]:
    """A `dead-units` finding per layer with at least `DEAD_SHARE` dead units."""
    found = []
    for row in rows:
        share = row.dead_fraction
        if share is None or share < DEAD_SHARE:
            continue
        found.append(
            Finding(
                DEAD_UNITS,
                row.layer,
                row.step,
                f"{share:.0%} of the layer's units are 0 on every sample of the "
                "batch: they pass no signal and get no gradient. Check the "
                "initialisation (a bias that keeps a ReLU's input negative; "
                "He initialisation for ReLUs), lower the learning rate, or use "
                "a leaky activation (`leaky_relu`, `gelu`).",
                share,
            )
        )
    return found


def gradient_spread(rows: Sequence[LayerStats]) -> list[Finding]:
    """`exploding-gradients` and `vanishing-gradients`, relative to the median layer."""
    measured = [(row, row.grad_rms) for row in rows if row.grad_rms is not None]
    finite = [rms for _, rms in measured if math.isfinite(rms)]
    found: list[Finding] = []
    if len(finite) < MIN_LAYERS:
        return found
    median = statistics.median(finite)
    for row, rms in measured:
        if not math.isfinite(rms) or (median > 0 and rms > EXPLODING_RATIO * median):
            ratio = rms / median if median > 0 else math.inf
            found.append(
                Finding(
                    EXPLODING_GRADIENTS,
                    row.layer,
                    row.step,
                    f"The layer's gradient per parameter is {ratio:.3g}× the "
                    f"median layer's (more than {EXPLODING_RATIO:.0f}×). Lower "
                    "the learning rate, clip gradients (`clipnorm`), check the "
                    "initialisation and normalise the inputs.",
                    ratio,
                )
            )
        elif median > 0 and rms < VANISHING_RATIO * median:
            ratio = rms / median
            found.append(
                Finding(
                    VANISHING_GRADIENTS,
                    row.layer,
                    row.step,
                    f"The layer's gradient per parameter is {ratio:.3g}× the "
                    f"median layer's (less than {VANISHING_RATIO:g}×): it "
                    "barely learns. Check the initialisation (Glorot or He "
                    "for the activation), saturating activations (sigmoid, "
                    "tanh) and dead units before it; consider residual "
                    "connections or normalisation.",
                    ratio,
                )
            )
    return found


def diagnose(rows: Sequence[LayerStats], policy: str) -> list[Finding]:
    """Every finding of one sampled step's rows (in forward order).

    Args:
        rows: the rows of one step, in forward order.
        policy: the model's dtype policy's name.

    Returns:
        float16's range first, then dead units, then the gradients' spread.
    """
    return float16_range(rows, policy) + dead_units(rows) + gradient_spread(rows)
