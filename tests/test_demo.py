"""`python -m keras_bettermodels demo`, run the way users run it, on each backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._imports import heavy_modules_after

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keras_bettermodels", *args],
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
    result = _run("demo", "--quick", "--log-dir", str(log_dir))
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


def test_demo_prints_tensorboard_command(demo_run: tuple[str, Path]) -> None:
    output, log_dir = demo_run
    assert (
        _line(output, "View them with:")
        == f"View them with: tensorboard --logdir {log_dir} --host 127.0.0.1"
    )


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


def test_demo_times_an_uncached_and_a_cached_pipeline(demo_run):
    output, _ = demo_run
    uncached, cached = output.split("Cache timing, uncached pipeline:")[1].split(
        "Cache timing, cached pipeline:"
    )
    assert "cached in memory" in cached
    assert "cached in memory" not in uncached


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
