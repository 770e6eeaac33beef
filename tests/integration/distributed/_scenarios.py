"""Runs every callback on two devices and on one, in a fresh interpreter.

    KERAS_BACKEND=tensorflow python -m tests.integration.distributed._scenarios OUT LOGS
    KERAS_BACKEND=jax python -m tests.integration.distributed._scenarios OUT LOGS

from the repository root. TensorFlow gets two logical CPUs
(`tf.config.set_logical_device_configuration`) and JAX two XLA host devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`); both must be set
before the framework starts, which is why this runs in its own process. Then
`_fits.py` trains each scenario with `tf.distribute.MirroredStrategy` or
`keras.distribution.DataParallel` and without, and the results go to OUT.json;
TensorBoard logs go under LOGS/<scenario>/<run>/<callback>.

The JAX run blocks TensorFlow's import, as on a machine with only JAX
installed: the callbacks need none of it there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPLICAS = 2
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def configure_devices(backend: str) -> None:
    """Gives the backend two devices; must run before it is imported."""
    if backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * REPLICAS
        )
    elif backend == "jax":
        if "jax" in sys.modules:
            raise RuntimeError("JAX was imported before its devices were set.")
        # As where only JAX is installed: Keras would otherwise import all of
        # TensorFlow (seconds) to serialize the model for the gradient
        # check's float64 copy, and nothing here needs it.
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
        flags = os.environ.get("XLA_FLAGS", "")
        if DEVICE_COUNT_FLAG not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {DEVICE_COUNT_FLAG}={REPLICAS}".strip()
    else:
        raise SystemExit(
            f"Distributed scenarios run on TensorFlow or JAX. Received: "
            f"KERAS_BACKEND={backend!r}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("logs", type=Path)
    parser.add_argument("--only", nargs="*", help="scenarios to run (default: all)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    configure_devices(backend)

    from tests.integration.distributed import _fits

    devices = (
        _fits.TensorFlowDevices() if backend == "tensorflow" else _fits.JaxDevices()
    )
    ready = time.perf_counter() - start
    results = _fits.run_all(devices, args.logs, args.only)
    document = {
        "backend": backend,
        "replicas": REPLICAS,
        "seconds": {
            "start": ready,
            **{name: result["seconds"] for name, result in results.items()},
            "total": time.perf_counter() - start,
        },
        "cpu_seconds": {
            **{name: result["cpu_seconds"] for name, result in results.items()},
            "total": time.process_time(),
        },
        "tensorflow_imported": bool(sys.modules.get("tensorflow")),
        "setup": _fits.SETUP,
        **results,
    }
    partial = args.out.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=1))
    os.replace(partial, args.out)
    print(json.dumps({"seconds": document["seconds"], "cpu": document["cpu_seconds"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
