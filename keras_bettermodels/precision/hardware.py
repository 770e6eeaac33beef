"""The devices the Keras backend computes on, and what mixed precision gains there.

Keras 2 logged a device compatibility check when a mixed policy was set;
Keras 3 dropped it. `detect_devices()` reads the devices from the backend in
use (TensorFlow's `tf.config`, `jax.devices()`, `torch.cuda`), and
`hardware_findings()` turns them into advice: float16 needs NVIDIA Tensor
Cores (compute capability 7.0 or newer: V100, T4, A100, H100), bfloat16 needs
8.0 or newer (Ampere) on NVIDIA GPUs and is the type TPUs compute in.

Backends are imported inside the functions, and only the one in use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from keras_bettermodels.precision import findings as findings_lib
from keras_bettermodels.precision.findings import Finding

__all__ = [
    "BFLOAT16_MIN_CAPABILITY",
    "FLOAT16_MIN_CAPABILITY",
    "Device",
    "detect_devices",
    "dims_multiple",
    "hardware_findings",
    "low_precision_dtype",
]

#: NVIDIA Tensor Cores with float16 arrived with Volta (7.0).
FLOAT16_MIN_CAPABILITY = (7, 0)
#: bfloat16 Tensor Cores arrived with Ampere (8.0).
BFLOAT16_MIN_CAPABILITY = (8, 0)


@dataclass(frozen=True)
class Device:
    """A device the Keras backend can compute on.

    Args:
        platform: `"gpu"`, `"tpu"`, `"cpu"`, or what the backend calls
            another accelerator (`"mps"`, `"xpu"`).
        name: the device's model, e.g. `"NVIDIA H100 80GB HBM3"`.
        compute_capability: NVIDIA's `(major, minor)`; `None` where it does
            not apply or could not be read (CPUs, TPUs, AMD GPUs). Defaults
            to `None`.
    """

    platform: str
    name: str
    compute_capability: tuple[int, int] | None = None

    def __str__(self) -> str:
        if self.compute_capability is None:
            return f"{self.platform}: {self.name}"
        major, minor = self.compute_capability
        return f"{self.platform}: {self.name} (compute capability {major}.{minor})"


def _parse_capability(value: object) -> tuple[int, int] | None:
    """Reads `(8, 0)`, `"8.0"` or `"9.0a"` as `(major, minor)`."""
    if isinstance(value, tuple | list) and len(value) == 2:
        try:
            return int(value[0]), int(value[1])
        except (TypeError, ValueError):
            return None
    match = re.match(r"^\s*(\d+)\.(\d+)", str(value)) if value is not None else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def _tensorflow_devices() -> list[Device]:
    import tensorflow as tf

    devices = [
        Device("tpu", device.name) for device in tf.config.list_physical_devices("TPU")
    ]
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        devices.append(
            Device(
                "gpu",
                str(details.get("device_name", gpu.name)),
                _parse_capability(details.get("compute_capability")),
            )
        )
    return devices or [Device("cpu", "CPU")]


def _jax_devices() -> list[Device]:
    import jax

    devices = []
    for device in jax.devices():
        platform = str(device.platform).lower()
        if platform in ("cuda", "rocm"):
            platform = "gpu"
        capability = _parse_capability(getattr(device, "compute_capability", None))
        devices.append(Device(platform, str(device.device_kind), capability))
    return devices


def _torch_devices() -> list[Device]:
    import torch

    from keras_bettermodels._compat.precision import torch_device_kind

    kind = torch_device_kind() or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and torch.cuda.is_available():
        rocm = getattr(torch.version, "hip", None) is not None
        return [
            Device(
                "gpu",
                torch.cuda.get_device_name(index),
                None if rocm else tuple(torch.cuda.get_device_capability(index)),  # type: ignore[arg-type]
            )
            for index in range(torch.cuda.device_count())
        ]
    if kind == "cpu":
        return [Device("cpu", "CPU")]
    return [Device(kind, kind)]


def detect_devices(backend: str | None = None) -> list[Device]:
    """Returns the devices the Keras backend in use computes on.

    Args:
        backend: `"tensorflow"`, `"jax"` or `"torch"`; `None` reads
            `keras.backend.backend()`. Defaults to `None`.

    Returns:
        The accelerators the backend sees (TPUs, then GPUs), or a single CPU
        `Device` when there is none. An unknown backend gives an empty list.

    Example:

    ```python
    from keras_bettermodels.precision.hardware import detect_devices
    print([str(device) for device in detect_devices()])
    ```
    """
    if backend is None:
        import keras

        backend = keras.backend.backend()
    readers = {
        "tensorflow": _tensorflow_devices,
        "jax": _jax_devices,
        "torch": _torch_devices,
    }
    reader = readers.get(backend)
    return reader() if reader is not None else []


def dims_multiple(devices: Sequence[Device]) -> int:
    """Returns 128 on TPUs (their matrix units are 128 wide), 8 elsewhere."""
    return 128 if any(device.platform == "tpu" for device in devices) else 8


def low_precision_dtype(policy_name: str) -> str | None:
    """Returns `"float16"` or `"bfloat16"` for a policy computing in it, else `None`."""
    if "bfloat16" in policy_name:
        return "bfloat16"
    if "float16" in policy_name:
        return "float16"
    return None


def hardware_findings(policy_name: str, devices: Sequence[Device]) -> list[Finding]:
    """Says whether `devices` run `policy_name` faster than float32.

    Pure: the caller reads the devices (`detect_devices()`).

    Args:
        policy_name: a dtype policy name, e.g. `"mixed_float16"`.
        devices: the devices the backend computes on.

    Returns:
        An empty list when the hardware gains, or cannot be judged (an AMD
        or Apple GPU); otherwise one `hardware-no-speedup` finding.
    """
    dtype = low_precision_dtype(policy_name)
    if dtype is None:
        return []
    tpus = [device for device in devices if device.platform == "tpu"]
    gpus = [device for device in devices if device.platform == "gpu"]
    accelerators = [d for d in devices if d.platform not in ("cpu", "tpu", "gpu")]
    benchmark_fix = (
        "Measure it on this machine with "
        "`keras_bettermodels.precision.compare_precision(build_model, data)`."
    )
    if tpus:
        if dtype == "bfloat16":
            return []
        return [
            Finding(
                findings_lib.HARDWARE_NO_SPEEDUP,
                "warning",
                f"The policy is {policy_name!r} but this is a TPU "
                f"({tpus[0].name}): TPUs compute in bfloat16, not float16.",
                'Use `keras.config.set_dtype_policy("mixed_bfloat16")`, '
                "which needs no loss scaling.",
            )
        ]
    if gpus:
        needed = (
            FLOAT16_MIN_CAPABILITY if dtype == "float16" else BFLOAT16_MIN_CAPABILITY
        )
        known = [d for d in gpus if d.compute_capability is not None]
        slow = [d for d in known if d.compute_capability < needed]  # type: ignore[operator]
        if not slow:
            return []
        names = ", ".join(sorted({str(device) for device in slow}))
        architecture = "Volta" if dtype == "float16" else "Ampere"
        fix = benchmark_fix
        if dtype == "bfloat16" and all(
            d.compute_capability >= FLOAT16_MIN_CAPABILITY  # type: ignore[operator]
            for d in slow
        ):
            fix = (
                'Use `"mixed_float16"` on this GPU: it has float16 Tensor '
                "Cores. " + benchmark_fix
            )
        return [
            Finding(
                findings_lib.HARDWARE_NO_SPEEDUP,
                "warning",
                f"The policy is {policy_name!r} but {names} has no {dtype} "
                f"Tensor Cores: they need compute capability "
                f"{needed[0]}.{needed[1]} or newer ({architecture}). Expect "
                "little or no speedup.",
                fix,
            )
        ]
    if accelerators:
        return []  # Apple, Intel or other accelerators: not ours to judge.
    if dtype == "bfloat16":
        return [
            Finding(
                findings_lib.HARDWARE_NO_SPEEDUP,
                "info",
                f"The policy is {policy_name!r} and only a CPU is visible: "
                "only CPUs with AMX or AVX-512 BF16 compute bfloat16 faster "
                "than float32; most train slower.",
                benchmark_fix,
            )
        ]
    return [
        Finding(
            findings_lib.HARDWARE_NO_SPEEDUP,
            "warning",
            f"The policy is {policy_name!r} but no GPU or TPU is visible: CPUs "
            "have no float16 matrix units, so mixed precision does not speed "
            "training up here (it usually slows it down). It pays on NVIDIA "
            "GPUs with compute capability 7.0 or newer (V100, T4, A100, H100) "
            "and on TPUs (mixed_bfloat16).",
            'Train in float32 here (`keras.config.set_dtype_policy("float32")`'
            "), or run on such a GPU. " + benchmark_fix,
        )
    ]
