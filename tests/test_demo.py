"""`python -m keras_bettermodels demo`, run the way users run it, on each backend.

As each backend's extra installs it: on TensorFlow with TensorFlow (`[tensorflow]`),
on JAX and PyTorch with `import tensorflow` failing as if it were not installed
(`[jax]`, `[torch]`), so the demo's path without `tf.data` is the one checked there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._imports import heavy_modules_after

REPO = Path(__file__).resolve().parents[1]


BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
WITHOUT_TENSORFLOW = BACKEND != "tensorflow"
# `python -m keras_bettermodels`, with TensorFlow as if not installed: `import
# tensorflow` fails, `importlib.util.find_spec("tensorflow")` answers None.
_WITHOUT_TENSORFLOW = (
    "import runpy, sys; sys.modules['tensorflow'] = None; "
    "runpy.run_module('keras_bettermodels', run_name='__main__', alter_sys=True)"
)


def _run(
    *args: str, timeout: float = 300, without_tensorflow: bool = False
) -> subprocess.CompletedProcess[str]:
    if without_tensorflow:
        command = [sys.executable, "-c", _WITHOUT_TENSORFLOW, *args]
    else:
        command = [sys.executable, "-m", "keras_bettermodels", *args]
    return subprocess.run(
        command,
        cwd=REPO,
        env=dict(os.environ),  # keeps KERAS_BACKEND
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _tensor_tags(log_dir: Path) -> dict[str, int]:
    """Returns tag -> number of values in the event files of `log_dir`."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: len(accumulator.Tensors(tag)) for tag in accumulator.Tags()["tensors"]}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    log_dir = tmp_path_factory.mktemp("demo")
    result = _run(
        "demo",
        "--quick",
        "--log-dir",
        str(log_dir),
        timeout=400,
        without_tensorflow=WITHOUT_TENSORFLOW,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, log_dir


def _line(output: str, prefix: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one line starting {prefix!r} in:\n{output}"
    return lines[0]


def test_demo_prints_backend_and_stopping_summary(demo_run: tuple[str, Path]) -> None:
    output, _ = demo_run
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        assert _line(output, "Keras backend:") == f"Keras backend: {backend}"
    epochs_run = int(_line(output, "Epochs run:").split(":")[1])
    assert 1 <= epochs_run <= 30  # --quick caps the epochs at 30
    reason = _line(output, "Stopping reason:")
    assert re.search(r"early stopping by (GL\(5\)|UP\(3\))", reason) or (
        reason == f"Stopping reason: no criterion fired within {epochs_run} epochs"
    ), reason
    best = re.fullmatch(
        r"Best epoch: (\d+) \(val_loss [\d.]+, weights restored\)",
        _line(output, "Best epoch:"),
    )
    assert best is not None
    assert 1 <= int(best.group(1)) <= epochs_run
    last = _line(output, "Last epoch")
    assert f"Last epoch ({epochs_run}): GL=" in last
    for measure in ("P_k=", "PQ=", "UP="):
        assert measure in last


def test_demo_prints_what_the_learning_curves_say(demo_run: tuple[str, Path]) -> None:
    output, _ = demo_run
    codes = _line(output, "Diagnosis (").split(": ", 1)[1].split(", ")
    assert codes and set(codes) <= {"high-bias", "high-variance", "good-fit"}
    assert "Diagnosis: " in output  # the callback's full sentence (verbose=1)


def test_demo_restored_weights_reach_high_test_accuracy(
    demo_run: tuple[str, Path],
) -> None:
    output, _ = demo_run
    match = re.fullmatch(
        r"Test accuracy \(best weights\): ([\d.]+)",
        _line(output, "Test accuracy"),
    )
    assert match is not None
    assert float(match.group(1)) > 0.8


def test_demo_ends_with_a_tensorboard_command_a_pip_user_can_run(
    demo_run: tuple[str, Path],
) -> None:
    output, log_dir = demo_run
    last = output.splitlines()[-1]
    arguments = f"--logdir {log_dir} --host 127.0.0.1"  # absolute
    assert last in (
        f"View them with: tensorboard {arguments}",
        f"View them with: {sys.executable} -m tensorboard.main {arguments}",
    )
    assert _line(output, "TensorBoard logs in") == (f"TensorBoard logs in {log_dir}")


@pytest.mark.backend_independent
def test_the_tensorboard_command_is_this_environments(monkeypatch, tmp_path):
    """`tensorboard` only when PATH finds this environment's; the path absolute."""
    import importlib.util

    from keras_bettermodels.demo import _tensorboard_command

    ours = Path(sys.executable).with_name("tensorboard")
    assert ours.exists()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(ours.parent))
    assert _tensorboard_command("runs/demo") == (
        f"tensorboard --logdir {tmp_path / 'runs' / 'demo'} --host 127.0.0.1"
    )
    other = tmp_path / "other-env"
    other.mkdir()
    (other / "tensorboard").write_text("#!/bin/sh\n")
    (other / "tensorboard").chmod(0o755)
    monkeypatch.setenv("PATH", str(other))  # another environment's tensorboard
    assert _tensorboard_command("/tmp/a b") == (
        f"{sys.executable} -m tensorboard.main --logdir '/tmp/a b' --host 127.0.0.1"
    )
    assert importlib.util.find_spec("tensorboard.main") is not None


def test_demo_writes_event_files_with_expected_tags(
    demo_run: tuple[str, Path],
) -> None:
    output, log_dir = demo_run
    epochs_run = int(_line(output, "Epochs run:").split(":")[1])
    assert list((log_dir / "early_stopping").glob("events.out.tfevents.*"))
    assert list((log_dir / "fit").glob("events.out.tfevents.*"))

    fit_tags = _tensor_tags(log_dir / "fit")
    assert fit_tags == {
        "loss": epochs_run,
        "val_loss": epochs_run,
        "accuracy": epochs_run,
        "val_accuracy": epochs_run,
    }
    stopping_tags = _tensor_tags(log_dir / "early_stopping")
    assert stopping_tags["early_stopping/GL"] == epochs_run
    # P_k and PQ are defined at strip ends (every 5th epoch) only.
    assert stopping_tags["early_stopping/P_k"] == epochs_run // 5
    assert stopping_tags["early_stopping/PQ"] == epochs_run // 5


def test_unknown_command_is_an_error() -> None:
    result = _run("no-such-command", timeout=60)
    assert result.returncode == 2
    assert "invalid choice: 'no-such-command'" in result.stderr


def test_missing_command_is_an_error() -> None:
    result = _run(timeout=60)
    assert result.returncode == 2
    assert "required" in result.stderr


def test_importing_the_demo_does_not_import_keras() -> None:
    code = "import keras_bettermodels.demo, keras_bettermodels.__main__"
    assert heavy_modules_after(code) == []


def test_demo_tunes_and_retrains_on_training_plus_validation(demo_run):
    output, _ = demo_run
    assert _line(output, "Random search:") == "Random search: 2 trials of 5 epochs"
    retrained = re.fullmatch(
        r"Retrained on 800 samples \(300 training \+ 500 validation\) for (\d+) epochs",
        _line(output, "Retrained on"),
    )
    assert retrained is not None and 1 <= int(retrained.group(1)) <= 5
    accuracy = re.fullmatch(
        r"Tuned test accuracy: search model ([\d.]+), retrained model ([\d.]+)",
        _line(output, "Tuned test accuracy"),
    )
    assert accuracy is not None and float(accuracy.group(2)) > 0.8


def _assert_the_cache_saves_the_reading(uncached: float, cached: float) -> None:
    """A gross effect: a cached steady epoch saves at least half its reading.

    The reading is 1 ms per sample, 0.29 s an epoch. Not a ratio: that hangs on
    the step's own time, which a busy machine stretches (PyTorch's 10 steps took
    0.69 s cached beside 1.56 s uncached under load).
    """
    from keras_bettermodels import demo

    whole_batches = demo.TRAIN_SIZE // demo.BATCH_SIZE
    reading = demo.READ_SECONDS_PER_SAMPLE * demo.BATCH_SIZE * whole_batches
    assert uncached - cached > reading / 2, (uncached, cached)


def test_demo_times_an_uncached_and_a_cached_pipeline(demo_run):
    output, _ = demo_run
    uncached, cached = output.split("Cache timing, uncached pipeline:")[1].split(
        "Cache timing, cached pipeline:"
    )
    if WITHOUT_TENSORFLOW:
        assert "TensorFlow is not installed, so no tf.data" in output
        for part in (uncached, cached):
            assert "not a tf.data pipeline (PyDataset): timing only" in part
    else:
        assert "cached in memory" in cached
        assert "cached in memory" not in uncached
    faster = re.fullmatch(
        r"Cache timing: a steady epoch takes ([\d.]+) s uncached and ([\d.]+) s "
        r"cached, ([\d.]+)x faster",
        _line(output, "Cache timing: a steady epoch"),
    )
    assert faster is not None
    _assert_the_cache_saves_the_reading(float(faster.group(1)), float(faster.group(2)))


@pytest.mark.skipif(
    not WITHOUT_TENSORFLOW, reason="the TensorFlow pass runs the demo with TensorFlow"
)
def test_demo_without_tensorflow_writes_the_input_timing_reports(demo_run):
    """What `pip install 'keras-bettermodels[jax]'` gets: the tab has both runs."""
    from tests._demo_logs import input_timing_reports

    _, log_dir = demo_run
    reports = input_timing_reports(log_dir)
    assert set(reports) == {"uncached", "cached"}
    for report in reports.values():
        assert report["input_kind"] == "PyDataset"
        assert report["backend"] == BACKEND
        assert len(report["epochs"]) == 3  # --quick
        assert report["batch_size"] == 32  # read from the PyDataset
    steady = {run: report["steady_epoch_time"] for run, report in reports.items()}
    _assert_the_cache_saves_the_reading(steady["uncached"], steady["cached"])
    scalars = _tensor_tags(log_dir / "input_timing" / "cached")
    assert scalars["input_timing/epoch_time"] == 3


def test_demo_checks_the_gradient_every_ten_epochs(demo_run):
    output, log_dir = demo_run
    epochs_run = int(_line(output, "Epochs run:").split(":")[1])
    checks = _line(output, "Gradient checks (epochs done: relative error):")
    steps = [int(step) for step in re.findall(r"(\d+): [\d.e+-]+ \(\w+\)", checks)]
    assert steps == list(range(0, epochs_run + 1, 10))
    # A correct MLP: every check lands in the "great" or "ok" band.
    assert set(re.findall(r"\((\w+)\)", checks)) <= {"great", "ok"}
    assert "Last gradient check, in full:\nGradient check passed" in output
    tags = _tensor_tags(log_dir / "gradient_check")
    assert tags["gradient_check/report"] == len(steps)


def test_demo_guards_mixed_precision_and_measures_it(demo_run):
    output, log_dir = demo_run
    audit = output.split("MixedPrecisionGuard: audit of model")[1]
    assert "policy 'mixed_float16'" in audit.splitlines()[0]
    # This machine has no GPU: the audit says so, and the measure agrees.
    assert "hardware-no-speedup" in audit
    measured = re.fullmatch(
        r"Measured here: mixed_float16 trains at ([\d.]+)x the speed of float32 .*",
        _line(output, "Measured here:"),
    )
    assert measured is not None and float(measured.group(1)) > 0
    assert "mixed_precision/audit" in _tensor_tags(log_dir / "mixed_precision")


def test_demo_logs_fill_both_tensorboard_tabs(demo_run):
    """What `make tensorboard` shows: both of our tabs have the demo's runs."""
    import json

    from keras_bettermodels.tensorboard.gradient_check_plugin import (
        GradientCheckPlugin,
    )
    from keras_bettermodels.tensorboard.input_timing_plugin import InputTimingPlugin
    from tests.tensorboard._app import serve

    _, log_dir = demo_run
    for plugin_class, runs in (
        (GradientCheckPlugin, {"gradient_check"}),
        (InputTimingPlugin, {"input_timing/uncached", "input_timing/cached"}),
    ):
        served = serve(log_dir, plugin_class)
        response = served.get("reports")
        assert response.status_code == 200
        entries = json.loads(response.get_data())["reports"]
        assert {entry["run"] for entry in entries} == runs
        assert all(entry["summary"] and not entry["error"] for entry in entries)
        for entry in entries:  # the whole report comes from /report
            whole = served.get("report", run=entry["run"], tag=entry["tag"])
            assert whole.status_code == 200
            assert json.loads(whole.get_data())["report"]
