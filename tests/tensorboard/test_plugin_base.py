"""What both plugins share (`_plugin_base.ReportPlugin`): routes, reads, errors.

Bad data never makes a 500: an unreadable report, a newer content version, a
cut or garbage event file or a run whose read fails is one entry with an
`error`, beside the other runs. Unknown names are a 400 with a JSON error; a
long run lists a sample of its steps and serves any of them; importing the
plugins imports neither Keras nor TensorFlow. Driven through the Gradient check
plugin; what is particular to each plugin is in its own test module.
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
from tests.tensorboard._app import json_of, serve

pytestmark = pytest.mark.backend_independent

TAG = _reports.GRADIENT_CHECK_TAG
GOOD = _reports.GOOD_ERRORS


def test_a_long_run_lists_a_sample_of_steps_and_serves_any_step(tmp_path):
    for step in range(150):
        _reports.write_gradient_check(
            tmp_path / "long",
            step,
            _reports.gradient_check_report({"d/b": step * 1e-9}),
        )
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    (entry,) = json_of(served.get("reports"))["reports"]
    assert len(entry["steps"]) == 100 and entry["steps_sampled"] is True
    assert entry["steps"][-1] == entry["step"] == 149
    assert entry["summary"]["relative_error"] == pytest.approx(149e-9)
    missing = min(set(range(150)) - set(entry["steps"]))
    one = json_of(served.get("report", run="long", tag=TAG, step=missing))
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
def test_bad_run_tag_or_step_is_a_400_with_a_json_error(
    gradient_check_logs, params, words
):
    served = serve(gradient_check_logs[0], GradientCheckPlugin)
    response = served.get("report", **params)
    assert response.status_code == 400
    error = json_of(response)["error"]
    assert words in error
    assert "Received" in error or "Missing" in error


def test_unknown_run_message_lists_the_runs_that_exist(gradient_check_logs):
    served = serve(gradient_check_logs[0], GradientCheckPlugin)
    error = json_of(served.get("report", run="nope", tag=TAG))["error"]
    assert "'buggy', 'mlp'" in error and "run='nope'" in error


def test_an_empty_log_dir_has_no_reports_and_no_error(tmp_path):
    served = serve(tmp_path, GradientCheckPlugin)
    response = served.get("reports")
    assert response.status_code == 200
    assert json_of(response)["reports"] == []
    assert served.plugin.is_active() is False
    listing = json_of(served.client.get("/data/plugins_listing"))
    assert listing[metadata.GRADIENT_CHECK_PLUGIN]["enabled"] is False
    assert served.get("report", run="a", tag=TAG).status_code == 400


def test_a_newer_content_version_is_a_message_not_a_failure(tmp_path):
    newer = metadata.PROTOCOL_VERSION + 1
    report = _reports.gradient_check_report(GOOD)
    _reports.write_gradient_check(tmp_path / "future", 0, report, version=newer)
    _reports.write_gradient_check(tmp_path / "today", 0, report)
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    response = served.get("reports")
    assert response.status_code == 200
    by_run = {entry["run"]: entry for entry in json_of(response)["reports"]}
    assert by_run["future"]["summary"] is None
    assert f"version={newer}" in by_run["future"]["error"]
    assert "Upgrade keras-bettermodels" in by_run["future"]["error"]
    assert by_run["today"]["summary"]["verdict"] == report["verdict"]
    single = served.get("report", run="future", tag=TAG)
    assert single.status_code == 200 and json_of(single)["report"] is None


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
    (entry,) = json_of(response)["reports"]
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
    (entry,) = json_of(response)["reports"]
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
    assert [entry["run"] for entry in json_of(response)["reports"]] == ["fine"]


def test_non_finite_errors_are_sent_as_json_strings(tmp_path):
    report = _reports.gradient_check_report({"dense/kernel": math.nan})
    _reports.write_gradient_check(tmp_path / "nan", 0, report)
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    for route in ("reports", "report"):
        response = served.get(route, run="nan", tag=TAG)
        text = response.get_data(as_text=True)
        assert "NaN" in text and json.loads(text)  # valid JSON for JSON.parse
    (entry,) = json_of(served.get("reports"))["reports"]
    assert entry["summary"]["relative_error"] == "NaN"
    whole = json_of(served.get("report", run="nan", tag=TAG))["report"]
    assert whole["variables"][0]["relative_error"] == "NaN"


def test_html_in_run_and_variable_names_is_sent_verbatim_as_json(tmp_path):
    name = _reports.XSS
    report = _reports.gradient_check_report({f"{name}/kernel": 1e-9})
    _reports.write_gradient_check(tmp_path / name, 0, report)
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    response = served.get("reports")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    (entry,) = json_of(response)["reports"]
    assert entry["run"] == name
    whole = served.get("report", run=name, tag=TAG)
    assert whole.headers["X-Content-Type-Options"] == "nosniff"
    assert json_of(whole)["report"]["variables"][0]["name"] == f"{name}/kernel"


def test_importing_the_plugins_imports_neither_keras_nor_tensorflow():
    code = (
        "import keras_bettermodels.tensorboard.gradient_check_plugin\n"
        "import keras_bettermodels.tensorboard.input_timing_plugin\n"
    )
    assert heavy_modules_after(code) == []


class _FailingProvider:
    """The real data provider, except that reading run `poison` raises."""

    def __init__(self, provider):
        self._provider = provider

    def list_tensors(self, ctx, **kwargs):
        return self._provider.list_tensors(ctx, **kwargs)

    def read_tensors(self, ctx, *, run_tag_filter, **kwargs):
        if "poison" in run_tag_filter.runs:
            # What the fast loader's client raises past a message size limit.
            raise RuntimeError("Received message larger than max")
        return self._provider.read_tensors(ctx, run_tag_filter=run_tag_filter, **kwargs)


def test_a_run_whose_read_fails_is_an_error_entry_and_the_others_are_read(tmp_path):
    for run in ("alpha", "poison", "zeta"):
        _reports.write_gradient_check(
            tmp_path / run, 0, _reports.gradient_check_report(GOOD)
        )
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    served.plugin._data_provider = _FailingProvider(served.provider)
    response = served.get("reports")
    assert response.status_code == 200
    by_run = {entry["run"]: entry for entry in json_of(response)["reports"]}
    assert by_run["alpha"]["summary"]["verdict"] == "great"
    assert by_run["zeta"]["summary"]["verdict"] == "great"
    assert by_run["poison"]["summary"] is None
    assert "larger than max" in by_run["poison"]["error"]
    single = served.get("report", run="poison", tag=TAG, step=0)
    assert single.status_code == 200
    assert "could not be read" in json_of(single)["error"]
