"""HParams summaries written without TensorFlow, read back as the dashboard does."""

from __future__ import annotations

import pytest
from tensorboard.compat.proto import summary_pb2

from keras_bettermodels.tensorboard import hparams, summary


def read_hparams(logdir):
    """run -> {tag: plugin content}, through the HParams plugin's data provider path,
    and the experiment the plugin builds from them."""
    from tensorboard import context
    from tensorboard.backend.event_processing import (
        data_provider,
        plugin_event_multiplexer,
    )
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    backend = backend_context.Context(
        base_plugin.TBContext(
            logdir=str(logdir), multiplexer=multiplexer, data_provider=provider
        )
    )
    request = context.RequestContext()
    content = backend.hparams_metadata(request, "")
    experiment = backend.experiment_from_metadata(request, "", True, content, [])
    return content, experiment


def session_starts(content):
    from tensorboard.plugins.hparams import metadata

    return {
        run: metadata.parse_session_start_info_plugin_data(
            tags[metadata.SESSION_START_INFO_TAG]
        )
        for run, tags in content.items()
        if metadata.SESSION_START_INFO_TAG in tags
    }


@pytest.mark.backend_independent
def test_session_starts_and_the_experiment_read_back_as_the_dashboard_reads_them(
    tmp_path,
):
    for trial, units in (("0", 8), ("1", 16)):
        run = tmp_path / trial / "execution0"
        hparams.write_session_start(run, {"units": units, "act": "relu"}, trial)
        summary.write_scalars(run, 0, {"val_accuracy": units / 100})
    hparams.write_experiment(tmp_path, {"units": int, "act": str}, ["val_accuracy"])
    summary.close_all()

    content, experiment = read_hparams(tmp_path)
    starts = session_starts(content)
    assert {run: s.group_name for run, s in starts.items()} == {
        "0/execution0": "0",
        "1/execution0": "1",
    }
    assert starts["1/execution0"].hparams["units"].number_value == 16
    assert starts["0/execution0"].hparams["act"].string_value == "relu"
    assert sorted(h.name for h in experiment.hparam_infos) == ["act", "units"]
    assert [m.name.tag for m in experiment.metric_infos] == ["val_accuracy"]


@pytest.mark.backend_independent
def test_every_summary_is_a_tensor_of_the_hparams_plugin():
    for value in (
        hparams.session_start_value({"flag": True, "rate": 0.1}, "3"),
        hparams.experiment_value({"flag": bool}, ["loss"]),
    ):
        assert value.metadata.plugin_data.plugin_name == "hparams"
        assert value.metadata.data_class == summary_pb2.DATA_CLASS_TENSOR
