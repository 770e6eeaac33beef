"""`Finding`: one thing the mixed-precision audit or guard has to say.

Pure Python: nothing here imports Keras or a backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from keras_bettermodels import _validation

__all__ = [
    "AUDIT_CODES",
    "CODES",
    "DIMS_NOT_MULTIPLE_OF_8",
    "FLOAT16_OVERFLOW",
    "HARDWARE_NO_SPEEDUP",
    "LEVELS",
    "LOSS_NOT_SCALED",
    "LOSS_SCALE_COLLAPSE",
    "NONFINITE_LOSS",
    "NONFINITE_WEIGHTS",
    "NO_MIXED_POLICY",
    "OUTPUT_NOT_FLOAT32",
    "RUNTIME_CODES",
    "SKIPPED_STEPS",
    "SMALL_MODEL",
    "Finding",
    "sort_findings",
]

#: A model output (or its final softmax) computes in float16 / bfloat16.
OUTPUT_NOT_FLOAT32 = "output-not-float32"
#: The policy is mixed but no device here runs it faster.
HARDWARE_NO_SPEEDUP = "hardware-no-speedup"
#: Fewer parameters than `min_params`: speedups tend to be small.
SMALL_MODEL = "small-model"
#: Units, filters, head sizes or the batch size are not multiples of 8 (128 on TPU).
DIMS_NOT_MULTIPLE_OF_8 = "dims-not-multiple-of-8"
#: `mixed_float16` without a `LossScaleOptimizer`.
LOSS_NOT_SCALED = "loss-not-scaled"
#: The model computes in float32: nothing to guard.
NO_MIXED_POLICY = "no-mixed-policy"
#: Training steps the `LossScaleOptimizer` skipped (non-finite gradients).
SKIPPED_STEPS = "skipped-steps"
#: The dynamic loss scale fell below 1 or kept halving.
LOSS_SCALE_COLLAPSE = "loss-scale-collapse"
#: The training loss became NaN or infinite.
NONFINITE_LOSS = "nonfinite-loss"
#: A weight or optimizer variable became NaN or infinite (the loss may not show it).
NONFINITE_WEIGHTS = "nonfinite-weights"

#: The first layer, in forward order, whose outputs or gradient pass float16's
#: range on the guard's sample batch (`keras_bettermodels.health`).
FLOAT16_OVERFLOW = "float16-overflow"

#: Codes `audit` reports, before training.
AUDIT_CODES = (
    OUTPUT_NOT_FLOAT32,
    HARDWARE_NO_SPEEDUP,
    SMALL_MODEL,
    DIMS_NOT_MULTIPLE_OF_8,
    LOSS_NOT_SCALED,
    NO_MIXED_POLICY,
)
#: Codes `MixedPrecisionGuard` reports while training.
RUNTIME_CODES = (
    SKIPPED_STEPS,
    LOSS_SCALE_COLLAPSE,
    NONFINITE_LOSS,
    NONFINITE_WEIGHTS,
    FLOAT16_OVERFLOW,
)
CODES = AUDIT_CODES + RUNTIME_CODES
#: Levels, most severe first.
LEVELS = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One thing the mixed-precision audit or guard has to say, and its fix.

    Args:
        code: what was found, one of `CODES`: `"output-not-float32"`,
            `"hardware-no-speedup"`, `"small-model"`,
            `"dims-not-multiple-of-8"`, `"loss-not-scaled"`,
            `"no-mixed-policy"`, and while training `"skipped-steps"`,
            `"loss-scale-collapse"`, `"nonfinite-loss"`,
            `"nonfinite-weights"`, `"float16-overflow"`.
        level: `"error"` (training is broken or about to be), `"warning"`
            (it works, but not as intended) or `"info"`.
        message: what was found, naming the layers and values involved.
        fix: what to do about it, with code where there is code to write;
            empty when there is nothing to do.

    Raises:
        ValueError: for an unknown `code` or `level`.

    Example:

    ```python
    for finding in keras_bettermodels.precision.audit(model):
        print(finding)  # "[warning] output-not-float32: ... Fix: ..."
    ```
    """

    code: str
    level: str
    message: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(
                _validation.invalid_value("code", f"one of {CODES}", self.code)
            )
        if self.level not in LEVELS:
            raise ValueError(
                _validation.invalid_value("level", f"one of {LEVELS}", self.level)
            )

    def __str__(self) -> str:
        text = f"[{self.level}] {self.code}: {self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text

    def to_markdown(self) -> str:
        """Returns the finding as Markdown (for TensorBoard's Text tab)."""
        text = f"**{self.level}** `{self.code}`: {self.message}"
        return f"{text}\n\n*Fix:* {self.fix}" if self.fix else text


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Returns `findings` most severe first, keeping their order within a level."""
    return sorted(findings, key=lambda finding: LEVELS.index(finding.level))
