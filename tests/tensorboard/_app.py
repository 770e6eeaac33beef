"""A TensorBoard WSGI app over a log directory, with one of our plugins, for tests.

Reads the logs the way `tensorboard --load_fast=false` does (an event
multiplexer behind `MultiplexerDataProvider`) and serves them through
TensorBoard's own WSGI application, middleware included, so requests go
through the same routing, experiment-id and error handling as in a browser.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from werkzeug import test as werkzeug_test


@dataclasses.dataclass
class Served:
    plugin: Any
    client: werkzeug_test.Client
    provider: Any

    def url(self, route: str) -> str:
        return f"/data/plugin/{self.plugin.plugin_name}/{route.lstrip('/')}"

    def get(self, route: str, **params: Any) -> werkzeug_test.TestResponse:
        return self.client.get(self.url(route), query_string=params or None)


def serve(log_dir: str | os.PathLike[str], plugin_class: type) -> Served:
    """Loads `log_dir` once and returns a client for `plugin_class`'s routes."""
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import (
        plugin_event_multiplexer as multiplexer_lib,
    )
    from tensorboard.plugins import base_plugin

    multiplexer = multiplexer_lib.EventMultiplexer(
        # Keep every report, as `--samples_per_plugin <name>=0` would.
        tensor_size_guidance={plugin_class.plugin_name: 0}
    )
    multiplexer.AddRunsFromDirectory(os.fspath(log_dir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, os.fspath(log_dir))
    context = base_plugin.TBContext(
        logdir=os.fspath(log_dir), data_provider=provider, multiplexer=multiplexer
    )
    plugin = plugin_class(context)
    app = application.TensorBoardWSGI([plugin], data_provider=provider)
    return Served(plugin, werkzeug_test.Client(app), provider)


def json_of(response: werkzeug_test.TestResponse) -> Any:
    """The JSON body of a response that must be JSON."""
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.get_data(as_text=True))
