"""The event-file writer: TensorBoard reads what it writes, without TensorFlow."""

from __future__ import annotations

import math
import os

import pytest

from keras_bettermodels.tensorboard import summary
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


@pytest.mark.parametrize("content", [b'{"version": 99}', b"not json", b'{"v": 1}'])
def test_unknown_plugin_content_is_refused(content):
    from keras_bettermodels.tensorboard import metadata

    with pytest.raises(ValueError, match="Received"):
        metadata.parse_plugin_content(content)
