"""Report documents shaped like the producers' `to_dict()`, and logs holding them.

`gradient_check_report` follows `GradientCheckReport.to_dict()`
(keras_bettermodels/gradient_check/report.py) and `timing_report`
`TimingReport.to_dict()` (keras_bettermodels/timing/report.py); tests that
need the producers' own output build it with them.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from keras_bettermodels.tensorboard import metadata, summary

GRADIENT_CHECK_TAG = "gradient_check/report"
INPUT_TIMING_TAG = "input_timing/report"
XSS = "<img src=x onerror=alert(1)>"
THRESHOLDS = {"great": 1e-7, "ok": 1e-5, "check": 1e-3}


def verdict_of(error: float) -> str:
    if error < THRESHOLDS["great"]:
        return "great"
    if error < THRESHOLDS["ok"]:
        return "ok"
    if error < THRESHOLDS["check"]:
        return "check"
    return "bug"


def _variable(name: str, error: float, kinks: int = 0) -> dict[str, Any]:
    shape = [4, 3] if name.endswith("kernel") else [3]
    return {
        "name": name,
        "shape": shape,
        "size": 12 if len(shape) == 2 else 3,
        "relative_error": error,
        "verdict": verdict_of(error),
        "checked": 2,
        "kinks": kinks,
    }


def gradient_check_report(
    errors: dict[str, float], *, kinks: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A report with one variable per `errors` item (name -> relative error).

    The variables named in `kinks` crossed a kink in one direction each.
    """
    overall = max(errors.values()) if errors else 0.0
    verdict = verdict_of(overall)
    variables = [
        _variable(name, error, int(name in kinks)) for name, error in errors.items()
    ]
    return {
        "relative_error": overall,
        "verdict": verdict,
        "passed": verdict in ("great", "ok"),
        "method": "directional",
        "epsilon": 1e-6,
        "thresholds": dict(THRESHOLDS),
        "loss": 0.6931,
        "num_parameters": sum(variable["size"] for variable in variables),
        "num_evaluations": 4 * len(errors) + 4,
        "elapsed": 0.12,
        "backend": "tensorflow",
        "num_directions": 2,
        "max_coordinates_per_variable": None,
        "seed": 0,
        "training": True,
        "variables": variables,
        "all_variables": _variable("(all variables)", overall) if errors else None,
        "kinks": list(kinks),
        "set_by": max(errors, key=errors.__getitem__) if errors else None,
        "nudge": None,
    }


def timing_report(
    epoch_times: list[float],
    *,
    cached: bool | None,
    compile_time: float = 0.5,
    batch_size: int = 32,
    steps: int = 10,
    advice: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A `TimingReport.to_dict()`-shaped document for `epoch_times`."""
    first = epoch_times[0]
    steady = statistics.median(epoch_times[1:]) if len(epoch_times) > 1 else None
    speedup = (first - compile_time) / steady if steady else None
    return {
        "warmup_epochs": 1,
        "batch_size": batch_size,
        "first_epoch_time": first,
        "steady_epoch_time": steady,
        "compile_time": compile_time,
        "speedup": speedup,
        "steps_per_second": steps / steady if steady else None,
        "samples_per_second": steps * batch_size / steady if steady else None,
        "cached": cached,
        "cache": "memory" if cached else None,
        "cache_path": None,
        "prefetched": True,
        "cache_reused": False,
        "cache_partial": False,
        "backend": "tensorflow",
        "recompiled_epochs": [],
        "recompile_time": None,
        "input_kind": None,
        "sync_time": 0.0,
        "epochs": [
            {
                "epoch": epoch,
                "time": time,
                "validation_time": 0.0,
                "steps": steps,
                "time_to_first_step": 0.001,
                "first_step_time": (compile_time if epoch == 0 else 0.0) + 0.01,
                "samples": steps * batch_size,
                "last_step_time": time / steps,
                "sync_time": 0.0,
                "steps_per_second": steps / time,
                "samples_per_second": steps * batch_size / time,
            }
            for epoch, time in enumerate(epoch_times)
        ],
        "pipeline": None,
        "advice": list(advice),
    }


def write_gradient_check(
    log_dir: str | os.PathLike[str], step: int, report: dict[str, Any], **kwargs: Any
) -> None:
    summary.write_json(
        log_dir,
        step,
        GRADIENT_CHECK_TAG,
        report,
        plugin_name=metadata.GRADIENT_CHECK_PLUGIN,
        **kwargs,
    )


def write_timing(
    log_dir: str | os.PathLike[str], step: int, report: dict[str, Any], **kwargs: Any
) -> None:
    summary.write_json(
        log_dir,
        step,
        INPUT_TIMING_TAG,
        report,
        plugin_name=metadata.INPUT_TIMING_PLUGIN,
        **kwargs,
    )


GOOD_ERRORS = {"dense/kernel": 3e-9, "dense/bias": 2e-9}
BUGGY_ERRORS = {"dense/kernel": 4e-9, "wrong_tanh/kernel": 0.02}


def write_gradient_check_logs(root: str | os.PathLike[str]) -> dict[int, Any]:
    """Three runs under `root`: `mlp` checked at steps 0, 5 and 10 (a kink at 5),
    `buggy` once, and `scalars_only` with no report; returns `mlp`'s reports."""
    root = os.fspath(root)
    reports = {
        0: gradient_check_report(GOOD_ERRORS),
        5: gradient_check_report(
            {**GOOD_ERRORS, "dense/kernel": 2e-6}, kinks=("dense/kernel",)
        ),
        10: gradient_check_report({**GOOD_ERRORS, "dense/bias": 5e-8}),
    }
    for step, report in reports.items():
        write_gradient_check(os.path.join(root, "mlp"), step, report)
    write_gradient_check(
        os.path.join(root, "buggy"), 0, gradient_check_report(BUGGY_ERRORS)
    )
    summary.write_scalars(os.path.join(root, "scalars_only"), 0, {"loss": 1.0})
    summary.close_all()
    return reports
