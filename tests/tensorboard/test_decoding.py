"""What `_decoding` refuses, in crafted event files: never a 500, other runs listed.

A report nested too deeply for Python's JSON decoder, one over the size limit,
one that is not UTF-8, JSON or an object, and a content version of `true`,
`-5`, `0` or `"1"`: each is one entry with an `error`, through TensorBoard's own
WSGI application and through a real `tensorboard` process with each of its two
loaders.
"""

from __future__ import annotations

import json

import pytest

from keras_bettermodels.tensorboard import _decoding, metadata, summary
from keras_bettermodels.tensorboard.gradient_check_plugin import GradientCheckPlugin
from keras_bettermodels.tensorboard.input_timing_plugin import InputTimingPlugin
from tests.tensorboard import _reports
from tests.tensorboard._app import serve

# No backend involved; run once, in the TensorFlow pass of `make test`.
pytestmark = pytest.mark.tensorflow_pass

GC, TIMING = metadata.GRADIENT_CHECK_PLUGIN, metadata.INPUT_TIMING_PLUGIN
TAG = _reports.GRADIENT_CHECK_TAG
GOOD = _reports.gradient_check_report({"dense/kernel": 3e-9})
# Deep enough that `json.loads` raises RecursionError, whatever the stack.
TOO_DEEP_FOR_THE_DECODER = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
# The case: the decoder copes alone, not under a server's stack.
DEPTH_900 = b'{"a": ' + b"[" * 900 + b"]" * 900 + b"}"
# Decodes at any stack depth, but deeper than `MAX_REPORT_DEPTH`.
DEPTH_100 = b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}"
OVERSIZED = json.dumps(
    {**GOOD, "padding": "x" * (_decoding.MAX_REPORT_BYTES + 1)}
).encode()

HOSTILE_PAYLOADS = {
    "decoder_recursion": (TOO_DEEP_FOR_THE_DECODER, "nested"),
    "depth_900": (DEPTH_900, "nested"),
    "depth_100": (DEPTH_100, "nested deeper than the limit of 64 levels"),
    "oversized": (OVERSIZED, "over the plugins' limit of 8.0 MB for one report"),
    "not_utf8": (b'{"a": "\xff\xfe"}', "not UTF-8"),
    "not_json": (b"{not json", "not JSON"),
    "a_list": (b"[1, 2, 3]", "Expected a JSON object. Received a JSON list"),
    "nan_only": (b"NaN", "Expected a JSON object. Received a JSON float"),
}
BAD_VERSIONS = {
    "version_true": b'{"version": true}',
    "version_minus_5": b'{"version": -5}',
    "version_0": b'{"version": 0}',
    "version_string": b'{"version": "1"}',
    "version_float": b'{"version": 1.0}',
    "version_missing": b"{}",
    "header_deep": b'{"version": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


def _write_raw(log_dir, payload: bytes, *, content: bytes | None = None) -> None:
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

    summary_metadata = metadata.create_summary_metadata(GC)
    if content is not None:
        summary_metadata.plugin_data.content = content
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=TensorShapeProto(),
        string_val=[payload],
    )
    value = summary_pb2.Summary.Value(tag=TAG, metadata=summary_metadata, tensor=tensor)
    summary.write_values(log_dir, 0, [value])


@pytest.fixture(scope="module")
def hostile_logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    for run, (payload, _) in HOSTILE_PAYLOADS.items():
        _write_raw(root / run, payload)
    for run, content in BAD_VERSIONS.items():
        _write_raw(root / run, json.dumps(GOOD).encode(), content=content)
    _reports.write_gradient_check(root / "good", 0, GOOD)
    summary.close_all()
    return root


def _json(response):
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.get_data(as_text=True))


def _check_listing(by_run: dict) -> None:
    assert set(by_run) == {"good", *HOSTILE_PAYLOADS, *BAD_VERSIONS}
    assert by_run["good"]["error"] is None
    assert by_run["good"]["summary"]["verdict"] == "great"
    for run, (_, words) in HOSTILE_PAYLOADS.items():
        entry = by_run[run]
        assert entry["summary"] is None and "report" not in entry, run
        assert "The report at step 0 is unreadable." in entry["error"], run
        assert words in entry["error"], (run, entry["error"])
    for run in BAD_VERSIONS:
        entry = by_run[run]
        assert entry["summary"] is None, run
        assert "version" in entry["error"], (run, entry["error"])
    for run in ("version_true", "version_minus_5", "version_0", "version_string"):
        assert "Expected a positive integer" in by_run[run]["error"], run


def test_hostile_reports_are_error_entries_beside_the_good_run(hostile_logs):
    served = serve(hostile_logs, GradientCheckPlugin)
    response = served.get("reports")
    assert response.status_code == 200
    body = _json(response)
    _check_listing({entry["run"]: entry for entry in body["reports"]})
    # The listing carries no report, so the oversized one does not travel.
    assert len(response.get_data()) < 100_000


@pytest.mark.parametrize("run", [*HOSTILE_PAYLOADS, *BAD_VERSIONS])
def test_report_route_answers_an_error_entry_for_a_hostile_report(hostile_logs, run):
    served = serve(hostile_logs, GradientCheckPlugin)
    for params in ({}, {"step": 0}):
        response = served.get("report", run=run, tag=TAG, **params)
        assert response.status_code == 200
        entry = _json(response)
        assert entry["report"] is None and entry["error"]
        assert len(response.get_data()) < 100_000


def test_the_oversized_report_is_measured_and_named_in_megabytes(hostile_logs):
    served = serve(hostile_logs, GradientCheckPlugin)
    entry = _json(served.get("report", run="oversized", tag=TAG))
    assert entry["bytes"] == len(OVERSIZED)
    assert f"It is {len(OVERSIZED) / 2**20:.1f} MB of JSON" in entry["error"]
    assert "Write smaller reports" in entry["error"]
    good = _json(served.get("report", run="good", tag=TAG))
    assert good["report"] == GOOD and good["error"] is None


def test_the_timing_plugin_refuses_a_hostile_report_with_the_reason(tmp_path):
    fine = _reports.timing_report([1, 0.5], cached=True)
    _reports.write_timing(tmp_path / "fine", 0, fine)
    summary.write_json(
        tmp_path / "deep",
        0,
        _reports.INPUT_TIMING_TAG,
        {"epochs": json.loads(DEPTH_100)["a"], "cached": False},
        plugin_name=TIMING,
    )
    summary.close_all()
    served = serve(tmp_path, InputTimingPlugin)
    by_run = {e["run"]: e for e in _json(served.get("reports"))["reports"]}
    assert by_run["fine"]["summary"]["cached"] is True
    # The listing reads the headline written beside it and never decodes the
    # report; the report itself, which the tab fetches, is refused.
    assert by_run["deep"]["summary"] == {"cached": False}
    deep = _json(served.get("report", run="deep", tag=_reports.INPUT_TIMING_TAG))
    assert deep["report"] is None and "nested deeper" in deep["error"]


@pytest.mark.processes
@pytest.mark.parametrize("flags", [("--load_fast=false",), ()], ids=["slow", "fast"])
def test_a_real_tensorboard_serves_the_good_run_beside_hostile_ones(
    hostile_logs, tmp_path, flags
):
    from tests.browser._server import TensorBoard

    board = TensorBoard(hostile_logs, *flags)
    expected = {"good", *HOSTILE_PAYLOADS, *BAD_VERSIONS}
    try:
        board.wait_until(lambda b: set(b.reports(GC)) == expected, 60.0)
        _check_listing(board.reports(GC))
        entry = board.get_json(
            f"/data/plugin/{GC}/report?run=depth_900&tag={TAG.replace('/', '%2F')}"
        )
        assert entry["report"] is None and "nested" in entry["error"]
        good = board.get_json(f"/data/plugin/{GC}/report?run=good&tag={TAG}")
        assert good["report"] == GOOD
    finally:
        board.stop()
