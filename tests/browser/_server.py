"""A real `tensorboard` process on a free port, polled until it serves our data."""

from __future__ import annotations

import importlib.metadata
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keras_bettermodels.tensorboard import metadata

PLUGINS = (metadata.GRADIENT_CHECK_PLUGIN, metadata.INPUT_TIMING_PLUGIN)
LAUNCHER = Path(__file__).with_name("_tensorboard_main.py")


ENTRY_POINTS = {
    "keras_bettermodels.tensorboard.gradient_check_plugin:GradientCheckPlugin",
    "keras_bettermodels.tensorboard.input_timing_plugin:InputTimingPlugin",
    "keras_bettermodels.tensorboard.training_health_plugin:TrainingHealthPlugin",
}


def entry_points_installed() -> bool:
    """Whether TensorBoard finds the plugins through `tensorboard_plugins`."""
    found = importlib.metadata.entry_points(group="tensorboard_plugins")
    return {entry_point.value for entry_point in found} >= ENTRY_POINTS


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TensorBoard:
    """`tensorboard --logdir LOG_DIR --host 127.0.0.1 --port <free> *flags`.

    Runs the `tensorboard` command of this environment, which finds the
    plugins through their entry points; in a checkout whose entry points are
    not installed yet, `_tensorboard_main.py` adds them instead.
    """

    def __init__(self, log_dir: Path, *flags: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if entry_points_installed():
            program = [str(Path(sys.executable).with_name("tensorboard"))]
        else:
            program = [sys.executable, str(LAUNCHER)]
        self.command = [
            *program,
            "--logdir",
            str(log_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *flags,
        ]
        self._log = open(  # noqa: SIM115 - closed in stop()
            log_dir.parent / f"tensorboard-{self.port}.log", "w+"
        )
        self.process = subprocess.Popen(
            self.command, stdout=self._log, stderr=subprocess.STDOUT
        )

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.load(response)

    def wait_until(self, ready: Callable[[TensorBoard], bool], timeout: float) -> None:
        """Polls `ready(self)` until it holds; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"TensorBoard exited early:\n{self.output()}")
            try:
                if ready(self):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"TensorBoard was not ready after {timeout} s:\n{self.output()}"
                )
            time.sleep(delay)  # polling interval, not a wait for the server
            delay = min(delay * 2, 0.5)

    def reports(self, plugin_name: str) -> dict[str, Any]:
        """Run -> entry of `/data/plugin/<plugin_name>/reports`."""
        body = self.get_json(f"/data/plugin/{plugin_name}/reports")
        return {entry["run"]: entry for entry in body["reports"]}

    def output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()[-4000:]

    def terminate(self) -> None:
        """Asks the process to stop (see `stop`)."""
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        """Stops the process: SIGTERM, then SIGKILL after 5 s."""
        self.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
