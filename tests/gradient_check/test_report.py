"""GradientCheckReport and VariableCheck: table, dict, JSON round trip."""

from __future__ import annotations

import json
import math

import pytest

from keras_bettermodels.gradient_check.report import GradientCheckReport, VariableCheck
from tests._imports import heavy_modules_after

pytestmark = pytest.mark.backend_independent


def _report(verdict="great", kinks=()):
    variables = [
        VariableCheck("dense/kernel", (4, 3), 2e-10, "great", checked=2),
        VariableCheck(
            "dense/bias", (3,), 0.5 if verdict == "bug" else 3e-10, verdict, 2, 1
        ),
    ]
    return GradientCheckReport(
        relative_error=0.1 if verdict == "bug" else 2e-10,
        verdict=verdict,
        variables=variables,
        kinks=list(kinks),
        method="directional",
        epsilon=1e-6,
        loss=0.6931,
        num_parameters=15,
        num_evaluations=12,
        elapsed=0.01,
        backend="jax",
        all_variables=VariableCheck("(all variables)", (15,), 1e-10, "great", 2),
        num_directions=2,
        seed=0,
    )


def test_passed_means_great_or_ok():
    assert _report("great").passed and _report("ok").passed
    assert not _report("check").passed and not _report("bug").passed
    assert VariableCheck("v", (2, 3), 0.1, "bug").size == 6


def test_str_shows_the_variables_and_the_reference_table():
    text = str(_report("great"))
    assert "Gradient check passed: relative error 2.00e-10 (great)" in text
    assert "dense/kernel" in text and "(4, 3)" in text and "(all variables)" in text
    for line in ("< 1e-07", "1e-07 .. 1e-05", "1e-05 .. 1e-03", ">= 1e-03"):
        assert line in text
    assert "there is probably a bug" in text
    great_row = next(
        line for line in text.splitlines() if "the gradient is right" in line
    )
    assert great_row.endswith("<-")


def test_the_headline_number_is_the_one_whose_band_is_the_verdict():
    report = _report("bug")
    report = GradientCheckReport(
        **{**report.__dict__, "relative_error": 0.5, "set_by": "dense/bias"}
    )
    assert str(report).splitlines()[0] == (
        "Gradient check FAILED: relative error 5.00e-01 (bug), set by dense/bias"
    )
    assert ", set by" not in str(_report("great")).splitlines()[0]


def test_a_nudged_check_says_where_it_ran_and_why():
    report = GradientCheckReport(
        **{**_report("great").__dict__, "nudge": 1e-3, "kinks": ["conv2d/bias"]}
    )
    text = str(report)
    assert "Kinks at the weights: steps in conv2d/bias" in text
    assert "nudged by ±0.001" in text
    assert "Kinks (a step crossed" not in text
    again = GradientCheckReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.nudge == 1e-3 and again == report


def test_str_of_a_failure_names_the_failing_variables():
    text = str(_report("bug", kinks=["dense/bias"]))
    assert text.startswith("Gradient check FAILED")
    assert "Failing: dense/bias (bug)" in text
    assert "Kinks" in text and "(1 crossed a kink)" in text
    bug_row = next(line for line in text.splitlines() if "probably a bug" in line)
    assert bug_row.endswith("<-")


def test_to_dict_is_json_and_round_trips():
    report = _report("bug", kinks=["dense/bias"])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "bug" and data["passed"] is False
    assert data["thresholds"] == {"great": 1e-7, "ok": 1e-5, "check": 1e-3}
    assert data["variables"][1] == {
        "name": "dense/bias",
        "shape": [3],
        "size": 3,
        "relative_error": 0.5,
        "verdict": "bug",
        "checked": 2,
        "kinks": 1,
    }
    assert GradientCheckReport.from_dict(data) == report


def test_a_non_finite_error_survives_the_round_trip():
    report = GradientCheckReport(math.inf, "bug", [], loss=math.nan)
    back = GradientCheckReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert back.relative_error == math.inf and math.isnan(back.loss)


def test_reading_reports_imports_no_backend():
    # The TensorBoard plugin reads reports: it must not pull in Keras.
    assert (
        heavy_modules_after(
            "from keras_bettermodels.gradient_check.report import GradientCheckReport"
        )
        == []
    )
