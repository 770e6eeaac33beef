"""The Gradient check plugin's backend: routes through werkzeug, `*_impl` directly.

What both plugins share is in test_plugin_base.py (routes, bad data, imports)
and test_static.py (the frontend's files); here, what is particular to
gradient-check reports.
"""

from __future__ import annotations

import json

import pytest

from keras_bettermodels.tensorboard import metadata, summary
from keras_bettermodels.tensorboard.gradient_check_plugin import GradientCheckPlugin
from tests.tensorboard import _reports
from tests.tensorboard._app import serve

pytestmark = pytest.mark.backend_independent

TAG = _reports.GRADIENT_CHECK_TAG
GOOD = _reports.GOOD_ERRORS


def _json(response):
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.get_data(as_text=True))


def test_reports_route_serves_the_latest_report_of_each_run(gradient_check_logs):
    root, reports = gradient_check_logs
    served = serve(root, GradientCheckPlugin)
    response = served.get("reports")
    assert response.status_code == 200
    body = _json(response)
    assert body["plugin"] == metadata.GRADIENT_CHECK_PLUGIN
    assert body["protocol_version"] == metadata.PROTOCOL_VERSION
    by_run = {entry["run"]: entry for entry in body["reports"]}
    assert sorted(by_run) == ["buggy", "mlp"]  # the scalars-only run is left out
    mlp = by_run["mlp"]
    assert (mlp["tag"], mlp["steps"], mlp["step"]) == (TAG, [0, 5, 10], 10)
    assert mlp["steps_sampled"] is False
    assert mlp["error"] is None
    # A summary: the headline numbers, never the whole report.
    assert "report" not in mlp and "variables" not in json.dumps(body)
    assert mlp["summary"] == {
        "relative_error": reports[10]["relative_error"],
        "verdict": "great",
        "passed": True,
        "method": "directional",
        "backend": "tensorflow",
    }
    assert mlp["bytes"] == len(json.dumps(reports[10]).encode())
    assert by_run["buggy"]["summary"]["verdict"] == "bug"
    whole = _json(served.get("report", run="buggy", tag=TAG))["report"]
    assert [v["verdict"] for v in whole["variables"]] == ["great", "bug"]


def test_report_route_serves_an_earlier_step(gradient_check_logs):
    root, reports = gradient_check_logs
    served = serve(root, GradientCheckPlugin)
    body = _json(served.get("report", run="mlp", tag=TAG, step=5))
    assert body["step"] == 5
    assert body["report"] == reports[5]
    assert body["report"]["kinks"] == ["dense/kernel"]
    latest = _json(served.get("report", run="mlp", tag=TAG))
    assert latest["step"] == 10


def test_impl_methods_answer_without_a_request(gradient_check_logs):
    root, reports = gradient_check_logs
    from tensorboard import context

    plugin = serve(root, GradientCheckPlugin).plugin
    ctx = context.RequestContext()
    body = plugin.reports_impl(ctx, "")
    assert [entry["run"] for entry in body["reports"]] == ["buggy", "mlp"]
    assert body["reports"][1]["summary"]["verdict"] == reports[10]["verdict"]
    entry = plugin.report_impl(ctx, "", "mlp", TAG, "0")
    assert entry["report"] == reports[0]
    assert entry["steps"] == [0, 5, 10]


def test_the_plugin_is_listed_as_enabled_when_the_logs_hold_reports(
    gradient_check_logs,
):
    served = serve(gradient_check_logs[0], GradientCheckPlugin)
    listing = _json(served.client.get("/data/plugins_listing"))
    entry = listing[metadata.GRADIENT_CHECK_PLUGIN]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "Gradient check"
    assert entry["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": f"/data/plugin/{metadata.GRADIENT_CHECK_PLUGIN}/index.js",
    }


def test_the_frontend_is_served_as_an_es_module(gradient_check_logs):
    served = serve(gradient_check_logs[0], GradientCheckPlugin)
    module = served.get("index.js")
    assert module.status_code == 200
    assert module.headers["Content-Type"].startswith("text/javascript")
    code = module.get_data(as_text=True)
    assert "export async function render()" in code
    assert "innerHTML" not in code and "insertAdjacentHTML" not in code
    common = served.get("static/common.js")
    assert common.status_code == 200
    assert "innerHTML" not in common.get_data(as_text=True)
    own = served.get("static/gradient_check/index.js")
    assert own.get_data(as_text=True) == code
    frontend = served.plugin.frontend_metadata()
    assert frontend.es_module_path == "/index.js"
    assert frontend.tab_name == "Gradient check"


def test_tensorboard_finds_both_plugins_through_the_entry_point():
    from tensorboard import default

    from keras_bettermodels.tensorboard.input_timing_plugin import InputTimingPlugin

    found = default.get_dynamic_plugins()
    assert GradientCheckPlugin in found and InputTimingPlugin in found


def test_a_real_gradient_check_report_is_served_field_for_field(tmp_path):
    report_lib = pytest.importorskip("keras_bettermodels.gradient_check.report")
    variables = [
        report_lib.VariableCheck("dense/kernel", (4, 3), 3e-9, "great", 2, 0),
        report_lib.VariableCheck("dense/bias", (3,), 2e-2, "bug", 2, 1),
    ]
    report = report_lib.GradientCheckReport(
        relative_error=2e-2, verdict="bug", variables=variables, kinks=["dense/bias"]
    )
    document = report.to_dict()
    # The fixtures of these tests have exactly the producer's fields.
    assert set(_reports.gradient_check_report(GOOD)) == set(document)
    assert set(_reports.gradient_check_report(GOOD)["variables"][0]) == set(
        document["variables"][0]
    )
    _reports.write_gradient_check(tmp_path / "real", 0, document)
    summary.close_all()
    from tensorboard.backend import json_util

    served = serve(tmp_path, GradientCheckPlugin)
    entry = _json(served.get("report", run="real", tag=TAG))
    assert entry["report"] == json_util.Cleanse(document)  # NaN loss -> "NaN"
