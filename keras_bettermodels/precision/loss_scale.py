"""From loss-scale readings to skipped steps and collapse findings. Pure Python.

Keras 3's `LossScaleOptimizer` multiplies the loss by a dynamic scale (2**15
at first) before the gradients are computed in float16. When a gradient comes
out non-finite it skips the step, halves the scale and, since the inner
optimizer never runs, does not advance `optimizer.iterations`; after 2000
finite steps in a row it doubles the scale. It puts no floor under the scale.

So between two readings of the optimizer,

    skipped steps = training steps run - optimizer iterations gained,

and a scale below 1, or one that fell at several readings in a row, means the
gradients are non-finite at any scale: an overflow (a value past 65504) or a
NaN in the forward pass, not the underflow that loss scaling is there for.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from keras_bettermodels import _validation
from keras_bettermodels.precision import findings as findings_lib
from keras_bettermodels.precision.findings import Finding

__all__ = [
    "COLLAPSE_CHECKS",
    "SKIPPED_WARNING_SHARE",
    "LossScaleCheck",
    "LossScaleReport",
    "analyze_loss_scale",
    "skipped_steps",
]

#: A scale that fell at this many readings in a row is collapsing.
COLLAPSE_CHECKS = 3
#: A share of skipped steps above this, between two readings, is a warning.
SKIPPED_WARNING_SHARE = 0.05

_OVERFLOW_FIX = (
    "Look for activations that overflow float16 (values past 65504): compute "
    'that layer in float32 with `dtype="float32"`; check the inputs for NaN '
    "or infinite values; or lower the learning rate."
)


def skipped_steps(steps_run: int, iterations_gained: int) -> int:
    """Returns the steps a `LossScaleOptimizer` skipped between two readings.

    Args:
        steps_run: training steps run between the readings.
        iterations_gained: how much `optimizer.iterations` grew meanwhile.

    Returns:
        `steps_run - iterations_gained`, never below 0.
    """
    return max(0, int(steps_run) - int(iterations_gained))


_MAX_ROWS = 8  # readings a printed report shows in full


@dataclass(frozen=True)
class LossScaleCheck:
    """One reading of the optimizer, taken after some training steps.

    Args:
        step: where the reading was taken (an epoch, or a global step): the
            x-axis for TensorBoard.
        steps_run: training steps run since the previous reading.
        iterations_gained: how much `optimizer.iterations` grew since the
            previous reading.
        scale: the dynamic loss scale now; `None` without loss scaling.
        label: how messages name the interval, e.g. `"epoch 3"`. Defaults to
            `"check <step>"`.
    """

    step: int
    steps_run: int
    iterations_gained: int
    scale: float | None = None
    label: str = ""

    @property
    def skipped(self) -> int:
        """Steps skipped since the previous reading."""
        return skipped_steps(self.steps_run, self.iterations_gained)

    @property
    def name(self) -> str:
        """The interval's name in messages."""
        return self.label or f"check {self.step}"


@dataclass(frozen=True)
class LossScaleReport:
    """What a series of loss-scale readings says.

    Attributes:
        checks: the readings, oldest first.
        steps_run: training steps run over all readings.
        skipped_steps: steps skipped over all readings.
        skipped_share: `skipped_steps / steps_run` (0 when no step ran).
        scale: the latest loss scale, or `None` without loss scaling.
        falling_checks: at how many readings in a row, up to the latest, the
            scale fell.
        findings: what the latest reading adds: `skipped-steps` when steps
            were skipped since the previous one, `loss-scale-collapse` when
            the scale has just fallen below 1 or fallen at `collapse_checks`
            readings in a row.
    """

    checks: tuple[LossScaleCheck, ...]
    steps_run: int
    skipped_steps: int
    skipped_share: float
    scale: float | None
    falling_checks: int
    findings: tuple[Finding, ...]

    def __str__(self) -> str:
        """A table, one row per reading (the first and last few of many)."""
        scale = "no loss scaling" if self.scale is None else f"scale {self.scale:g}"
        lines = [
            f"Loss scale: {len(self.checks)} reading(s), {self.steps_run} steps run, "
            f"{self.skipped_steps} skipped ({self.skipped_share:.1%}); {scale}"
        ]
        rows: list[LossScaleCheck | None] = list(self.checks)
        if len(rows) > _MAX_ROWS:
            rows = [*rows[:3], None, *rows[-3:]]
        width = max([len("reading"), *(len(c.name) for c in rows if c is not None)])
        header = f"{'reading':<{width}} {'steps':>7} {'skipped':>8} {'scale':>10}"
        lines += [header, "-" * len(header)]
        for check in rows:
            if check is None:
                lines.append("...")
                continue
            shown = "-" if check.scale is None else f"{check.scale:g}"
            lines.append(
                f"{check.name:<{width}} {check.steps_run:>7} {check.skipped:>8} "
                f"{shown:>10}"
            )
        lines += [f"- {finding}" for finding in self.findings]
        return "\n".join(lines)


def _falling_run(scales: Sequence[float | None]) -> int:
    run = 0
    for previous, current in itertools.pairwise(scales):
        falling = previous is not None and current is not None and current < previous
        run = run + 1 if falling else 0
    return run


def _coming_down(checks: Sequence[LossScaleCheck]) -> bool:
    """Whether every skipped step so far brought the scale down from its start.

    That is the start of every run: the scale starts high (2**15) and halves
    at each skipped step until the gradients fit in float16. It holds while
    every reading that ran steps skipped some and lowered the scale, still
    at 1 or above; a clean reading, a rise (the scale grew after its growth
    interval of clean steps) or a scale below 1 ends it.
    """
    ran = [check for check in checks if check.steps_run]
    if not ran or any(check.skipped == 0 for check in ran):
        return False
    scales = [check.scale for check in checks if check.scale is not None]
    if len(scales) < len(checks) or scales[-1] < 1:
        return False
    return all(later < earlier for earlier, later in itertools.pairwise(scales))


def _collapse_state(scales: Sequence[float | None], collapse_checks: int) -> str | None:
    """`"below-one"`, `"falling"` or `None` for the latest of `scales`."""
    if not scales or scales[-1] is None:
        return None
    if scales[-1] < 1:
        return "below-one"
    if _falling_run(scales) >= collapse_checks:
        return "falling"
    return None


def analyze_loss_scale(
    checks: Sequence[LossScaleCheck],
    *,
    collapse_checks: int = COLLAPSE_CHECKS,
    warning_share: float = SKIPPED_WARNING_SHARE,
) -> LossScaleReport:
    """Turns loss-scale readings into skipped-step counts and findings.

    Args:
        checks: the readings so far, oldest first. The first may have
            `steps_run=0` (a reading before training: the starting scale).
        collapse_checks: a scale that fell at this many readings in a row is
            reported as collapsing. Defaults to `3`.
        warning_share: skipped steps above this share of the steps since the
            previous reading are a warning, not an info, unless they are the
            start of the run: while every reading has skipped steps and
            lowered the scale (still at 1 or above), the scale is coming down
            from its starting value to where the gradients fit, as it does in
            every run, and the skips are an info. Defaults to `0.05`.

    Returns:
        A `LossScaleReport`; its `findings` are about the latest reading only,
        so calling this after every reading reports each thing once.

    Raises:
        ValueError: for `collapse_checks` below 1.
    """
    _validation.check_int("collapse_checks", collapse_checks, minimum=1)
    _validation.check_number("warning_share", warning_share)
    checks = tuple(checks)
    steps_run = sum(check.steps_run for check in checks)
    skipped = sum(check.skipped for check in checks)
    share = skipped / steps_run if steps_run else 0.0
    scales = [check.scale for check in checks]
    found: list[Finding] = []
    if checks:
        latest = checks[-1]
        scale_text = (
            "" if latest.scale is None else f" The loss scale is now {latest.scale:g}."
        )
        if latest.skipped:
            latest_share = latest.skipped / latest.steps_run
            starting = _coming_down(checks)
            if starting:
                scale_text += (
                    " Every reading so far skipped steps and lowered the scale: "
                    "the LossScaleOptimizer is still lowering it from its start "
                    "to where the gradients fit in float16."
                )
            found.append(
                Finding(
                    findings_lib.SKIPPED_STEPS,
                    "warning"
                    if latest_share > warning_share and not starting
                    else "info",
                    f"The LossScaleOptimizer skipped {latest.skipped} of "
                    f"{latest.steps_run} training steps ({latest_share:.1%}) in "
                    f"{latest.name} (non-finite gradients); {skipped} of "
                    f"{steps_run} ({share:.1%}) so far.{scale_text}",
                    "A few skipped steps at the start are normal: the scale "
                    "starts at 2**15 and halves until the gradients fit in "
                    "float16. Many mean the gradients are non-finite at any "
                    "scale. " + _OVERFLOW_FIX,
                )
            )
        state = _collapse_state(scales, collapse_checks)
        if state is not None and state != _collapse_state(scales[:-1], collapse_checks):
            falling = _falling_run(scales)
            if state == "below-one":
                message = (
                    f"The loss scale fell below 1 ({latest.scale:g}) in "
                    f"{latest.name}: the LossScaleOptimizer keeps halving it "
                    "because the gradients are non-finite at any scale, so it "
                    "skips nearly every step (Keras puts no floor under the "
                    "scale)."
                )
            else:
                message = (
                    f"The loss scale fell at {falling} readings in a row, to "
                    f"{latest.scale:g} in {latest.name}: the gradients keep "
                    "overflowing and the scale is collapsing."
                )
            found.append(
                Finding(
                    findings_lib.LOSS_SCALE_COLLAPSE,
                    "error" if state == "below-one" else "warning",
                    message,
                    _OVERFLOW_FIX,
                )
            )
    return LossScaleReport(
        checks=checks,
        steps_run=steps_run,
        skipped_steps=skipped,
        skipped_share=share,
        scale=scales[-1] if scales else None,
        falling_checks=_falling_run(scales),
        findings=tuple(found),
    )
