"""What the guards' state watch costs, as a share of `fit`, side by side.

`MixedPrecisionGuard` (and `EarlyStopping(check_finite=True)`) check at every
epoch end that every model and optimizer variable is finite
(`keras_bettermodels._snapshot.first_nonfinite_variable`: one fused reduction
on the device, one scalar to the host) and, with `on_nonfinite="restore"`,
keep a device copy of them (`Snapshot.take`). This script fits the same model
with, interleaved over several rounds:

    (a) no callback,
    (b) the state check at every epoch end,
    (c) the state check and the snapshot at every epoch end,
    (d) `MixedPrecisionGuard(verbose=0)` (audit, loss watch, both of the above),

and also times the check and the snapshot alone (median of repeated calls,
synchronised), as a share of one epoch of (a). The model is the demo's MLP
(64 -> Dense(256) x 2 -> 10, Adam, synthetic digits-sized data) or, with
`--params N`, an MLP of Dense(8192) layers with about N parameters
(`--params 2e8`: 4 x Dense(8192), 210M), Adam(1e-5), batch 64, 40 steps per
epoch. Timings are noisy on a busy machine: read the ratios, not the digits.

Runs on any Keras backend, TensorFlow not needed:

    KERAS_BACKEND=jax python benchmarks/nonfinite_check.py
    KERAS_BACKEND=torch python benchmarks/nonfinite_check.py --params 2e8 --json r.json
    python benchmarks/nonfinite_check.py --quick      # a smoke test, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
import numpy as np

from keras_bettermodels._snapshot import (
    Snapshot,
    first_nonfinite_variable,
)
from keras_bettermodels.callbacks import MixedPrecisionGuard

WIDTH = 8192
INPUTS = 1024
CLASSES = 10


class StateCheck(keras.callbacks.Callback):
    """The guard's per-epoch work, alone: the check, and the snapshot if asked."""

    def __init__(self, snapshot: bool) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.kept: Snapshot | None = None

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if first_nonfinite_variable(self.model) is not None:
            raise FloatingPointError("the benchmark's model went non-finite")
        if self.snapshot:
            self.kept = Snapshot.take(self.model)


VARIANTS: dict[str, Callable[[], list[keras.callbacks.Callback]]] = {
    "(a) no callback": lambda: [],
    "(b) state check": lambda: [StateCheck(snapshot=False)],
    "(c) state check + snapshot": lambda: [StateCheck(snapshot=True)],
    "(d) MixedPrecisionGuard": lambda: [MixedPrecisionGuard(verbose=0)],
}


def build(params: float | None, quick: bool) -> tuple[keras.Model, int, int]:
    """The model, its number of features and the learning rate's scale."""
    if params is None:
        features, layers = 64, [256, 256]
        optimizer = keras.optimizers.Adam(1e-3)
    else:
        # --quick: a tiny stand-in of the same shape (a smoke test on a CPU).
        width, features = (64, 32) if quick else (WIDTH, INPUTS)
        hidden = max(1, round((params - features * width) / (width * width)) + 1)
        layers = [width] * (min(hidden, 2) if quick else hidden)
        optimizer = keras.optimizers.Adam(1e-5)
    model = keras.Sequential(
        [keras.Input((features,))]
        + [keras.layers.Dense(units, activation="relu") for units in layers]
        + [keras.layers.Dense(CLASSES, activation="softmax")]
    )
    model.compile(optimizer, "sparse_categorical_crossentropy")
    return model, features, model.count_params()


def sync(values: list[Any]) -> None:
    """Waits until the device has computed `values` (asynchronous backends)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        jax.block_until_ready(values)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm up (compiles on first use)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def take_synced(model: keras.Model) -> None:
    snapshot = Snapshot.take(model)
    sync(snapshot._weights + (snapshot._optimizer_variables or []))


def run(args: argparse.Namespace) -> dict[str, Any]:
    keras.utils.set_random_seed(0)
    model, features, count = build(args.params, args.quick)
    steps = 4 if args.quick else args.steps
    batch = 64
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * batch, features)).astype("float32")
    y = rng.integers(0, CLASSES, len(x)).astype("int32")
    fit = {"batch_size": batch, "epochs": args.epochs, "verbose": 0, "shuffle": False}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(args.rounds + 1):  # round 0 warms up (compiles)
        for name, callbacks in VARIANTS.items():
            start = time.perf_counter()
            model.fit(
                x,
                y,
                callbacks=callbacks(),
                **{**fit, "epochs": 1} if round_ == 0 else fit,
            )
            if round_:
                times[name].append(time.perf_counter() - start)
    fit_s = {name: statistics.median(values) for name, values in times.items()}
    base = fit_s["(a) no callback"]
    epoch_ms = 1000 * base / args.epochs
    repeats = 3 if args.quick else args.repeats
    check_ms = median_ms(lambda: first_nonfinite_variable(model), repeats)
    snapshot_ms = median_ms(lambda: take_synced(model), repeats)
    return {
        "backend": keras.backend.backend(),
        "device": device_name(),
        "params": count,
        "epochs": args.epochs,
        "steps_per_epoch": steps,
        "batch_size": batch,
        "rounds": args.rounds,
        "fit_s": fit_s,
        "fit_overhead_pct": {
            name: 100 * (value / base - 1) for name, value in fit_s.items()
        },
        "epoch_ms": epoch_ms,
        "check_ms": check_ms,
        "snapshot_ms": snapshot_ms,
        "check_pct_of_epoch": 100 * check_ms / epoch_ms,
        "check_and_snapshot_pct_of_epoch": 100 * (check_ms + snapshot_ms) / epoch_ms,
    }


def device_name() -> str:
    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return f"cuda:0 ({torch.cuda.get_device_name(0)})"
        return "cpu"
    devices = keras.distribution.list_devices()
    return devices[0] if devices else "unknown"


def table(result: dict[str, Any]) -> str:
    lines = [
        f"backend {result['backend']} on {result['device']}, "
        f"{result['params']:,} parameters, {result['epochs']} epochs x "
        f"{result['steps_per_epoch']} steps, median of {result['rounds']} rounds",
        f"{'variant':<30} {'fit (s)':>10} {'vs (a)':>9}",
    ]
    for name, seconds in result["fit_s"].items():
        overhead = result["fit_overhead_pct"][name]
        lines.append(f"{name:<30} {seconds:>10.3f} {overhead:>+8.1f}%")
    lines += [
        f"one epoch of (a): {result['epoch_ms']:.1f} ms",
        f"state check alone: {result['check_ms']:.2f} ms "
        f"({result['check_pct_of_epoch']:.2f} % of an epoch)",
        f"snapshot alone: {result['snapshot_ms']:.2f} ms; check + snapshot "
        f"{result['check_and_snapshot_pct_of_epoch']:.2f} % of an epoch",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params",
        type=float,
        default=None,
        help="build an MLP of Dense(8192) layers with about this many "
        "parameters (e.g. 2e8) instead of the demo's MLP",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.epochs = 1, 2
    result = run(args)
    print(table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
