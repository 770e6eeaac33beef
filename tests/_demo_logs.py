"""The demo's Input timing reports, read back from its log directory.

Used by `tests/test_demo.py`, and run as a script by `make wheel-check` on the
logs the installed wheel's demo wrote without TensorFlow:

    python tests/_demo_logs.py runs

It imports only keras-bettermodels and TensorBoard (no `tests` package), and
reads with TensorBoard's own event reader, as the tab does.
"""

from __future__ import annotations

import os
import sys
from typing import Any

RUNS = ("uncached", "cached")


def input_timing_reports(log_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Run name -> the latest Input timing report under `<log_dir>/input_timing`."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    from keras_bettermodels.tensorboard import metadata, summary

    root = os.path.join(log_dir, "input_timing")
    found: dict[str, dict[str, Any]] = {}
    for run in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        events = EventAccumulator(os.path.join(root, run), size_guidance={"tensors": 0})
        events.Reload()
        for tag in events.Tags()["tensors"]:
            plugin_data = events.SummaryMetadata(tag).plugin_data
            # Beside each report goes its headline, under the same plugin.
            if metadata.headline_of(plugin_data.content) is not None:
                continue
            if plugin_data.plugin_name == metadata.INPUT_TIMING_PLUGIN:
                latest = max(events.Tensors(tag), key=lambda event: event.step)
                found[run] = summary.read_json(latest.tensor_proto)
    return found


def main(argv: list[str]) -> int:
    """Checks that `argv[0]` holds an uncached and a cached timing report."""
    reports = input_timing_reports(argv[0])
    missing = [run for run in RUNS if not reports.get(run, {}).get("epochs")]
    if missing:
        print(f"No Input timing report with epochs for {missing} in {argv[0]}")
        return 1
    for run in RUNS:
        report = reports[run]
        print(
            f"Input timing {run}: {len(report['epochs'])} epochs of "
            f"{report['input_kind']}, steady epoch {report['steady_epoch_time']:.3f} s"
        )
    return 0


if __name__ == "__main__":
    # Run as a script, this folder comes first on `sys.path`, where the test
    # package `tensorboard` would hide TensorBoard's.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [path for path in sys.path if os.path.abspath(path or ".") != here]
    sys.exit(main(sys.argv[1:]))
