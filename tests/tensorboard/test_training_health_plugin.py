"""The Training health plugin's backend: routes through werkzeug, `*_impl` directly.

The behaviour the plugins share (bad data, path traversal, imports) is tested
in test_plugin_base.py, test_decoding.py and test_static.py; here, what is
particular to training-health reports, the contract with
`HealthReport.to_dict()`, and that this plugin too refuses hostile payloads
and paths.
"""

from __future__ import annotations

import json
import math

import pytest

from keras_bettermodels.tensorboard import _decoding, metadata, summary
from keras_bettermodels.tensorboard.training_health_plugin import (
    TrainingHealthPlugin,
)
from tests._imports import heavy_modules_after
from tests.tensorboard import _reports
from tests.tensorboard._app import json_of, serve

pytestmark = pytest.mark.backend_independent

TAG = _reports.TRAINING_HEALTH_TAG
DEAD = _reports.health_report()
HEALTHY = _reports.health_report(("m/a", "m/b"), (0, 10), dead=None, findings=())


@pytest.fixture
def log_dir(tmp_path):
    _reports.write_health(tmp_path / "dead", 0, _reports.health_report(steps=(0,)))
    _reports.write_health(tmp_path / "dead", 1, DEAD)
    _reports.write_health(tmp_path / "healthy", 1, HEALTHY)
    summary.close_all()
    return tmp_path


def test_reports_route_lists_each_runs_headline_never_its_table(log_dir):
    served = serve(log_dir, TrainingHealthPlugin)
    body = json_of(served.get("reports"))
    assert body["plugin"] == metadata.TRAINING_HEALTH_PLUGIN
    by_run = {entry["run"]: entry for entry in body["reports"]}
    assert sorted(by_run) == ["dead", "healthy"]
    dead = by_run["dead"]
    assert (dead["tag"], dead["steps"], dead["step"], dead["error"]) == (
        TAG,
        [0, 1],
        1,
        None,
    )
    assert dead["summary"] == {
        "num_findings": 2,
        "num_steps": 3,
        "policy": "float32",
        "version": 1,
    }
    assert by_run["healthy"]["summary"]["num_findings"] == 0
    assert "rows" not in json.dumps(body)  # a summary, never the whole table


def test_report_route_and_impl_serve_the_whole_latest_report(log_dir):
    from tensorboard import context

    served = serve(log_dir, TrainingHealthPlugin)
    over_http = json_of(served.get("report", run="dead", tag=TAG))
    direct = served.plugin.report_impl(context.RequestContext(), "", "dead", TAG)
    assert over_http == json.loads(json.dumps(direct))
    assert direct["step"] == 1 and direct["report"] == DEAD
    earlier = json_of(served.get("report", run="dead", tag=TAG, step=0))
    assert earlier["report"]["steps"] == [0]


@pytest.mark.parametrize(
    "params",
    [
        {"run": "nope", "tag": TAG},
        {"run": "dead", "tag": "gradient_check/report"},
        {"run": "dead", "tag": TAG, "step": "7"},
        {"run": "dead", "tag": TAG, "step": "latest"},
    ],
)
def test_unknown_run_tag_or_step_is_a_400_with_a_json_error(log_dir, params):
    response = serve(log_dir, TrainingHealthPlugin).get("report", **params)
    assert response.status_code == 400
    assert "Received" in json_of(response)["error"]


def test_it_reads_only_its_own_plugin_data(log_dir):
    _reports.write_gradient_check(
        log_dir / "checked", 0, _reports.gradient_check_report({"d/kernel": 1e-9})
    )
    summary.close_all()
    body = json_of(serve(log_dir, TrainingHealthPlugin).get("reports"))
    assert [entry["run"] for entry in body["reports"]] == ["dead", "healthy"]


def test_non_finite_statistics_and_user_strings_come_back_as_written(tmp_path):
    report = _reports.health_report((f"net/{_reports.XSS}", "net/out"), (0, 1))
    report["rows"][0]["activation_abs_max"] = math.inf
    report["rows"][1]["grad_norm"] = math.nan
    report["findings"][0]["message"] = _reports.XSS
    _reports.write_health(tmp_path / _reports.XSS, 0, report)
    summary.close_all()
    served = serve(tmp_path, TrainingHealthPlugin)
    (entry,) = json_of(served.get("reports"))["reports"]
    assert entry["run"] == _reports.XSS
    whole = json_of(served.get("report", run=_reports.XSS, tag=TAG))["report"]
    # TensorBoard's JSON answers carry NaN and infinities as strings.
    assert whole["rows"][0]["activation_abs_max"] == "Infinity"
    assert whole["rows"][1]["grad_norm"] == "NaN"
    assert whole["layers"][0] == f"net/{_reports.XSS}"
    assert whole["findings"][0]["message"] == _reports.XSS


def _write_raw(log_dir, payload: bytes, *, version: int = 1) -> None:
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, tensor_shape=TensorShapeProto(), string_val=[payload]
    )
    value = summary_pb2.Summary.Value(
        tag=TAG,
        metadata=metadata.create_summary_metadata(
            metadata.TRAINING_HEALTH_PLUGIN, version=version
        ),
        tensor=tensor,
    )
    summary.write_values(log_dir, 0, [value])


def test_hostile_reports_are_error_entries_and_the_others_are_listed(tmp_path):
    oversized = {**DEAD, "padding": "x" * (_decoding.MAX_REPORT_BYTES + 1)}
    _write_raw(tmp_path / "oversized", json.dumps(oversized).encode())
    _write_raw(tmp_path / "a_list", b"[1, 2, 3]")
    _write_raw(tmp_path / "deep", b'{"rows": ' + b"[" * 100 + b"]" * 100 + b"}")
    _write_raw(tmp_path / "newer", json.dumps(DEAD).encode(), version=99)
    _reports.write_health(tmp_path / "good", 0, DEAD)
    summary.close_all()
    served = serve(tmp_path, TrainingHealthPlugin)
    response = served.get("reports")
    assert response.status_code == 200
    by_run = {entry["run"]: entry for entry in json_of(response)["reports"]}
    assert by_run["good"]["error"] is None
    assert "over the plugins' limit" in by_run["oversized"]["error"]
    assert "Expected a JSON object" in by_run["a_list"]["error"]
    assert "nested deeper" in by_run["deep"]["error"]
    assert "version=99" in by_run["newer"]["error"]
    for run in ("oversized", "a_list", "deep", "newer"):
        assert by_run[run]["summary"] is None
        single = served.get("report", run=run, tag=TAG)
        assert single.status_code == 200 and json_of(single)["report"] is None


def test_an_empty_log_dir_has_no_reports(tmp_path):
    served = serve(tmp_path, TrainingHealthPlugin)
    assert json_of(served.get("reports"))["reports"] == []
    assert served.plugin.is_active() is False


@pytest.mark.parametrize(
    "path",
    [
        "static/../training_health_plugin.py",
        "static/%2e%2e/_plugin_base.py",
        "static/training_health/../../metadata.py",
        "static//etc/passwd",
        "static/..\\_plugin_base.py",
        "static/gradient_check/index.js",  # another plugin's folder
        "static/training_health",  # a folder
        "static/nope.js",
    ],
)
def test_static_routes_refuse_path_traversal_with_a_404(tmp_path, path):
    served = serve(tmp_path, TrainingHealthPlugin)
    response = served.client.get(served.url(path))
    assert response.status_code == 404
    assert b"import" not in response.get_data()


def test_its_frontend_is_served_as_an_es_module_that_inserts_no_html(tmp_path):
    served = serve(tmp_path, TrainingHealthPlugin)
    module = served.get("index.js")
    assert module.status_code == 200
    assert module.headers["Content-Type"].startswith("text/javascript")
    code = module.get_data(as_text=True)
    assert "export async function render()" in code
    assert "innerHTML" not in code and "insertAdjacentHTML" not in code
    assert served.get("static/training_health/index.js").get_data(as_text=True) == code
    assert served.get("static/common.js").status_code == 200
    frontend = served.plugin.frontend_metadata()
    assert (frontend.tab_name, frontend.es_module_path) == (
        "Training health",
        "/index.js",
    )


def test_importing_the_plugin_imports_neither_keras_nor_tensorflow():
    code = "import keras_bettermodels.tensorboard.training_health_plugin\n"
    assert heavy_modules_after(code) == []


def test_tensorboard_finds_the_plugin_through_the_entry_point():
    from tensorboard import default

    assert TrainingHealthPlugin in default.get_dynamic_plugins()


def test_a_real_health_report_is_served_field_for_field(tmp_path):
    report_lib = pytest.importorskip("keras_bettermodels.health.report")
    rows = (
        report_lib.LayerStats(0, "net/dense", 10, grad_norm=0.5, dead_fraction=0.0),
        report_lib.LayerStats(0, "net/dead", 9, activation_abs_max=math.inf),
    )
    finding = report_lib.Finding("dead-units", "net/dead", 0, "dead", 1.0)
    document = report_lib.HealthReport(
        layers=("net/dense", "net/dead"),
        rows=rows,
        findings=(finding,),
        losses=((0, 1.5),),
    ).to_dict()
    # The fixtures of these tests have exactly the producer's fields.
    assert set(DEAD) == set(document)
    assert set(DEAD["rows"][0]) == set(document["rows"][0])
    assert set(DEAD["findings"][0]) == set(document["findings"][0])
    assert tuple(DEAD["statistics"]) == report_lib.STATISTICS
    _reports.write_health(tmp_path / "real", 0, document)
    summary.close_all()
    served = serve(tmp_path, TrainingHealthPlugin)
    entry = json_of(served.get("report", run="real", tag=TAG))
    from tensorboard.backend import json_util

    assert entry["report"] == json_util.Cleanse(document)
    assert entry["report"]["rows"][1]["activation_abs_max"] == "Infinity"
