"""The event-file writer: TensorBoard reads what it writes, without TensorFlow."""

from __future__ import annotations

import errno
import math
import os

import pytest

from keras_bettermodels.tensorboard import summary
from tests._disk import NO_SPACE, FillingDisk
from tests._imports import heavy_modules_after

pytestmark = pytest.mark.backend_independent


def _load(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(log_dir), size_guidance={"tensors": 0}).Reload()


def test_scalars_are_read_back_by_tensorboard(tmp_path):
    for step, value in enumerate([0.5, 0.25, 2.0]):
        summary.write_scalars(tmp_path, step, {"loss": value, "gl": value * 10})
    events = _load(tmp_path)
    assert sorted(events.Tags()["tensors"]) == ["gl", "loss"]
    loss = events.Tensors("loss")
    assert [e.step for e in loss] == [0, 1, 2]
    assert [e.tensor_proto.float_val[0] for e in loss] == [0.5, 0.25, 2.0]


def test_summaries_are_marked_for_the_scalars_plugin(tmp_path):
    from tensorboard.compat.proto import summary_pb2

    summary.write_scalars(tmp_path, 0, {"loss": 1.0})
    metadata = _load(tmp_path).SummaryMetadata("loss")
    assert metadata.plugin_data.plugin_name == "scalars"
    assert metadata.data_class == summary_pb2.DATA_CLASS_SCALAR


def test_none_values_leave_gaps(tmp_path):
    summary.write_scalars(tmp_path, 0, {"p_k": None, "gl": 1.0})
    summary.write_scalars(tmp_path, 1, {"p_k": None})
    events = _load(tmp_path)
    assert events.Tags()["tensors"] == ["gl"]


def test_a_removed_log_dir_is_recreated(tmp_path):
    log_dir = tmp_path / "run"
    summary.write_scalars(log_dir, 0, {"a": 1.0})
    for name in os.listdir(log_dir):
        os.remove(log_dir / name)
    os.rmdir(log_dir)
    summary.write_scalars(log_dir, 1, {"a": 2.0})
    assert [e.step for e in _load(log_dir).Tensors("a")] == [1]


def test_tensorboard_sees_values_from_a_running_writer(tmp_path):
    """Values are flushed at once, so TensorBoard can read a run in progress."""
    summary.write_scalars(tmp_path, 0, {"a": 1.0})
    assert len(_load(tmp_path).Tensors("a")) == 1
    summary.write_scalars(tmp_path, 1, {"a": 1.0})
    assert len(_load(tmp_path).Tensors("a")) == 2


def test_writing_imports_neither_tensorflow_nor_keras(tmp_path):
    code = (
        "from keras_bettermodels.tensorboard import summary\n"
        f"summary.write_scalars({str(tmp_path)!r}, 0, {{'x': 1.0}})"
    )
    assert heavy_modules_after(code) == []
    assert _load(tmp_path).Tags()["tensors"] == ["x"]


def test_json_documents_round_trip_with_their_plugin_and_version(tmp_path):
    from tensorboard.compat.proto import summary_pb2

    from keras_bettermodels.tensorboard import metadata

    payload = {"verdict": "great", "relative_error": 3e-9, "kinks": [], "x": math.inf}
    summary.write_json(
        tmp_path,
        2,
        "gradient_check/report",
        payload,
        plugin_name=metadata.GRADIENT_CHECK_PLUGIN,
    )
    events = _load(tmp_path)
    (event,) = events.Tensors("gradient_check/report")
    assert event.step == 2
    assert summary.read_json(event.tensor_proto) == payload
    meta = events.SummaryMetadata("gradient_check/report")
    assert meta.plugin_data.plugin_name == metadata.GRADIENT_CHECK_PLUGIN
    assert meta.data_class == summary_pb2.DATA_CLASS_TENSOR
    assert metadata.parse_plugin_content(meta.plugin_data.content) == {"version": 1}


def test_text_is_written_for_the_text_tab(tmp_path):
    from tensorboard.compat.proto import summary_pb2

    summary.write_text(tmp_path, 4, "notes/audit", "**float16** — ü")
    events = _load(tmp_path)
    (event,) = events.Tensors("notes/audit")
    assert event.step == 4
    assert event.tensor_proto.string_val[0].decode("utf-8") == "**float16** — ü"
    meta = events.SummaryMetadata("notes/audit")
    assert meta.plugin_data.plugin_name == "text"
    assert meta.data_class == summary_pb2.DATA_CLASS_TENSOR


# A log directory whose writes fail (issue 26, row 3): logging never stops a fit.


def _log_write_warnings(record):
    return [w for w in record if "Writing TensorBoard logs to" in str(w.message)]


def test_a_full_disk_warns_once_naming_the_file_and_stops_writing_there(
    tmp_path, monkeypatch
):
    disk = FillingDisk(monkeypatch)
    log_dir = tmp_path / "run"
    for step in range(2):
        summary.write_scalars(log_dir, step, {"a": float(step)})
    disk.fill(log_dir)
    with pytest.warns(RuntimeWarning) as record:
        for step in range(2, 6):
            summary.write_scalars(log_dir, step, {"a": float(step)})
            summary.write_text(log_dir, step, "notes", "more")
    (warning,) = _log_write_warnings(record)
    (event_file,) = os.listdir(log_dir)
    message = str(warning.message)
    assert str(log_dir / event_file) in message
    assert f"[Errno {errno.ENOSPC}] {NO_SPACE}" in message
    assert sum(disk.attempts.values()) == 1  # nothing more was tried there
    # What was written before the disk filled is intact for TensorBoard.
    assert [e.step for e in _load(log_dir).Tensors("a")] == [0, 1]


def test_other_log_dirs_go_on_and_close_all_logs_there_again(tmp_path, monkeypatch):
    disk = FillingDisk(monkeypatch)
    full, fine = tmp_path / "full", tmp_path / "fine"
    disk.fill(full)
    with pytest.warns(RuntimeWarning, match="No space left on device"):
        summary.write_scalars(full, 0, {"a": 0.0})
    summary.write_scalars(fine, 0, {"a": 0.0})
    assert [e.step for e in _load(fine).Tensors("a")] == [0]
    monkeypatch.undo()  # space was freed
    summary.write_scalars(full, 1, {"a": 1.0})  # still given up: no warning
    summary.close_all()
    summary.write_scalars(full, 2, {"a": 2.0})
    assert [e.step for e in _load(full).Tensors("a")] == [2]


def test_a_log_dir_that_cannot_be_made_warns_once_and_raises_nothing(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    log_dir = tmp_path / "file" / "run"  # a real error, nothing planted
    with pytest.warns(RuntimeWarning) as record:
        for step in range(3):
            summary.write_json(
                log_dir, step, "gradient_check/report", {"x": 1}, plugin_name="p"
            )
    (warning,) = _log_write_warnings(record)
    assert str(log_dir) in str(warning.message)
    assert "Not a directory" in str(warning.message)
