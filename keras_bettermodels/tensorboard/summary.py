"""The one place that writes TensorBoard event files.

Writes with TensorBoard's own record writer and protos over a plain file.
TensorBoard's `EventFileWriter` goes through `tensorboard.compat.tf`, which
imports the whole of TensorFlow whenever it is installed; this module never
does, so the JAX and PyTorch backends log cheaply too.

One event file is kept open per log directory for the life of the process and
flushed after every write, so TensorBoard sees each value as soon as it is
written.

Logging never stops training: a write that fails with an `OSError` (a full
disk, a read-only or removed mount, a permission taken away) warns once,
naming the file and the error, and nothing more is written to that log
directory until `close_all` (the other directories go on as usual). The
callbacks that write here (`EarlyStopping`, `MixedPrecisionGuard`,
`GradientCheckCallback`, `CacheTimingCallback`, `PruningSummaries`) go on
stopping, restoring and rescuing as if nothing had happened.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Mapping
from typing import IO, Any

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.summary.writer.record_writer import RecordWriter

__all__ = ["close_all", "read_json", "write_json", "write_scalars"]

_SCALARS_PLUGIN = "scalars"
_FILE_SUFFIX = ".kbm"


class _EventFile:
    """An append-only event file: a version header, then one event per write."""

    def __init__(self, log_dir: str) -> None:
        os.makedirs(log_dir, exist_ok=True)
        # TensorBoard's naming, so its loaders pick the file up; the pid and a
        # suffix keep two writers in one directory apart.
        stamp, host, pid = int(time.time()), socket.gethostname(), os.getpid()
        name = f"events.out.tfevents.{stamp:010d}.{host}.{pid}{_FILE_SUFFIX}"
        self.path = os.path.join(log_dir, name)
        self._file: IO[bytes] = open(self.path, "ab")  # noqa: SIM115 - kept open
        self._records = RecordWriter(self._file)
        try:
            header = event_pb2.Event(
                wall_time=time.time(), file_version="brain.Event:2"
            )
            self.write(header)
        except OSError:
            self.close_after_failure()
            raise

    def write(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())
        self._records.flush()

    def close(self) -> None:
        self._records.close()

    def close_after_failure(self) -> None:
        """Closes the file after a failed write.

        Closing flushes what the failed write left in the buffer, which fails
        again (the caller reports the first error); the file is closed anyway.
        """
        with contextlib.suppress(OSError):
            self._records.close()


_files: dict[str, _EventFile] = {}
# Log directories whose writes failed: nothing more is written there.
_failed: set[str] = set()
_lock = threading.Lock()


def _event_file(key: str) -> _EventFile:
    event_file = _files.get(key)
    # A directory removed between runs (a cleaned-up log dir) gets a new file.
    if event_file is None or not os.path.exists(event_file.path):
        if event_file is not None:
            del _files[key]
            event_file.close()
        event_file = _files[key] = _EventFile(key)
    return event_file


def _scalar_value(tag: str, value: float) -> summary_pb2.Summary.Value:
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=_SCALARS_PLUGIN),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=TensorShapeProto(), float_val=[value]
    )
    return summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor)


def write_values(
    log_dir: str | os.PathLike[str],
    step: int,
    values: list[summary_pb2.Summary.Value],
) -> None:
    """Appends one event holding `values` at `step` to `log_dir`'s event file."""
    event = event_pb2.Event(
        wall_time=time.time(), step=int(step), summary=summary_pb2.Summary(value=values)
    )
    key = os.path.abspath(os.fspath(log_dir))
    with _lock:
        if key in _failed:
            return
        try:
            _event_file(key).write(event)
        except OSError as error:
            _give_up(key, error)


def _give_up(key: str, error: OSError) -> None:
    """Stops writing to the log directory `key` after `error`, and says so once."""
    _failed.add(key)
    event_file = _files.pop(key, None)
    path = key if event_file is None else event_file.path
    if event_file is not None:
        event_file.close_after_failure()
    warnings.warn(
        f"Writing TensorBoard logs to {path} failed: {error}. Nothing more is "
        f"written to {key} in this process; training goes on. Once the cause "
        "is fixed (space freed on a full disk), "
        "`keras_bettermodels.tensorboard.summary.close_all()` logs there again.",
        RuntimeWarning,
        stacklevel=4,
    )


def write_scalars(
    log_dir: str | os.PathLike[str], step: int, values: Mapping[str, float | None]
) -> None:
    """Writes scalars for TensorBoard's Scalars tab.

    Args:
        log_dir: the run's directory; created if missing.
        step: the x-axis value (an epoch or a step).
        values: tag -> value. `None` values are skipped, so a quantity that is
            defined only at some steps (Prechelt's P_k at strip ends) leaves gaps
            rather than zeros.

    Example:

    ```python
    write_scalars("runs/demo/early_stopping", step=3, values={"GL": 1.5})
    ```
    """
    scalar_values = [
        _scalar_value(tag, float(value))
        for tag, value in values.items()
        if value is not None
    ]
    if scalar_values:
        write_values(log_dir, step, scalar_values)


def write_json(
    log_dir: str | os.PathLike[str],
    step: int,
    tag: str,
    payload: Mapping[str, Any],
    *,
    plugin_name: str,
    version: int | None = None,
) -> None:
    """Writes a JSON document for one of the package's TensorBoard plugins.

    The payload is stored as a scalar string tensor; the summary's metadata
    names the plugin and the payload format's version (see
    `keras_bettermodels.tensorboard.metadata`). Its headline (its size and
    top-level scalar fields, `metadata.report_headline`) goes in the same
    event under `metadata.headline_tag(tag)`: the plugins list runs from the
    headlines, without decoding the reports.

    Args:
        log_dir: the run's directory; created if missing.
        step: the step or epoch the document describes.
        tag: the summary's tag, e.g. `"gradient_check/report"`.
        payload: a JSON-serializable mapping (non-finite floats are written as
            JSON's `NaN` / `Infinity`, which `read_json` reads back).
        plugin_name: the plugin that renders it, e.g.
            `metadata.GRADIENT_CHECK_PLUGIN`.
        version: the payload format's version. Defaults to
            `metadata.PROTOCOL_VERSION`.
    """
    from keras_bettermodels.tensorboard import metadata

    version = metadata.PROTOCOL_VERSION if version is None else version
    document = json.dumps(dict(payload))
    headline = metadata.report_headline(payload, len(document.encode("utf-8")))
    report_metadata = metadata.create_summary_metadata(plugin_name, version=version)
    headline_metadata = metadata.create_summary_metadata(
        plugin_name, version=version, headline_of=tag
    )
    values = [
        _string_value(tag, report_metadata, document),
        _string_value(
            metadata.headline_tag(tag), headline_metadata, json.dumps(headline)
        ),
    ]
    write_values(log_dir, step, values)


def write_text(log_dir: str | os.PathLike[str], step: int, tag: str, text: str) -> None:
    """Writes Markdown `text` for TensorBoard's Text tab, without TensorFlow.

    The summary is what `tf.summary.text` writes: a scalar string tensor whose
    metadata names the `text` plugin, with `data_class=DATA_CLASS_TENSOR` so
    TensorBoard lists it.

    Args:
        log_dir: the run's directory; created if missing.
        step: the step or epoch the text describes.
        tag: the summary's tag, e.g. `"mixed_precision/audit"`.
        text: Markdown.
    """
    from tensorboard.plugins.text import metadata as text_metadata

    summary_metadata = text_metadata.create_summary_metadata(
        display_name="", description=""
    )
    summary_metadata.data_class = summary_pb2.DATA_CLASS_TENSOR
    write_values(log_dir, step, [_string_value(tag, summary_metadata, text)])


def _string_value(
    tag: str, summary_metadata: summary_pb2.SummaryMetadata, text: str
) -> summary_pb2.Summary.Value:
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=TensorShapeProto(),
        string_val=[text.encode("utf-8")],
    )
    return summary_pb2.Summary.Value(tag=tag, metadata=summary_metadata, tensor=tensor)


def read_json(tensor: tensor_pb2.TensorProto) -> dict[str, Any]:
    """Returns the document that `write_json` stored in `tensor`."""
    if not tensor.string_val:
        raise ValueError("The tensor holds no JSON document (empty string_val).")
    document = json.loads(tensor.string_val[0].decode())
    if not isinstance(document, dict):
        raise ValueError(f"Expected a JSON object. Received: {document!r}")
    return document


def close_all() -> None:
    """Closes every open event file (a later write opens a new one).

    Log directories whose writes failed are written to again after this.
    """
    with _lock:
        files = list(_files.values())
        _files.clear()
        _failed.clear()
        for event_file in files:
            try:
                event_file.close()
            except OSError as error:
                warnings.warn(
                    f"Closing the TensorBoard log {event_file.path} failed: {error}.",
                    RuntimeWarning,
                    stacklevel=2,
                )


atexit.register(close_all)
