"""Every callback on two devices decides as on one: MirroredStrategy, DataParallel.

One fresh interpreter per backend (`_scenarios.py`, run once for this module)
gives the framework two devices before it starts — two logical CPUs under
`tf.distribute.MirroredStrategy` on TensorFlow, two XLA host devices under
`keras.distribution.DataParallel` on JAX — and trains each scenario twice from
the same weights on the same data: on one device, and on both. The tests read
what it wrote (a JSON document and the TensorBoard event files) and compare the
two runs callback by callback:

- EarlyStopping, every rule (Keras' patience, `Patience`, `GL`, `PQ`, `UP`,
  `GL & UP`): the same stopping epoch and reason, in the distributed `fit` and
  on one device given the same logs; `restore_best_weights` puts the best
  epoch's weights on every replica.
- CacheTimingCallback: every distributed step timed, as many as on one device.
- GradientCheckCallback: checks a float64 copy that lives on one device,
  outside the strategy, and leaves the distributed training as it was.
- MixedPrecisionGuard: reads the loss scale every replica holds, counts the
  skipped steps, restores every replica after a non-finite loss.
- UpdatePruningMasks: the same masks on every replica, and as on one device.
- TensorBoard: each summary written once, by the process running `fit`.

The TensorFlow run belongs to the TensorFlow pass, the JAX run to the JAX
pass; the PyTorch pass has nothing to run (Keras 3 has no distribution API
for PyTorch). Each run takes 25-30 s of CPU (TensorFlow) or about 23 s (JAX),
most of it starting the framework and compiling; on two busy cores, longer.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 300.0  # seconds: a bound on the scenario process, never a wait
REPLICAS = 2
RULES = ("patience", "Patience", "GL", "PQ", "UP", "GL&UP")


@dataclass
class Run:
    """What one scenario process left: its results and its TensorBoard logs."""

    backend: str
    results: dict[str, Any]
    logs: Path

    def __getitem__(self, key: str) -> Any:
        return self.results[key]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("tensorflow", marks=pytest.mark.tensorflow_only),
        pytest.param("jax", marks=pytest.mark.jax_only),
    ],
)
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    backend = request.param
    directory = tmp_path_factory.mktemp(f"distributed-{backend}")
    out, logs = directory / "results.json", directory / "logs"
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.integration.distributed._scenarios",
                str(out),
                str(logs),
            ],
            cwd=REPO,
            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,  # kills the process when it runs out
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(
            f"the {backend} scenarios ran past {TIMEOUT:.0f} s:\n{error.stderr}"
        )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-6000:]
    return Run(backend, json.loads(out.read_text()), logs)


# Reading event files, record by record (TFRecord framing), without TensorFlow.


def _events(path: Path) -> list[Any]:
    from tensorboard.compat.proto import event_pb2

    data, offset, events = path.read_bytes(), 0, []
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        offset += 12  # the length and its CRC
        events.append(event_pb2.Event.FromString(data[offset : offset + length]))
        offset += length + 4  # the data and its CRC
    return events


def _written(log_dir: Path) -> tuple[int, dict[str, list[int]]]:
    """The event files in `log_dir`, and the steps each tag was written at."""
    files = sorted(log_dir.glob("events.out.tfevents.*"))
    steps: dict[str, list[int]] = {}
    for path in files:
        for event in _events(path):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return len(files), {tag: sorted(s) for tag, s in steps.items()}


# Early stopping -------------------------------------------------------------------


def test_the_distributed_model_has_a_copy_on_each_device(run):
    distributed = run["early_stopping"]["distributed"]
    devices = distributed["restored"]["devices"]
    assert distributed["restored"]["copies"] == [REPLICAS]
    assert len(set(devices)) == REPLICAS, devices
    assert (
        len(run["early_stopping"]["reference"]["gradient_check"]["model_devices"]) == 1
    )


def test_the_distributed_run_trains_as_on_one_device(run):
    """Same weights, same batches: the same losses, up to summation order."""
    one = run["early_stopping"]["reference"]["history"]
    two = run["early_stopping"]["distributed"]["history"]
    epochs = len(two["loss"])
    for name in ("loss", "val_loss"):
        assert two[name] == pytest.approx(one[name][:epochs], rel=1e-5), name


def test_every_rule_fires_at_the_planned_epoch_on_one_device(run):
    """The plan works: no rule fires early, all at one epoch after the best."""
    plan = run["early_stopping"]["plan"]
    decisions = run["early_stopping"]["reference"]["decisions"]
    assert plan["target_epoch"] == plan["best_epoch"] + 2 > 2
    for name in RULES:
        assert decisions[name]["stopped_epoch"] == plan["target_epoch"], name
        assert decisions[name]["best_epoch"] == plan["best_epoch"], name


def test_every_rule_stops_the_distributed_fit_as_on_one_device(run):
    one = run["early_stopping"]["reference"]["decisions"]
    two = run["early_stopping"]["distributed"]["decisions"]
    for name in RULES:
        assert two[name]["stopped_epoch"] == one[name]["stopped_epoch"], name
        assert two[name]["criterion"] == one[name]["criterion"], name
        assert two[name]["best_epoch"] == one[name]["best_epoch"], name
        assert two[name]["GL"] == pytest.approx(one[name]["GL"], rel=1e-4, abs=1e-3)
    epochs_run = len(run["early_stopping"]["distributed"]["history"]["loss"])
    assert epochs_run == run["early_stopping"]["plan"]["target_epoch"] + 1


def test_the_distributed_logs_give_the_same_decisions_on_one_device(run):
    """Fed to fresh stoppers outside any strategy, its own logs decide alike."""
    in_fit = run["early_stopping"]["distributed"]["decisions"]
    replayed = run["early_stopping"]["replayed"]
    assert replayed == in_fit


def test_the_stopping_reasons_name_each_rule(run):
    decisions = run["early_stopping"]["distributed"]["decisions"]
    criteria = {name: decisions[name]["criterion"] for name in RULES}
    assert criteria["patience"] == "patience"
    assert criteria["Patience"] == "Patience(2)"
    assert criteria["GL"].startswith("GL(")
    assert criteria["PQ"].startswith("PQ(") and "strip_length=" in criteria["PQ"]
    assert criteria["UP"] == "UP(2, strip_length=1)"
    assert criteria["GL&UP"] == f"{criteria['GL']} & {criteria['UP']}"


def test_restore_best_weights_restores_every_replica(run):
    distributed = run["early_stopping"]["distributed"]
    restored = distributed["restored"]
    assert restored["max_difference_to_expected"] == 0.0
    assert restored["max_difference_between_replicas"] == 0.0


def test_the_restored_model_scores_the_best_epochs_validation_loss(run):
    distributed = run["early_stopping"]["distributed"]
    best = distributed["decisions"]["GL"]["best_epoch"]
    val_loss = distributed["history"]["val_loss"]
    assert distributed["restored_val_loss"] == pytest.approx(val_loss[best], rel=1e-6)
    assert val_loss[best] < val_loss[-1]  # not the last epoch's weights


# Cache timing ---------------------------------------------------------------------


def test_cache_timing_times_every_distributed_step(run):
    one = run["early_stopping"]["reference"]["timing"]
    two = run["early_stopping"]["distributed"]["timing"]
    setup = run["setup"]
    steps, batch = setup["steps_per_epoch"], setup["batch_size"]
    epochs_run = len(run["early_stopping"]["distributed"]["history"]["loss"])
    assert [e["epoch"] for e in two["epochs"]] == list(range(epochs_run))
    # Global steps (a batch of 64 samples: 32 on each device), as on one device.
    assert [e["steps"] for e in two["epochs"]] == [steps] * epochs_run
    assert [e["steps"] for e in one["epochs"][:epochs_run]] == [steps] * epochs_run
    assert all(e["samples"] == steps * batch for e in two["epochs"])
    assert all(e["time"] > 0 and e["validation_time"] > 0 for e in two["epochs"])
    assert all(e["first_step_time"] <= e["time"] for e in two["epochs"])
    assert two["batch_size"] == batch and two["samples_per_second"] > 0
    assert two["compile_time"] is not None and two["cache_partial"] is False


def test_cache_timing_inspects_the_pipeline_the_user_gave(run):
    """On TensorFlow, the user's `tf.data` pipeline, not the distributed one."""
    two = run["early_stopping"]["distributed"]["timing"]
    if run.backend == "tensorflow":
        assert (two["cached"], two["prefetched"]) == (True, True)
    else:  # NumPy arrays: nothing to inspect
        assert (two["cached"], two["prefetched"]) == (None, None)


# Gradient check -------------------------------------------------------------------


def test_gradient_check_runs_on_a_float64_copy_on_one_device(run):
    check = run["early_stopping"]["distributed"]["gradient_check"]
    assert len(set(check["model_devices"])) == REPLICAS
    assert len(check["clone_devices"]) == 1, check["clone_devices"]
    assert check["clone_dtype"] == "float64"


def test_gradient_check_reports_as_on_one_device(run):
    one = run["early_stopping"]["reference"]["gradient_check"]
    two = run["early_stopping"]["distributed"]["gradient_check"]
    epochs_run = len(run["early_stopping"]["distributed"]["history"]["loss"])
    assert two["steps"] == list(range(0, epochs_run + 1, run["setup"]["check_every"]))
    assert one["steps"][: len(two["steps"])] == two["steps"]
    # The same weights at the start, the same seeded directions: the same check.
    assert two["relative_errors"][0] == one["relative_errors"][0]
    assert two["verdicts"] == ["great"] * len(two["steps"])


# Mixed precision ------------------------------------------------------------------


def test_guard_rescues_the_nonfinite_epoch_as_on_one_device(run):
    one = run["mixed_precision"]["reference"]
    two = run["mixed_precision"]["distributed"]
    decisions = ("nonfinite_epoch", "restored_epoch", "stopped_epoch", "codes")
    assert {k: two[k] for k in decisions} == {k: one[k] for k in decisions}
    overflow = run["setup"]["mp_overflow_epoch"]
    assert (two["nonfinite_epoch"], two["restored_epoch"]) == (overflow, overflow - 1)
    assert two["codes"][-1] == "nonfinite-loss" and "skipped-steps" in two["codes"]
    assert math.isnan(two["history"]["loss"][-1])


def test_guard_reads_the_loss_scale_that_every_replica_holds(run):
    two = run["mixed_precision"]["distributed"]
    good = run["setup"]["mp_overflow_epoch"]  # the epochs before the NaN
    read_by_guard = [check["scale"] for check in two["checks"][1 : good + 1]]
    read_from_optimizer = two["recorded_scales"][:good]
    assert read_by_guard == read_from_optimizer
    # Restored to the end of the last good epoch, on both replicas.
    assert two["scale_replicas"] == [read_from_optimizer[-1]] * REPLICAS
    initial = run["setup"]["mp_initial_scale"]
    assert two["checks"][0]["scale"] == initial > read_by_guard[0]


def test_guard_counts_the_steps_the_optimizer_skipped(run):
    two = run["mixed_precision"]["distributed"]
    good = run["setup"]["mp_overflow_epoch"]
    # The optimizer was restored to the end of the last good epoch: the
    # iterations it holds, on each replica, are the steps run until then that
    # it did not skip.
    steps = good * run["setup"]["mp_steps_per_epoch"]
    skipped = sum(check["skipped"] for check in two["checks"][1 : good + 1])
    assert 0 < skipped < steps
    assert two["iterations_replicas"] == [steps - skipped] * REPLICAS
    if run.backend == "jax":
        # One program over the global batch: the same float16 gradients, so
        # the same overflows as on one device. (Under MirroredStrategy each
        # replica computes its gradients on half the batch, so the scale may
        # settle one halving higher than on one device.) Up to the last good
        # epoch: how many steps run after the NaN before `fit` sees the stop
        # depends on when Keras' callback thread gets to the batch-end hook.
        reference = run["mixed_precision"]["reference"]["checks"]
        assert two["checks"][: good + 1] == reference[: good + 1]


def test_guard_restores_every_replica(run):
    restored = run["mixed_precision"]["distributed"]["restored"]
    assert restored["copies"] == [REPLICAS]
    assert restored["max_difference_to_expected"] == 0.0
    assert restored["max_difference_between_replicas"] == 0.0


# Pruning --------------------------------------------------------------------------


def test_pruning_masks_are_identical_on_every_replica(run):
    layers = run["pruning"]["distributed"]["layers"]
    assert [layer["name"] for layer in layers] == ["prune_low_magnitude_hidden"]
    for layer in layers:
        assert len(set(layer["devices"])) == REPLICAS
        assert layer["masks"][1:] == layer["masks"][:1] * (REPLICAS - 1), layer["name"]
        assert layer["steps"] == [run["setup"]["prune_steps"]] * REPLICAS
        assert layer["zeros_where_pruned"] == [True] * REPLICAS


def test_pruning_masks_match_one_device(run):
    one = run["pruning"]["reference"]["layers"]
    two = run["pruning"]["distributed"]["layers"]
    for reference, distributed in zip(one, two, strict=True):
        assert distributed["masks"][0] == reference["masks"][0]
        mask = [value for row in reference["masks"][0] for value in row]
        assert mask.count(0.0) == round(len(mask) * run["setup"]["sparsity"])
    assert run["pruning"]["distributed"]["step"] == run["pruning"]["reference"]["step"]


# TensorBoard ----------------------------------------------------------------------


def _expected_steps(run: Run) -> dict[tuple[str, str], dict[str, list[int]]]:
    epochs = list(range(len(run["early_stopping"]["distributed"]["history"]["loss"])))
    checks = list(range(0, len(epochs) + 1, run["setup"]["check_every"]))
    guard_epochs = list(range(run["setup"]["mp_epochs"]))
    return {
        ("early_stopping", "early_stopping"): {
            "early_stopping/GL": epochs,
            # GL's own strips are Prechelt's default 5 epochs long.
            "early_stopping/P_k": [e for e in epochs if (e + 1) % 5 == 0],
        },
        ("early_stopping", "cache_timing"): {
            "input_timing/epoch_time": epochs,
            "input_timing/samples_per_second": epochs,
            "input_timing/report": [epochs[-1]],
        },
        ("early_stopping", "gradient_check"): {
            "gradient_check/report": checks,
            "gradient_check/relative_error": checks,
        },
        ("mixed_precision", "guard"): {
            "mixed_precision/loss_scale": guard_epochs,
            "mixed_precision/skipped_steps": guard_epochs,
        },
    }


def test_each_summary_is_written_once_by_the_process_running_fit(run):
    for (scenario, callback), expected in _expected_steps(run).items():
        files, written = _written(run.logs / scenario / "distributed" / callback)
        assert files == 1, (scenario, callback)
        for tag, steps in expected.items():
            assert written.get(tag) == steps, (callback, tag, written.get(tag))
        repeated = {t: s for t, s in written.items() if len(s) != len(set(s))}
        assert not repeated, (callback, repeated)


def test_the_summaries_are_those_of_one_device(run):
    for (scenario, callback), expected in _expected_steps(run).items():
        if callback == "early_stopping":
            continue  # the one-device stoppers were replayed, not run in a fit
        one = _written(run.logs / scenario / "reference" / callback)[1]
        two = _written(run.logs / scenario / "distributed" / callback)[1]
        assert set(one) == set(two), callback
        for tag in expected:
            if tag != "input_timing/report":
                assert two[tag] == one[tag][: len(two[tag])], (callback, tag)


@pytest.mark.parametrize("split", ["train", "validation"])
def test_keras_tensorboard_writes_each_epoch_once(run, split):
    if run.backend != "tensorflow":
        pytest.skip("Keras' TensorBoard callback runs in the TensorFlow scenarios")
    epochs = len(run["early_stopping"]["distributed"]["history"]["loss"])
    log_dir = run.logs / "early_stopping" / "distributed" / "keras" / split
    files, written = _written(log_dir)
    assert files == 1
    assert Counter(written["epoch_loss"]) == Counter(range(epochs))
