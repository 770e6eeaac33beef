"""The Input timing plugin's backend: routes through werkzeug, `*_impl` directly.

The behaviour it shares with the Gradient check plugin (bad data, path
traversal, imports) is tested in test_gradient_check_plugin.py; here, what is
particular to timing reports and the contract with `TimingReport.to_dict()`.
"""

from __future__ import annotations

import json

import pytest

from keras_bettermodels.tensorboard import metadata, summary
from keras_bettermodels.tensorboard.input_timing_plugin import InputTimingPlugin
from tests.tensorboard import _reports
from tests.tensorboard._app import serve

pytestmark = pytest.mark.backend_independent

TAG = _reports.INPUT_TIMING_TAG
CACHED = _reports.timing_report([2.4, 0.3, 0.28, 0.31], cached=True)
UNCACHED = _reports.timing_report([2.3, 1.8, 1.85, 1.79], cached=False)


def _json(response):
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.get_data(as_text=True))


@pytest.fixture
def log_dir(tmp_path):
    _reports.write_timing(tmp_path / "cached", 3, CACHED)
    _reports.write_timing(tmp_path / "uncached", 3, UNCACHED)
    summary.close_all()
    return tmp_path


def test_reports_route_serves_every_run_side_by_side(log_dir):
    served = serve(log_dir, InputTimingPlugin)
    response = served.get("reports")
    assert response.status_code == 200
    body = _json(response)
    assert body["plugin"] == metadata.INPUT_TIMING_PLUGIN
    summaries = {entry["run"]: entry["summary"] for entry in body["reports"]}
    assert summaries["cached"] == {
        "cached": True,
        "cache": "memory",
        "speedup": CACHED["speedup"],
        "first_epoch_time": 2.4,
        "steady_epoch_time": CACHED["steady_epoch_time"],
        "compile_time": 0.5,
        "samples_per_second": CACHED["samples_per_second"],
        "backend": "tensorflow",
    }
    assert summaries["cached"]["speedup"] > 3 * summaries["uncached"]["speedup"]
    assert all("report" not in entry for entry in body["reports"])
    for run, report in (("cached", CACHED), ("uncached", UNCACHED)):
        assert _json(served.get("report", run=run, tag=TAG))["report"] == report


def test_report_route_and_impl_agree(log_dir):
    from tensorboard import context

    served = serve(log_dir, InputTimingPlugin)
    over_http = _json(served.get("report", run="cached", tag=TAG))
    direct = served.plugin.report_impl(context.RequestContext(), "", "cached", TAG)
    assert over_http == json.loads(json.dumps(direct))
    assert direct["report"] == CACHED and direct["step"] == 3


@pytest.mark.parametrize(
    "params",
    [
        {"run": "nope", "tag": TAG},
        {"run": "cached", "tag": "gradient_check/report"},
        {"run": "cached", "tag": TAG, "step": "0"},
    ],
)
def test_unknown_run_tag_or_step_is_a_400_with_a_json_error(log_dir, params):
    response = serve(log_dir, InputTimingPlugin).get("report", **params)
    assert response.status_code == 400
    assert "Received" in _json(response)["error"]


def test_it_reads_only_its_own_plugin_data(log_dir):
    _reports.write_gradient_check(
        log_dir / "checked", 0, _reports.gradient_check_report({"d/kernel": 1e-9})
    )
    summary.close_all()
    body = _json(serve(log_dir, InputTimingPlugin).get("reports"))
    assert [entry["run"] for entry in body["reports"]] == ["cached", "uncached"]


def test_a_newer_content_version_is_a_message_in_its_entry(tmp_path):
    _reports.write_timing(tmp_path / "future", 0, CACHED, version=99)
    summary.close_all()
    response = serve(tmp_path, InputTimingPlugin).get("reports")
    assert response.status_code == 200
    (entry,) = _json(response)["reports"]
    assert entry["summary"] is None and "version=99" in entry["error"]


def test_an_empty_log_dir_has_no_reports(tmp_path):
    served = serve(tmp_path, InputTimingPlugin)
    assert _json(served.get("reports"))["reports"] == []
    assert served.plugin.is_active() is False


def test_a_hundred_runs_are_served_in_one_answer(tmp_path):
    for index in range(100):
        _reports.write_timing(tmp_path / f"run_{index:03d}", 4, CACHED)
    summary.close_all()
    body = _json(serve(tmp_path, InputTimingPlugin).get("reports"))
    assert len(body["reports"]) == 100
    assert body["reports"][0]["run"] == "run_000"
    speedups = {entry["summary"]["speedup"] for entry in body["reports"]}
    assert speedups == {CACHED["speedup"]}


def test_its_frontend_and_only_its_own_folder_are_served(log_dir):
    served = serve(log_dir, InputTimingPlugin)
    module = served.get("index.js")
    assert module.status_code == 200
    assert "export async function render()" in module.get_data(as_text=True)
    assert served.get("static/common.js").status_code == 200
    assert served.get("static/gradient_check/index.js").status_code == 404
    assert served.get("static/../input_timing_plugin.py").status_code == 404
    frontend = served.plugin.frontend_metadata()
    assert (frontend.tab_name, frontend.es_module_path) == ("Input timing", "/index.js")


def test_a_real_timing_report_is_served_field_for_field(tmp_path):
    analysis = pytest.importorskip("keras_bettermodels.timing.analysis")
    epochs = [
        analysis.EpochTiming(0, 2.0, 0.1, 10, 0.01, 0.9, 320),
        analysis.EpochTiming(1, 0.2, 0.1, 10, 0.01, 0.02, 320),
        analysis.EpochTiming(2, 0.2, 0.1, 10, 0.01, 0.02, 320),
    ]
    document = analysis.summarize(epochs, batch_size=32).to_dict()
    # The fixtures of these tests have exactly the producer's fields.
    assert set(CACHED) == set(document)
    assert set(CACHED["epochs"][0]) == set(document["epochs"][0])
    _reports.write_timing(tmp_path / "real", 2, document)
    summary.close_all()
    entry = _json(serve(tmp_path, InputTimingPlugin).get("report", run="real", tag=TAG))
    assert entry["report"] == json.loads(json.dumps(document))
    assert entry["report"]["speedup"] == pytest.approx((2.0 - 0.88) / 0.2)
