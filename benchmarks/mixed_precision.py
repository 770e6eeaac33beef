"""Mixed precision: float32 against mixed_float16, TensorFloat-32 on and off.

Prints, for the Keras backend in use (`KERAS_BACKEND`):

1. the devices it computes on, and the `audit` of the seed article's model
   (784 inputs, two Dense(4096), float32 softmax) under `mixed_float16`;
2. training step times under float32 and mixed_float16, measured side by side
   with `keras_bettermodels.precision.compare_precision` (same initial
   weights, warm-up excluded, alternating rounds, median), for the article's
   model and a small conv net. On a GPU, float32 is timed twice: with
   TensorFloat-32 on (the default of JAX and TensorFlow on Ampere and newer;
   PyTorch leaves it off for matmuls) and off (strict IEEE float32), and the
   speedup of mixed_float16 is reported against both;
3. the overhead of `MixedPrecisionGuard` on `fit`: the same model fitted with
   and without the guard (its default `on_nonfinite="restore"`, which copies
   the weights and optimizer state at every epoch end), in alternating
   rounds, median wall time of each (goal: <= 2 %).

On a CPU mixed precision is expected to be slower (speedup below 1), and the
audit says so (`hardware-no-speedup`). Timings on a busy machine are noisy:
read the ratios, not the digits.

Run from the repository root:

    python benchmarks/mixed_precision.py            # sizes for this device
    KERAS_BACKEND=jax python benchmarks/mixed_precision.py --quick  # smoke test
    python benchmarks/mixed_precision.py --json out.json   # also save results
    python benchmarks/mixed_precision.py --table a.json b.json  # compare saved

`benchmarks/mixed_precision_gpu.sh` runs it on a GPU machine for each backend.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Sizes per setting. `hidden` is the article's 4096 except in the smoke test.
SIZES: dict[str, dict[str, int]] = {
    "quick": {
        "hidden": 256,
        "dense_batch": 64,
        "conv_batch": 16,
        "conv_width": 8,
        "steps": 4,
        "overhead_hidden": 128,
        "overhead_batch": 64,
        "overhead_epochs": 2,
        "overhead_steps": 3,
        "overhead_rounds": 2,
        "big_hidden": 64,
        "big_layers": 4,
        "big_batch": 32,
        "big_steps": 3,
        "overhead_big_hidden": 64,
    },
    "cpu": {
        "hidden": 4096,
        "dense_batch": 128,
        "conv_batch": 32,
        "conv_width": 32,
        "steps": 10,
        "overhead_hidden": 1024,
        "overhead_batch": 128,
        "overhead_epochs": 2,
        "overhead_steps": 10,
        "overhead_rounds": 5,
    },
    "gpu": {
        "hidden": 4096,
        "dense_batch": 1024,
        "conv_batch": 256,
        "conv_width": 64,
        "steps": 100,
        "overhead_hidden": 4096,
        "overhead_batch": 1024,
        "overhead_epochs": 3,
        "overhead_steps": 200,
        "overhead_rounds": 5,
        # >100M parameters, where the article says mixed precision pays:
        # 4 x Dense(8192), 268,550,154 parameters (784 inputs, as the
        # article's model), and the guard at 4 x Dense(8192) too.
        "big_hidden": 8192,
        "big_layers": 4,
        "big_batch": 2048,
        "big_steps": 30,
        "overhead_big_hidden": 8192,
    },
}
INPUTS = 784
CLASSES = 10
IMAGE = (32, 32, 3)


def _guard_class() -> Any:
    """`MixedPrecisionGuard`, without importing every other callback.

    `keras_bettermodels.callbacks` re-exports all the package's callbacks;
    on a bare GPU machine (no TensorBoard, no keras-tuner) one of them may not
    import. The guard's own module needs neither.
    """
    try:
        module = importlib.import_module("keras_bettermodels.callbacks.mixed_precision")
    except ImportError:
        path = REPO / "keras_bettermodels" / "callbacks" / "mixed_precision.py"
        spec = importlib.util.spec_from_file_location("_kbm_mixed_precision", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.MixedPrecisionGuard


# -- models --------------------------------------------------------------------


def article_model(hidden: int, layers: int = 2, learning_rate: float = 1e-3) -> Any:
    """The seed article's example (`layers` hidden Dense layers), with Adam."""
    import keras

    inputs = keras.Input(shape=(INPUTS,))
    x = inputs
    for _ in range(layers):
        x = keras.layers.Dense(hidden, activation="relu")(x)
    x = keras.layers.Dense(CLASSES)(x)
    outputs = keras.layers.Activation("softmax", dtype="float32")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
    )
    return model


def conv_net(width: int) -> Any:
    """A small VGG-style net for 32x32x3 images, widths multiples of 8."""
    import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(IMAGE),
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
            layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(4 * width, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(4 * width, activation="relu"),
            layers.Dense(CLASSES),
            layers.Activation("softmax", dtype="float32"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def batch(shape: tuple[int, ...], size: int, seed: int = 0) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, *shape)).astype("float32")
    y = rng.integers(0, CLASSES, size).astype("int32")
    return x, y


# -- TensorFloat-32 -------------------------------------------------------------


def tf32_state() -> str:
    """What the backend does with float32 matmuls and convolutions now."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        matmul = torch.backends.cuda.matmul
        conv = getattr(torch.backends.cudnn, "conv", None)
        if hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision"):
            return (
                f"torch matmul fp32_precision={matmul.fp32_precision!r}, cudnn "
                f"conv fp32_precision={conv.fp32_precision!r} (global "
                f"{getattr(torch.backends, 'fp32_precision', 'n/a')!r}; 'none' = "
                "torch's default: matmul IEEE, conv TF32)"
            )
        return (
            f"torch matmul allow_tf32={matmul.allow_tf32}, cudnn allow_tf32="
            f"{torch.backends.cudnn.allow_tf32}"
        )
    if backend == "jax":
        import jax

        value = jax.config.jax_default_matmul_precision
        return f"jax_default_matmul_precision={value!r} (None: TF32 on Ampere+ GPUs)"
    if backend == "tensorflow":
        import tensorflow as tf

        enabled = tf.config.experimental.tensor_float_32_execution_enabled()
        return f"tensorflow tensor_float_32_execution={enabled}"
    return "n/a"


def set_tf32(enabled: bool) -> None:
    """Turns TensorFloat-32 on or off for float32 matmuls and convolutions.

    JAX reads its setting when it traces, so call this before building the
    models it applies to (`compare_precision` builds fresh ones).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        matmul = torch.backends.cuda.matmul
        conv = getattr(torch.backends.cudnn, "conv", None)
        # torch >= 2.9 has a new API, and refuses a mix of the old and new ones.
        if hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision"):
            value = "tf32" if enabled else "ieee"
            matmul.fp32_precision = value
            conv.fp32_precision = value
        else:
            matmul.allow_tf32 = enabled
            torch.backends.cudnn.allow_tf32 = enabled
    elif backend == "jax":
        import jax

        jax.config.update(
            "jax_default_matmul_precision", "tensorfloat32" if enabled else "highest"
        )
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(enabled)


# -- measurements ----------------------------------------------------------------


def device_report() -> dict[str, Any]:
    import keras

    from keras_bettermodels.precision import hardware

    backend = keras.backend.backend()
    library = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}.get(backend)
    version = importlib.import_module(library).__version__ if library else "n/a"
    devices = hardware.detect_devices()
    return {
        "backend": backend,
        "keras": keras.__version__,
        "library": f"{library} {version}",
        "devices": [str(device) for device in devices],
        "accelerator": any(device.platform != "cpu" for device in devices),
        "tf32_default": tf32_state(),
    }


def audit_report(size: dict[str, int]) -> dict[str, Any]:
    import keras

    from keras_bettermodels.precision import audit

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = article_model(size["hidden"])
        findings = audit(model, batch_size=size["dense_batch"])
    finally:
        keras.config.set_dtype_policy(previous)
    return {
        "params": int(model.count_params()),
        "findings": [
            {"code": f.code, "level": f.level, "message": f.message} for f in findings
        ],
    }


def time_model(
    build: Callable[[], Any], data: tuple[Any, Any], steps: int, tf32_modes: list[str]
) -> dict[str, Any]:
    """float32 and mixed_float16 step times under each TF32 mode."""
    from keras_bettermodels.precision import compare_precision

    result: dict[str, Any] = {}
    for mode in tf32_modes:
        if mode != "n/a":
            set_tf32(mode == "tf32")
        comparison = compare_precision(build, data, steps=steps)
        result[mode] = {
            "float32_ms": comparison.step_time["float32"] * 1000,
            "mixed_ms": comparison.step_time["mixed_float16"] * 1000,
            "speedup": comparison.speedup,
            "loss_float32": comparison.final_loss["float32"],
            "loss_mixed": comparison.final_loss["mixed_float16"],
        }
    if "tf32" in result:
        set_tf32(True)
    return result


def guard_overhead(size: dict[str, int], big: bool = False) -> dict[str, Any]:
    """Median `fit` wall time with and without the guard, alternating.

    `big`: at >100M parameters (4 x Dense(`overhead_big_hidden`), Adam(1e-5),
    so that 3 epochs stay finite), with the batch and steps of `overhead_*`.
    """
    import keras

    guard_class = _guard_class()
    x, y = batch((INPUTS,), size["overhead_batch"], seed=1)
    steps, epochs = size["overhead_steps"], size["overhead_epochs"]

    class SameBatch(keras.utils.PyDataset):
        def __len__(self) -> int:
            return steps

        def __getitem__(self, index: int) -> tuple[Any, Any]:
            return x, y

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    hidden = size["overhead_big_hidden"] if big else size["overhead_hidden"]
    layers = 4 if big else 2
    try:
        model = article_model(hidden, layers, 1e-5 if big else 1e-3)
    finally:
        keras.config.set_dtype_policy(previous)
    data = SameBatch()

    class TimedGuard(guard_class):  # type: ignore[misc, valid-type]
        """The guard, clocking the time spent in its own hooks."""

        def __init__(self) -> None:
            super().__init__(verbose=0)
            self.loop_seconds = 0.0  # hooks that run in the training loop
            self.batch_seconds = 0.0  # batch-end hooks (off the loop on JAX, torch)

        def _clocked(self, hook: Callable[..., None], *args: Any) -> float:
            start = time.perf_counter()
            hook(*args)
            return time.perf_counter() - start

        def on_train_begin(self, logs: Any = None) -> None:
            self.loop_seconds += self._clocked(super().on_train_begin, logs)

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.loop_seconds += self._clocked(super().on_epoch_begin, epoch, logs)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.loop_seconds += self._clocked(super().on_epoch_end, epoch, logs)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.batch_seconds += self._clocked(super().on_train_batch_end, batch, logs)

    hooks: list[tuple[float, float]] = []

    def fit(with_guard: bool) -> float:
        guard = TimedGuard() if with_guard else None
        start = time.perf_counter()
        history = model.fit(
            data, epochs=epochs, verbose=0, callbacks=[guard] if guard else []
        )
        float(history.history["loss"][-1])  # every step has finished
        seconds = time.perf_counter() - start
        if guard is not None:
            hooks.append((guard.loop_seconds, guard.batch_seconds))
        return seconds

    fit(False), fit(True)  # compile and warm up both paths
    hooks.clear()
    times: dict[str, list[float]] = {"none": [], "guard": []}
    for index in range(size["overhead_rounds"]):
        order = (False, True) if index % 2 == 0 else (True, False)
        for with_guard in order:
            times["guard" if with_guard else "none"].append(fit(with_guard))
    none, guard = statistics.median(times["none"]), statistics.median(times["guard"])
    loop = statistics.median(seconds for seconds, _ in hooks)
    batch_hooks = statistics.median(seconds for _, seconds in hooks)
    return {
        "hooks_ms_in_loop": loop * 1000,
        "hooks_pct_in_loop": loop / none * 100,
        "batch_hooks_ms": batch_hooks * 1000,
        "hidden": hidden,
        "layers": layers,
        "params": int(model.count_params()),
        "batch": size["overhead_batch"],
        "epochs": epochs,
        "steps_per_epoch": steps,
        "rounds": size["overhead_rounds"],
        "fit_s_without": none,
        "fit_s_with": guard,
        "overhead_pct": (guard / none - 1) * 100,
    }


def audit_part(report: dict[str, Any], size: dict[str, int]) -> None:
    """Audits the article's model under mixed_float16 and prints the findings."""
    report["audit"] = audit_report(size)
    print(
        f"\nAudit of the article's model (2 x Dense({size['hidden']}), "
        f"{report['audit']['params']:,} parameters) under mixed_float16, "
        f"batch_size={size['dense_batch']}:"
    )
    for finding in report["audit"]["findings"]:
        print(f"  [{finding['level']}] {finding['code']}: {finding['message']}")
    codes = {finding["code"] for finding in report["audit"]["findings"]}
    report["hardware_no_speedup"] = "hardware-no-speedup" in codes
    print(f"  hardware-no-speedup reported: {report['hardware_no_speedup']}")
    sys.stdout.flush()


def overhead_part(size: dict[str, int], big: bool) -> dict[str, Any]:
    """Measures and prints the guard's overhead."""
    overhead = guard_overhead(size, big)
    print(
        f"\nMixedPrecisionGuard overhead on fit (mixed_float16, "
        f"{overhead['layers']} x Dense({overhead['hidden']}), "
        f"{overhead['params']:,} parameters, batch {overhead['batch']}, "
        f"{overhead['epochs']} epochs x {overhead['steps_per_epoch']} steps, "
        f"median of {overhead['rounds']} alternating rounds):"
    )
    print(
        f"  without {overhead['fit_s_without']:.3f} s, with "
        f"{overhead['fit_s_with']:.3f} s: {overhead['overhead_pct']:+.2f} % "
        "(goal <= 2 %)"
    )
    print(
        f"  time inside the guard's hooks per fit: "
        f"{overhead['hooks_ms_in_loop']:.1f} ms in the training loop "
        f"({overhead['hooks_pct_in_loop']:.2f} % of the fit; audit, state copies, "
        f"loss-scale reads), {overhead['batch_hooks_ms']:.1f} ms in batch-end "
        "hooks (on Keras' callback thread on JAX and PyTorch)\n"
    )
    sys.stdout.flush()
    return overhead


# -- output --------------------------------------------------------------------


def print_models(models: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'model':<22} {'TF32':<6} {'float32 ms':>11} {'mixed ms':>9} "
        f"{'speedup':>8} {'loss f32':>9} {'loss mixed':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, modes in models.items():
        for mode, row in modes.items():
            print(
                f"{name:<22} {mode:<6} {row['float32_ms']:>11.3f} "
                f"{row['mixed_ms']:>9.3f} {row['speedup']:>7.2f}x "
                f"{row['loss_float32']:>9.4g} {row['loss_mixed']:>10.4g}"
            )


PARTS = ("audit", "article", "overhead", "conv", "big", "big_overhead")
DEFAULT_PARTS = ("audit", "article", "overhead", "conv")


def run(
    size_name: str,
    json_path: str | None,
    tf32: str = "auto",
    parts: tuple[str, ...] = DEFAULT_PARTS,
) -> dict[str, Any]:
    size = SIZES[size_name]
    report: dict[str, Any] = {"size": size_name, **device_report()}
    print(f"Keras {report['keras']}, backend {report['backend']} ({report['library']})")
    print(f"Devices: {', '.join(report['devices'])}")
    print(f"Float32 precision by default: {report['tf32_default']}")
    print(f"Sizes: {size_name} {size}")
    sys.stdout.flush()

    def save() -> None:  # after each part, so a timeout keeps what was measured
        if json_path:
            Path(json_path).write_text(json.dumps(report, indent=2))

    save()
    if "audit" in parts:
        audit_part(report, size)
        save()
    both = tf32 == "both" or (tf32 == "auto" and report["accelerator"])
    tf32_modes = ["tf32", "strict"] if both else ["n/a"]
    report["models"] = {}
    dense = f"dense 2x{size['hidden']} b{size['dense_batch']}"
    conv = f"convnet w{size['conv_width']} b{size['conv_batch']}"
    print(
        f"\nTraining step times, {size['steps']} timed steps per policy "
        "(median of alternating rounds, warm-up excluded):"
    )

    def measure(
        name: str,
        build: Callable[[], Any],
        data: tuple[Any, Any],
        steps: int = size["steps"],
    ) -> None:
        start = time.perf_counter()
        report["models"][name] = time_model(build, data, steps, tf32_modes)
        print(f"  {name}: measured in {time.perf_counter() - start:.0f} s")
        print_models({name: report["models"][name]})
        sys.stdout.flush()
        save()

    # Cheapest first: a run that hits its time limit keeps the most.
    if "article" in parts:
        measure(
            dense,
            lambda: article_model(size["hidden"]),
            batch((INPUTS,), size["dense_batch"]),
        )

    if "overhead" in parts:
        report["guard_overhead"] = overhead_part(size, big=False)
    if "big" in parts:
        layers, hidden = size["big_layers"], size["big_hidden"]
        measure(
            f"dense {layers}x{hidden} b{size['big_batch']}",
            lambda: article_model(hidden, layers),
            batch((INPUTS,), size["big_batch"]),
            size["big_steps"],
        )
    if "big_overhead" in parts:
        report["guard_overhead_big"] = overhead_part(size, big=True)
    if "conv" not in parts:
        save()
        return report
    measure(
        conv, lambda: conv_net(size["conv_width"]), batch(IMAGE, size["conv_batch"])
    )
    print("\nAll step times:")
    print_models(report["models"])
    save()
    if json_path:
        print(f"Results written to {json_path}")
    return report


def print_table(paths: list[str]) -> int:
    """Prints one compact table from the JSON files of several runs."""
    reports = []
    for path in paths:
        try:
            reports.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as error:
            print(f"(no results in {path}: {error})")
    if not reports:
        print("No results to tabulate.")
        return 1
    header = (
        f"{'backend':<10} {'model':<22} {'f32 TF32':>9} {'f32 IEEE':>9} "
        f"{'mixed':>8} {'vs TF32':>8} {'vs IEEE':>8}"
    )
    print(header)
    print("-" * len(header))

    def cell(row: dict[str, Any], key: str, width: int, suffix: str = "") -> str:
        value = row.get(key)
        text = (
            "n/a"
            if value is None
            else f"{value:.3f}"
            if not suffix
            else f"{value:.2f}{suffix}"
        )
        return f"{text:>{width}}"

    for report in reports:
        for name, modes in report.get("models", {}).items():
            tf32 = modes.get("tf32") or modes.get("n/a") or {}
            strict = modes.get("strict", {})
            print(
                f"{report['backend']:<10} {name:<22} {cell(tf32, 'float32_ms', 9)} "
                f"{cell(strict, 'float32_ms', 9)} {cell(tf32, 'mixed_ms', 8)} "
                f"{cell(tf32, 'speedup', 8, 'x')} {cell(strict, 'speedup', 8, 'x')}"
            )
    print("(ms per training step; speedup = float32 time / mixed_float16 time)")
    for report in reports:
        overhead = report.get("guard_overhead", {})
        print(
            f"{report['backend']:<10} devices: {', '.join(report.get('devices', []))}; "
            f"hardware-no-speedup: {report.get('hardware_no_speedup')}; "
            f"guard overhead: {overhead.get('overhead_pct', float('nan')):+.2f} % "
            f"(in its hooks: {overhead.get('hooks_pct_in_loop', float('nan')):.2f} %)"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--size", choices=sorted(SIZES), help="sizes to use (default: for this device)"
    )
    parser.add_argument(
        "--tf32",
        choices=("auto", "both", "none"),
        default="auto",
        help="time float32 with TensorFloat-32 on and off ('both'), as is "
        "('none'), or 'both' where there is an accelerator (default)",
    )
    parser.add_argument(
        "--parts",
        default=",".join(DEFAULT_PARTS),
        help=f"comma-separated parts to run, of {PARTS} (default: %(default)s; "
        "'big' and 'big_overhead' are the >100M-parameter model)",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--table", nargs="+", metavar="JSON", help="print a table of saved results"
    )
    args = parser.parse_args(argv)
    if args.table:
        return print_table(args.table)
    size = args.size or ("quick" if args.quick else None)
    if size is None:
        from keras_bettermodels.precision import hardware

        devices = hardware.detect_devices()
        size = "gpu" if any(d.platform != "cpu" for d in devices) else "cpu"
    parts = tuple(part for part in args.parts.split(",") if part)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {PARTS}")
    run(size, args.json, args.tf32, parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
