"""HealthReport, LayerStats and Finding: tables, and the dict round trip."""

from __future__ import annotations

import json
import math

import pytest

from keras_bettermodels.health.report import (
    CODES,
    REPORT_VERSION,
    STATISTICS,
    Finding,
    HealthReport,
    LayerStats,
)

pytestmark = pytest.mark.backend_independent


def _report() -> HealthReport:
    rows = tuple(
        LayerStats(step, layer, 10, grad_norm=0.5, activation_abs_max=math.inf)
        for step in (0, 100)
        for layer in ("m/a", "m/b")
    )
    findings = (
        Finding("dead-units", "m/a", 0, "half dead", 0.5),
        Finding("loss-spike", None, 57, "jump", 12.0),
    )
    return HealthReport(("m/a", "m/b"), rows, findings, "mixed_float16", ((0, 1.5),))


def test_report_round_trips_through_json():
    report = _report()
    document = json.loads(json.dumps(report.to_dict()))
    assert HealthReport.from_dict(document) == report


def test_to_dict_keys_are_the_tab_s_contract():
    document = _report().to_dict()
    assert set(document) == {
        "version",
        "policy",
        "num_findings",
        "num_steps",
        "statistics",
        "layers",
        "steps",
        "rows",
        "findings",
        "losses",
    }
    assert document["version"] == REPORT_VERSION
    assert document["statistics"] == list(STATISTICS)
    assert document["steps"] == [0, 100]
    assert set(document["rows"][0]) == {"step", "layer", "params", *STATISTICS}
    assert set(document["findings"][0]) == {"code", "layer", "step", "message", "value"}


def test_table_is_the_last_step_by_default():
    report = _report()
    assert [row.step for row in report.table()] == [100, 100]
    assert [row.layer for row in report.table(0)] == ["m/a", "m/b"]
    assert report.codes() == ["dead-units", "loss-spike"]
    assert "dead-units in `m/a` at step 0" in str(report)


def test_a_newer_report_is_refused():
    with pytest.raises(ValueError, match="Upgrade"):
        HealthReport.from_dict({"version": REPORT_VERSION + 1})


def test_unknown_code_is_refused():
    with pytest.raises(ValueError, match="Invalid value for argument `code`"):
        Finding("nan", None, 0, "")
    assert "float16-overflow" in CODES


def test_grad_rms_is_per_parameter():
    assert LayerStats(0, "a", 4, grad_norm=2.0).grad_rms == 1.0
    assert LayerStats(0, "a", 4).grad_rms is None
