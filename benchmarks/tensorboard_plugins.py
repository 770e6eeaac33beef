"""Response times of the Gradient check and Input timing tabs, side by side.

Writes two log directories:

- one run with 1,000 gradient-check reports of 200 variables each (the
  report of a long `fit` with `GradientCheckCallback(every_n_epochs=1)` on a
  deep model);
- 100 runs with one timing report each (a sweep compared side by side).

and measures, in one run:

(a) in process, through TensorBoard's WSGI app (werkzeug) over the event
    multiplexer that `--load_fast=false` uses: the data provider's read alone
    and each route (`reports`, `report?step=`), keeping TensorBoard's default
    10 reports per run and keeping all 1,000 (`--samples_per_plugin`);
(b) over HTTP, the same routes of real `tensorboard` processes, with the
    default fast loader and with `--load_fast=false`;
(c) with headless Chromium (Debian's, through Playwright; skipped when
    missing): the time from opening a tab to its rendered table;
(d) in process, the `reports` listing over 5 and 20 runs whose latest report
    weighs about 7.5 MB: from the headlines `write_json` stores beside the
    reports, against logs written without them, the first listing (which
    decodes every report whole, as every listing did before headlines) and
    the later ones (cached per run, tag, step and wall time).

Goal: every route under 200 ms on this machine. The figures are medians;
timings are noisy on a busy machine, read the ratios, not the digits.

Run from the repository root:

    python benchmarks/tensorboard_plugins.py        # (a) to (d)
    python benchmarks/tensorboard_plugins.py large  # (d) alone
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_bettermodels.tensorboard import metadata, summary
from keras_bettermodels.tensorboard.gradient_check_plugin import (
    GradientCheckPlugin,
)
from keras_bettermodels.tensorboard.input_timing_plugin import (
    InputTimingPlugin,
)

REPORTS, VARIABLES, RUNS = 1_000, 200, 100
GOAL_MS = 200.0
REPEATS = 15
GC, TIMING = metadata.GRADIENT_CHECK_PLUGIN, metadata.INPUT_TIMING_PLUGIN
GC_TAG, TIMING_TAG = "gradient_check/report", "input_timing/report"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _verdict(error: float) -> str:
    for bound, name in ((1e-7, "great"), (1e-5, "ok"), (1e-3, "check")):
        if error < bound:
            return name
    return "bug"


def gradient_check_report(step: int) -> dict[str, Any]:
    """A `GradientCheckReport.to_dict()`-shaped report of `VARIABLES` variables."""
    variables = []
    for index in range(VARIABLES):
        error = 10.0 ** -(3 + (index + step) % 7)
        kind = "kernel" if index % 2 == 0 else "bias"
        variables.append(
            {
                "name": f"block_{index // 2}/dense/{kind}",
                "shape": [256, 256] if kind == "kernel" else [256],
                "size": 65_536 if kind == "kernel" else 256,
                "relative_error": error,
                "verdict": _verdict(error),
                "checked": 2,
                "kinks": int(index % 17 == 0),
            }
        )
    worst = max(v["relative_error"] for v in variables)
    return {
        "relative_error": worst,
        "verdict": _verdict(worst),
        "passed": _verdict(worst) in ("great", "ok"),
        "method": "directional",
        "epsilon": 1e-6,
        "thresholds": {"great": 1e-7, "ok": 1e-5, "check": 1e-3},
        "loss": 0.5,
        "num_parameters": 6_579_200,
        "num_evaluations": 4 * VARIABLES + 4,
        "elapsed": 3.2,
        "backend": "tensorflow",
        "num_directions": 2,
        "max_coordinates_per_variable": None,
        "seed": step,
        "training": True,
        "variables": variables,
        "all_variables": None,
        "kinks": [v["name"] for v in variables if v["kinks"]],
    }


def timing_report(index: int) -> dict[str, Any]:
    """A `TimingReport.to_dict()`-shaped report: cached runs alternate."""
    cached = index % 2 == 0
    times = [2.0] + [0.3 if cached else 1.8] * 4
    epochs = [
        {
            "epoch": epoch,
            "time": time_,
            "validation_time": 0.1,
            "steps": 50,
            "time_to_first_step": 0.01,
            "first_step_time": 0.5 if epoch == 0 else 0.02,
            "samples": 1600,
            "last_step_time": time_ / 50,
            "steps_per_second": 50 / time_,
            "samples_per_second": 1600 / time_,
        }
        for epoch, time_ in enumerate(times)
    ]
    steady = times[1]
    return {
        "warmup_epochs": 1,
        "batch_size": 32,
        "first_epoch_time": times[0],
        "steady_epoch_time": steady,
        "compile_time": 0.48,
        "speedup": (times[0] - 0.48) / steady,
        "steps_per_second": 50 / steady,
        "samples_per_second": 1600 / steady,
        "cached": cached,
        "cache": "memory" if cached else None,
        "cache_path": None,
        "prefetched": True,
        "cache_reused": False,
        "cache_partial": False,
        "pipeline": None,
        "advice": [] if cached else ["add `.cache()` after the expensive `map`"],
        "backend": "tensorflow",
        "epochs": epochs,
    }


def write_logs(root: Path) -> tuple[Path, Path]:
    checks, timing = root / "gradient_check", root / "timing"
    for step in range(REPORTS):
        report = gradient_check_report(step)
        summary.write_json(checks / "deep_mlp", step, GC_TAG, report, plugin_name=GC)
    for index in range(RUNS):
        summary.write_json(
            timing / f"run_{index:03d}",
            4,
            TIMING_TAG,
            timing_report(index),
            plugin_name=TIMING,
        )
    summary.close_all()
    return checks, timing


def median_ms(call: Callable[[], Any], repeats: int = REPEATS) -> float:
    call()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def row(
    label: str, ms: float, baseline: float | None = None, of: str = "the read"
) -> None:
    versus = f"{ms / baseline:6.2f}x {of}" if baseline else " " * (8 + len(of))
    status = "ok" if ms < GOAL_MS else "OVER GOAL"
    print(
        f"  {label:<58} {ms:8.1f} ms  {versus}  {ms / GOAL_MS:5.2f} of goal  {status}"
    )


def in_process(log_dir: Path, plugin_class: type, keep: int) -> Any:
    from tensorboard import context
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import (
        plugin_event_multiplexer as multiplexer_lib,
    )
    from tensorboard.data import provider
    from tensorboard.plugins import base_plugin
    from werkzeug import test as werkzeug_test

    multiplexer = multiplexer_lib.EventMultiplexer(
        tensor_size_guidance={plugin_class.plugin_name: keep}
    )
    multiplexer.AddRunsFromDirectory(str(log_dir))
    multiplexer.Reload()
    data = data_provider.MultiplexerDataProvider(multiplexer, str(log_dir))
    plugin = plugin_class(
        base_plugin.TBContext(data_provider=data, logdir=str(log_dir))
    )
    client = werkzeug_test.Client(
        application.TensorBoardWSGI([plugin], data_provider=data)
    )
    ctx = context.RequestContext()

    def read() -> None:
        listing = data.list_tensors(
            ctx, experiment_id="", plugin_name=plugin.plugin_name
        )
        runs = sorted(listing)
        tags = sorted({t for r in runs for t in listing[r]})
        data.read_tensors(
            ctx,
            experiment_id="",
            plugin_name=plugin.plugin_name,
            downsample=100_000,
            run_tag_filter=provider.RunTagFilter(runs=runs, tags=tags),
        )

    def get(route: str, **query: Any) -> Any:
        response = client.get(
            f"/data/plugin/{plugin.plugin_name}/{route}", query_string=query
        )
        assert response.status_code == 200, response.get_data()
        return response.get_json()

    return read, get, plugin


def part_a(checks: Path, timing: Path) -> None:
    print("(a) in process: TensorBoardWSGI + the event multiplexer (--load_fast=false)")
    for keep, words in ((10, "TensorBoard's default: 10 kept"), (0, "all 1,000 kept")):
        read, get, _ = in_process(checks, GradientCheckPlugin, keep)
        steps = get("reports")["reports"][0]["steps"]
        baseline = median_ms(read)
        print(
            f"  1 run x {REPORTS:,} gradient checks x {VARIABLES} variables ({words}):"
        )
        row("data provider list + read alone", baseline)
        row(
            "GET reports (latest of each run)",
            median_ms(lambda get=get: get("reports")),
            baseline,
        )
        row(
            "GET report?step=<earliest kept>",
            median_ms(
                lambda get=get, step=steps[0]: get(
                    "report", run="deep_mlp", tag=GC_TAG, step=step
                )
            ),
            baseline,
        )
    read, get, _ = in_process(timing, InputTimingPlugin, 10)
    baseline = median_ms(read)
    print(f"  {RUNS} runs of timing reports:")
    row("data provider list + read alone", baseline)
    row("GET reports (all runs)", median_ms(lambda: get("reports")), baseline)


class Board:
    def __init__(self, log_dir: Path, *flags: str) -> None:
        import socket
        import subprocess

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(Path(sys.executable).with_name("tensorboard")),
            "--logdir",
            str(log_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *flags,
        ]
        if not _entry_points_installed():
            launcher = (
                Path(__file__).resolve().parents[1]
                / "tests/browser/_tensorboard_main.py"
            )
            command = [sys.executable, str(launcher), *command[1:]]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.read()

    def wait(self, path: str, needle: bytes, timeout: float = 180.0) -> float:
        start = time.monotonic()
        delay = 0.05
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                raise RuntimeError("TensorBoard exited")
            try:
                if needle in self.get(path):
                    return time.monotonic() - start
            except OSError:
                pass
            time.sleep(delay)  # polling interval
            delay = min(2 * delay, 0.5)
        raise TimeoutError(f"{path} never held {needle!r}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def _entry_points_installed() -> bool:
    import importlib.metadata

    found = importlib.metadata.entry_points(group="tensorboard_plugins")
    return {GradientCheckPlugin, InputTimingPlugin} <= {e.load() for e in found}


def part_b_and_c(root: Path) -> None:
    from urllib.parse import quote

    print("(b) over HTTP, real tensorboard processes (all 1,000 reports kept)")
    keep = f"--samples_per_plugin={GC}=1000"
    boards = {
        "fast loader": Board(root, keep),
        "--load_fast=false": Board(root, keep, "--load_fast=false"),
    }
    try:
        for name, board in boards.items():
            gc_reports = f"/data/plugin/{GC}/reports"
            loaded = board.wait(gc_reports, f'"step": {REPORTS - 1}'.encode())
            board.wait(f"/data/plugin/{TIMING}/reports", b"run_099")
            print(f"  {name} (all data served {loaded:.1f} s after start):")
            row(
                "GET gradient check reports (latest + 100 steps listed)",
                median_ms(lambda b=board, p=gc_reports: b.get(p)),
            )
            listed = json.loads(board.get(gc_reports))["reports"][0]["steps"]
            unlisted = min(set(range(REPORTS)) - set(listed))
            for step, words in ((listed[0], "a listed step"), (unlisted, "another")):
                one = (
                    f"/data/plugin/{GC}/report?run=gradient_check%2Fdeep_mlp"
                    f"&tag={quote(GC_TAG, safe='')}&step={step}"
                )
                row(
                    f"GET gradient check report?step= ({words})",
                    median_ms(lambda b=board, p=one: b.get(p)),
                )
            timing_reports = f"/data/plugin/{TIMING}/reports"
            row(
                f"GET timing reports ({RUNS} runs)",
                median_ms(lambda b=board, p=timing_reports: b.get(p)),
            )
        part_c(boards["fast loader"])
    finally:
        for board in boards.values():
            board.stop()


def part_c(board: Board) -> None:
    if not os.path.exists(CHROMIUM) or importlib.util.find_spec("playwright") is None:
        print("(c) skipped: needs Debian's chromium and the playwright package")
        return
    from playwright.sync_api import sync_playwright

    print("(c) headless Chromium: opening a tab until its table is drawn (median of 3)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS
        )
        try:
            for plugin_name, selector, words in (
                (GC, "table.variables tbody tr", f"1 run, {VARIABLES} rows"),
                (TIMING, "table.comparison tbody tr", f"{RUNS} runs, {RUNS} charts"),
            ):
                cold, warm = [], []
                for _ in range(3):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    start = time.perf_counter()
                    page.goto(f"{board.url}/#{plugin_name}")
                    frame = page.frame_locator(f'iframe[src*="name={plugin_name}"]')
                    frame.locator(selector).first.wait_for(timeout=60_000)
                    cold.append(time.perf_counter() - start)
                    # Reload the tab's frame alone: TensorBoard's app is loaded.
                    tab = page.frame(url=lambda url, n=plugin_name: f"name={n}" in url)
                    start = time.perf_counter()
                    tab.goto(tab.url)
                    frame.locator(selector).first.wait_for(timeout=60_000)
                    warm.append(time.perf_counter() - start)
                    page.close()
                print(
                    f"  {plugin_name} ({words}): page load to table "
                    f"{1000 * statistics.median(cold):7.0f} ms; the tab alone "
                    f"{1000 * statistics.median(warm):7.0f} ms"
                )
        finally:
            browser.close()


LARGE_VARIABLES = 57_000  # about 7.5 MB of JSON per report
LARGE_RUNS = (5, 20)


def _large_logs(root: Path, runs: int, headlines: bool) -> Path:
    """`runs` runs whose report at step 1 weighs about 7.5 MB.

    One event file is written and copied into each run: the writer's
    pure-Python CRC costs seconds per MB, and the listing reads each copy
    as its own run.
    """
    source = root / ("one_with" if headlines else "one_without")
    if not source.exists():
        report = gradient_check_report(0)
        row = report["variables"][0]
        report["variables"] = [
            {**row, "name": f"layer_{index}/kernel"} for index in range(LARGE_VARIABLES)
        ]
        if headlines:
            summary.write_json(source, 1, GC_TAG, report, plugin_name=GC)
        else:  # as written before headlines: the report alone
            value = summary._string_value(
                GC_TAG, metadata.create_summary_metadata(GC), json.dumps(report)
            )
            summary.write_values(source, 1, [value])
        summary.close_all()
    logs = root / f"large_{runs}_{'with' if headlines else 'without'}"
    for index in range(runs):
        shutil.copytree(source, logs / f"run_{index:02d}")
    return logs


def part_d(root: Path) -> None:
    print(
        "(d) in process: GET reports over runs whose latest report weighs "
        "about 7.5 MB (TensorBoard's default: 10 kept)"
    )
    for runs in LARGE_RUNS:
        _, new, _ = in_process(_large_logs(root, runs, True), GradientCheckPlugin, 10)
        _, old, plugin = in_process(
            _large_logs(root, runs, False), GradientCheckPlugin, 10
        )
        size = len(json.dumps(new("reports")))
        headlines = median_ms(lambda new=new: new("reports"))
        cached = median_ms(lambda old=old: old("reports"))

        def uncached(old: Any = old, plugin: Any = plugin) -> Any:
            plugin._summaries.clear()  # as every listing did before headlines
            return old("reports")

        first = median_ms(uncached, repeats=3)
        print(f"  {runs} runs, a {size / 1000:.1f} kB answer:")
        row("from the headlines", headlines, headlines, "new")
        row("without headlines, first listing (decodes all)", first, headlines, "new")
        row("without headlines, later listings (cached)", cached, headlines, "new")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="kbm_tb_bench_"))
    if sys.argv[1:] == ["large"]:
        try:
            part_d(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return
    try:
        start = time.perf_counter()
        checks, timing = write_logs(root)
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        print(
            f"Wrote {REPORTS:,} gradient checks x {VARIABLES} variables and {RUNS} "
            f"timing runs ({size / 1e6:.0f} MB) in {time.perf_counter() - start:.1f} s"
        )
        print(
            f"Goal: every route under {GOAL_MS:.0f} ms. Medians of {REPEATS} calls.\n"
        )
        part_a(checks, timing)
        print()
        part_b_and_c(root)
        print()
        part_d(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
