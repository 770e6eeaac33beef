"""`Finding`: codes, levels, wording; and what importing the package costs."""

from __future__ import annotations

import dataclasses

import pytest

from keras_bettermodels.precision import findings
from keras_bettermodels.precision.findings import Finding, sort_findings
from tests._imports import heavy_modules_after

pytestmark = pytest.mark.backend_independent


def test_the_issue_s_codes_and_levels():
    assert set(findings.CODES) == {
        "output-not-float32",
        "hardware-no-speedup",
        "small-model",
        "dims-not-multiple-of-8",
        "loss-not-scaled",
        "no-mixed-policy",
        "skipped-steps",
        "loss-scale-collapse",
        "nonfinite-loss",
        "nonfinite-weights",
        "float16-overflow",  # the layer TrainingHealth's probe names (#28)
    }
    assert findings.LEVELS == ("error", "warning", "info")


def test_a_finding_is_a_frozen_dataclass_with_four_fields():
    finding = Finding("small-model", "info", "Small.", "Measure it.")
    assert [f.name for f in dataclasses.fields(Finding)] == [
        "code",
        "level",
        "message",
        "fix",
    ]
    assert finding == Finding(
        code="small-model", level="info", message="Small.", fix="Measure it."
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.level = "error"  # type: ignore[misc]


def test_str_and_markdown_show_level_code_message_and_fix():
    finding = Finding("loss-not-scaled", "warning", "No scaling.", "Wrap it.")
    assert str(finding) == "[warning] loss-not-scaled: No scaling. Fix: Wrap it."
    assert finding.to_markdown() == (
        "**warning** `loss-not-scaled`: No scaling.\n\n*Fix:* Wrap it."
    )
    assert str(Finding("no-mixed-policy", "info", "Float32.")) == (
        "[info] no-mixed-policy: Float32."
    )


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("level", ("small-model", "fatal", "m", "f")),
        ("code", ("tiny-model", "info", "m", "f")),
    ],
)
def test_unknown_codes_and_levels_are_refused(field, arguments):
    with pytest.raises(ValueError, match=f"Invalid value for argument `{field}`"):
        Finding(*arguments)


def test_sort_puts_errors_first_and_keeps_order_within_a_level():
    a = Finding("small-model", "info", "a")
    b = Finding("output-not-float32", "warning", "b")
    c = Finding("nonfinite-loss", "error", "c")
    d = Finding("dims-not-multiple-of-8", "info", "d")
    assert sort_findings([a, b, c, d]) == [c, b, a, d]


def test_importing_the_precision_package_imports_no_keras_nor_backend():
    # The GPU benchmark and TensorBoard-side code import it cheaply.
    assert heavy_modules_after("import keras_bettermodels.precision") == []
