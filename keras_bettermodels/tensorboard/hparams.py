"""TensorBoard HParams summaries, written without TensorFlow.

TensorBoard's own `hparams.api.KerasCallback` writes through `tf.summary`, so
keras-tuner writes the HParams dashboard's data on the TensorFlow backend
only. This module builds the same protos (`plugin_data_pb2`, `api_pb2` and
the plugin's `metadata`, none of which imports TensorFlow) and writes them
with `summary`'s record writer: one session start per run (a trial, or one
execution or fold of it), and an experiment summary at the root of the runs,
listing the hyperparameters and the metrics to show.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from keras_bettermodels.tensorboard import summary

__all__ = [
    "experiment_value",
    "session_start_value",
    "write_experiment",
    "write_session_start",
]

_TYPES = {
    bool: api_pb2.DATA_TYPE_BOOL,
    int: api_pb2.DATA_TYPE_FLOAT64,
    float: api_pb2.DATA_TYPE_FLOAT64,
    str: api_pb2.DATA_TYPE_STRING,
}


def _value(
    tag: str, data: plugin_data_pb2.HParamsPluginData
) -> summary_pb2.Summary.Value:
    metadata = hparams_metadata.create_summary_metadata(data)
    metadata.data_class = summary_pb2.DATA_CLASS_TENSOR
    return summary_pb2.Summary.Value(
        tag=tag, metadata=metadata, tensor=hparams_metadata.NULL_TENSOR
    )


def session_start_value(
    hparams: Mapping[str, Any], group: str, start_time: float | None = None
) -> summary_pb2.Summary.Value:
    """The session-start summary of one run: its hyperparameter values.

    Args:
        hparams: name -> value (a bool, number or string; others as strings).
        group: the session group: runs of one trial (its executions or folds)
            share it, and the dashboard shows them as one row.
        start_time: seconds since the epoch; `None` is now. Defaults to `None`.
    """
    info = plugin_data_pb2.SessionStartInfo(
        group_name=group,
        start_time_secs=time.time() if start_time is None else start_time,
    )
    for name, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, int | float):
            info.hparams[name].number_value = float(value)
        else:
            info.hparams[name].string_value = str(value)
    data = plugin_data_pb2.HParamsPluginData(session_start_info=info)
    return _value(hparams_metadata.SESSION_START_INFO_TAG, data)


def experiment_value(
    hparams: Mapping[str, type], metrics: Sequence[str]
) -> summary_pb2.Summary.Value:
    """The experiment summary: the hyperparameters' names and types, the metrics.

    Args:
        hparams: name -> Python type of its values (`bool`, `int`, `float`,
            `str`).
        metrics: scalar tags to show as metric columns, read in each run.
    """
    experiment = api_pb2.Experiment(
        hparam_infos=[
            api_pb2.HParamInfo(
                name=name, type=_TYPES.get(kind, api_pb2.DATA_TYPE_STRING)
            )
            for name, kind in hparams.items()
        ],
        metric_infos=[
            api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics
        ],
    )
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    return _value(hparams_metadata.EXPERIMENT_TAG, data)


def write_session_start(
    log_dir: str | os.PathLike[str], hparams: Mapping[str, Any], group: str
) -> None:
    """Writes a run's session start (`session_start_value`) to `log_dir`."""
    summary.write_values(log_dir, 0, [session_start_value(hparams, group)])


def write_experiment(
    log_dir: str | os.PathLike[str], hparams: Mapping[str, type], metrics: Sequence[str]
) -> None:
    """Writes the experiment summary (`experiment_value`) to `log_dir`."""
    summary.write_values(log_dir, 0, [experiment_value(hparams, metrics)])
