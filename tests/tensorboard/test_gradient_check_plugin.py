"""The Gradient check plugin's backend: routes through werkzeug, `*_impl` directly.

Also the behaviour both plugins share (`_plugin_base`): bad data never makes a
500, unknown names are a 400 with a JSON error, static routes refuse path
traversal, and importing the plugins imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import json
import math
import os

import pytest

from keras_bettermodels.tensorboard import metadata, summary
from keras_bettermodels.tensorboard.gradient_check_plugin import GradientCheckPlugin
from tests._imports import heavy_modules_after
from tests.tensorboard import _reports
from tests.tensorboard._app import serve

pytestmark = pytest.mark.backend_independent

TAG = _reports.GRADIENT_CHECK_TAG
GOOD = {"dense/kernel": 3e-9, "dense/bias": 2e-9}
BUGGY = {"dense/kernel": 4e-9, "wrong_tanh/kernel": 0.02}


@pytest.fixture
def log_dir(tmp_path):
    """Two runs: `mlp` checked at steps 0, 5 and 10 (a kink at 5), `buggy` once."""
    root = tmp_path / "logs"
    reports = {
        0: _reports.gradient_check_report(GOOD),
        5: _reports.gradient_check_report(
            {**GOOD, "dense/kernel": 2e-6}, kinks=("dense/kernel",)
        ),
        10: _reports.gradient_check_report({**GOOD, "dense/bias": 5e-8}),
    }
    for step, report in reports.items():
        _reports.write_gradient_check(root / "mlp", step, report)
    _reports.write_gradient_check(
        root / "buggy", 0, _reports.gradient_check_report(BUGGY)
    )
    summary.write_scalars(root / "scalars_only", 0, {"loss": 1.0})
    summary.close_all()
    return root, reports


def _json(response):
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.get_data(as_text=True))


def test_reports_route_serves_the_latest_report_of_each_run(log_dir):
    root, reports = log_dir
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


def test_report_route_serves_an_earlier_step(log_dir):
    root, reports = log_dir
    served = serve(root, GradientCheckPlugin)
    body = _json(served.get("report", run="mlp", tag=TAG, step=5))
    assert body["step"] == 5
    assert body["report"] == reports[5]
    assert body["report"]["kinks"] == ["dense/kernel"]
    latest = _json(served.get("report", run="mlp", tag=TAG))
    assert latest["step"] == 10


def test_impl_methods_answer_without_a_request(log_dir):
    root, reports = log_dir
    from tensorboard import context

    plugin = serve(root, GradientCheckPlugin).plugin
    ctx = context.RequestContext()
    body = plugin.reports_impl(ctx, "")
    assert [entry["run"] for entry in body["reports"]] == ["buggy", "mlp"]
    assert body["reports"][1]["summary"]["verdict"] == reports[10]["verdict"]
    entry = plugin.report_impl(ctx, "", "mlp", TAG, "0")
    assert entry["report"] == reports[0]
    assert entry["steps"] == [0, 5, 10]


def test_a_long_run_lists_a_sample_of_steps_and_serves_any_step(tmp_path):
    for step in range(150):
        _reports.write_gradient_check(
            tmp_path / "long",
            step,
            _reports.gradient_check_report({"d/b": step * 1e-9}),
        )
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    (entry,) = _json(served.get("reports"))["reports"]
    assert len(entry["steps"]) == 100 and entry["steps_sampled"] is True
    assert entry["steps"][-1] == entry["step"] == 149
    assert entry["summary"]["relative_error"] == pytest.approx(149e-9)
    missing = min(set(range(150)) - set(entry["steps"]))
    one = _json(served.get("report", run="long", tag=TAG, step=missing))
    assert one["step"] == missing
    assert one["report"]["relative_error"] == pytest.approx(missing * 1e-9)
    assert missing in one["steps"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"run": "nope", "tag": TAG}, "Unknown `run`"),
        ({"run": "scalars_only", "tag": TAG}, "Unknown `run`"),
        ({"run": "mlp", "tag": "nope"}, "Unknown `tag`"),
        ({"tag": TAG}, "Missing argument `run`"),
        ({"run": "mlp"}, "Missing argument `tag`"),
        ({"run": "mlp", "tag": TAG, "step": "x"}, "Expected an integer"),
        ({"run": "mlp", "tag": TAG, "step": "7"}, "Unknown `step`"),
    ],
)
def test_bad_run_tag_or_step_is_a_400_with_a_json_error(log_dir, params, words):
    served = serve(log_dir[0], GradientCheckPlugin)
    response = served.get("report", **params)
    assert response.status_code == 400
    error = _json(response)["error"]
    assert words in error
    assert "Received" in error or "Missing" in error


def test_unknown_run_message_lists_the_runs_that_exist(log_dir):
    served = serve(log_dir[0], GradientCheckPlugin)
    error = _json(served.get("report", run="nope", tag=TAG))["error"]
    assert "'buggy', 'mlp'" in error and "run='nope'" in error


def test_an_empty_log_dir_has_no_reports_and_no_error(tmp_path):
    served = serve(tmp_path, GradientCheckPlugin)
    response = served.get("reports")
    assert response.status_code == 200
    assert _json(response)["reports"] == []
    assert served.plugin.is_active() is False
    listing = _json(served.client.get("/data/plugins_listing"))
    assert listing[metadata.GRADIENT_CHECK_PLUGIN]["enabled"] is False
    assert served.get("report", run="a", tag=TAG).status_code == 400


def test_the_plugin_is_listed_as_enabled_when_the_logs_hold_reports(log_dir):
    served = serve(log_dir[0], GradientCheckPlugin)
    listing = _json(served.client.get("/data/plugins_listing"))
    entry = listing[metadata.GRADIENT_CHECK_PLUGIN]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "Gradient check"
    assert entry["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": f"/data/plugin/{metadata.GRADIENT_CHECK_PLUGIN}/index.js",
    }


def test_a_newer_content_version_is_a_message_not_a_failure(tmp_path):
    newer = metadata.PROTOCOL_VERSION + 1
    report = _reports.gradient_check_report(GOOD)
    _reports.write_gradient_check(tmp_path / "future", 0, report, version=newer)
    _reports.write_gradient_check(tmp_path / "today", 0, report)
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    response = served.get("reports")
    assert response.status_code == 200
    by_run = {entry["run"]: entry for entry in _json(response)["reports"]}
    assert by_run["future"]["summary"] is None
    assert f"version={newer}" in by_run["future"]["error"]
    assert "Upgrade keras-bettermodels" in by_run["future"]["error"]
    assert by_run["today"]["summary"]["verdict"] == report["verdict"]
    single = served.get("report", run="future", tag=TAG)
    assert single.status_code == 200 and _json(single)["report"] is None


def test_an_unreadable_payload_is_a_message_in_its_entry(tmp_path):
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2

    value = summary_pb2.Summary.Value(
        tag=TAG,
        metadata=metadata.create_summary_metadata(metadata.GRADIENT_CHECK_PLUGIN),
        tensor=tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, string_val=[b"{not json"]
        ),
    )
    summary.write_values(tmp_path / "broken", 3, [value])
    summary.close_all()
    response = serve(tmp_path, GradientCheckPlugin).get("reports")
    assert response.status_code == 200
    (entry,) = _json(response)["reports"]
    assert entry["summary"] is None and entry["step"] == 3
    assert "unreadable" in entry["error"] and "not JSON" in entry["error"]


def test_a_truncated_event_file_serves_the_reports_before_the_cut(tmp_path):
    run = tmp_path / "cut"
    for step in range(3):
        _reports.write_gradient_check(run, step, _reports.gradient_check_report(GOOD))
    summary.close_all()
    (path,) = [run / name for name in os.listdir(run)]
    size = path.stat().st_size
    with open(path, "r+b") as file:
        file.truncate(size - 40)  # cuts the last record in half
    response = serve(tmp_path, GradientCheckPlugin).get("reports")
    assert response.status_code == 200
    (entry,) = _json(response)["reports"]
    assert entry["steps"] == [0, 1]
    assert entry["summary"]["verdict"] == "great"


def test_a_garbage_event_file_is_not_a_500(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "events.out.tfevents.1.host").write_bytes(os.urandom(4096))
    _reports.write_gradient_check(
        tmp_path / "fine", 0, _reports.gradient_check_report(GOOD)
    )
    summary.close_all()
    response = serve(tmp_path, GradientCheckPlugin).get("reports")
    assert response.status_code == 200
    assert [entry["run"] for entry in _json(response)["reports"]] == ["fine"]


def test_non_finite_errors_are_sent_as_json_strings(tmp_path):
    report = _reports.gradient_check_report({"dense/kernel": math.nan})
    _reports.write_gradient_check(tmp_path / "nan", 0, report)
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    for route in ("reports", "report"):
        response = served.get(route, run="nan", tag=TAG)
        text = response.get_data(as_text=True)
        assert "NaN" in text and json.loads(text)  # valid JSON for JSON.parse
    (entry,) = _json(served.get("reports"))["reports"]
    assert entry["summary"]["relative_error"] == "NaN"
    whole = _json(served.get("report", run="nan", tag=TAG))["report"]
    assert whole["variables"][0]["relative_error"] == "NaN"


def test_html_in_run_and_variable_names_is_sent_verbatim_as_json(tmp_path):
    name = _reports.XSS
    report = _reports.gradient_check_report({f"{name}/kernel": 1e-9})
    _reports.write_gradient_check(tmp_path / name, 0, report)
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    response = served.get("reports")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    (entry,) = _json(response)["reports"]
    assert entry["run"] == name
    whole = served.get("report", run=name, tag=TAG)
    assert whole.headers["X-Content-Type-Options"] == "nosniff"
    assert _json(whole)["report"]["variables"][0]["name"] == f"{name}/kernel"


def test_the_frontend_is_served_as_an_es_module(log_dir):
    served = serve(log_dir[0], GradientCheckPlugin)
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


@pytest.mark.parametrize(
    "path",
    [
        "static/../_plugin_base.py",
        "static/%2e%2e/_plugin_base.py",
        "static/..%2f..%2ftensorboard%2fmetadata.py",
        "static/gradient_check/../../summary.py",
        "static//etc/passwd",
        "static/%2Fetc%2Fpasswd",
        "static/..\\_plugin_base.py",
        "static/common.js%00.py",
        "static/input_timing/index.js",  # the other plugin's folder
        "static/gradient_check",  # a folder
        "static/",
        "static/nope.js",
    ],
)
def test_static_routes_refuse_path_traversal_with_a_404(log_dir, path):
    served = serve(log_dir[0], GradientCheckPlugin)
    response = served.client.get(served.url(path))
    assert response.status_code == 404
    assert b"import" not in response.get_data()  # no source file came back


def test_static_path_resolves_only_inside_the_static_folder(tmp_path):
    plugin = serve(tmp_path, GradientCheckPlugin).plugin
    assert plugin.static_path("common.js").endswith(os.path.join("static", "common.js"))
    for relative in ["../metadata.py", "/etc/passwd", "gradient_check/../../x.py", ""]:
        assert plugin.static_path(relative) is None


def test_importing_the_plugins_imports_neither_keras_nor_tensorflow():
    code = (
        "import keras_bettermodels.tensorboard.gradient_check_plugin\n"
        "import keras_bettermodels.tensorboard.input_timing_plugin\n"
    )
    assert heavy_modules_after(code) == []


def test_tensorboard_finds_both_plugins_through_the_entry_point():
    from tensorboard import default

    from keras_bettermodels.tensorboard.input_timing_plugin import InputTimingPlugin

    found = default.get_dynamic_plugins()
    assert GradientCheckPlugin in found and InputTimingPlugin in found


def test_plugin_names_are_prefixed_bettermodels():
    assert metadata.GRADIENT_CHECK_PLUGIN == "bettermodels_gradient_check"
    assert metadata.INPUT_TIMING_PLUGIN == "bettermodels_input_timing"


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
