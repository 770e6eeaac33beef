"""Report documents shaped like the producers' `to_dict()`, and logs holding them.

`gradient_check_report` follows `GradientCheckReport.to_dict()`
(keras_bettermodels/gradient_check/report.py), `timing_report`
`TimingReport.to_dict()` (keras_bettermodels/timing/report.py) and
`health_report` `HealthReport.to_dict()` (keras_bettermodels/health/report.py);
tests that need the producers' own output build it with them.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from keras_bettermodels.tensorboard import metadata, summary

GRADIENT_CHECK_TAG = "gradient_check/report"
INPUT_TIMING_TAG = "input_timing/report"
TRAINING_HEALTH_TAG = "training_health/report"
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


HEALTH_STATISTICS = (
    "grad_norm",
    "update_ratio",
    "weight_norm",
    "activation_abs_max",
    "activation_min_nonzero",
    "gradient_abs_max",
    "gradient_min_nonzero",
    "dead_fraction",
    "activation_underflow",
    "gradient_underflow",
)


def health_report(
    layers: tuple[str, ...] = ("net/first", "net/dead", "net/last"),
    steps: tuple[int, ...] = (0, 4, 8),
    *,
    dead: str | None = "net/dead",
    findings: tuple[dict[str, Any], ...] | None = None,
) -> dict[str, Any]:
    """A `HealthReport.to_dict()`-shaped document: every layer at every step.

    The `dead` layer's units are all dead and get no gradient; the others'
    statistics grow with the step. Its findings default to `dead`'s
    `dead-units` at step 0 and a loss spike at the last step.
    """
    rows = []
    for step in steps:
        for index, layer in enumerate(layers):
            is_dead = layer == dead
            scale = (index + 1) * (1 + step / 10)
            rows.append(
                {
                    "step": step,
                    "layer": layer,
                    "params": 72 + index,
                    "grad_norm": 0.0 if is_dead else 0.5 * scale,
                    "update_ratio": None if step == 0 else 1e-3 * scale,
                    "weight_norm": 2.0 * scale,
                    "activation_abs_max": 0.0 if is_dead else 3.0 * scale,
                    "activation_min_nonzero": None if is_dead else 1e-4 / scale,
                    "gradient_abs_max": 0.0 if is_dead else 0.1 * scale,
                    "gradient_min_nonzero": None if is_dead else 1e-9 / scale,
                    "dead_fraction": 1.0 if is_dead else 0.125,
                    "activation_underflow": 0.0,
                    "gradient_underflow": 0.0 if is_dead else 0.25,
                }
            )
    if findings is None:
        findings = (
            *(
                ()
                if dead is None
                else (
                    {
                        "code": "dead-units",
                        "layer": dead,
                        "step": steps[0],
                        "message": "100% of the units are 0 on every sample.",
                        "value": 1.0,
                    },
                )
            ),
            {
                "code": "loss-spike",
                "layer": None,
                "step": steps[-1],
                "message": "The loss spiked.",
                "value": 9.5,
            },
        )
    return {
        "version": 1,
        "policy": "float32",
        "num_findings": len(findings),
        "num_steps": len(steps),
        "statistics": list(HEALTH_STATISTICS),
        "layers": list(layers),
        "steps": list(steps),
        "rows": rows,
        "findings": list(findings),
        "losses": [[step, 2.0 - step / 10] for step in range(steps[-1])]
        + [[steps[-1], 9.5]],
    }


def write_health(
    log_dir: str | os.PathLike[str], step: int, report: dict[str, Any], **kwargs: Any
) -> None:
    summary.write_json(
        log_dir,
        step,
        TRAINING_HEALTH_TAG,
        report,
        plugin_name=metadata.TRAINING_HEALTH_PLUGIN,
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
