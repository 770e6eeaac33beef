"""Device detection per backend, and what each device means for mixed precision."""

from __future__ import annotations

import keras
import pytest

from keras_bettermodels.precision import hardware
from keras_bettermodels.precision.hardware import Device, hardware_findings

H100 = Device("gpu", "NVIDIA H100 80GB HBM3", (9, 0))
V100 = Device("gpu", "Tesla V100-SXM2-16GB", (7, 0))
T4 = Device("gpu", "Tesla T4", (7, 5))
P100 = Device("gpu", "Tesla P100-PCIE-16GB", (6, 0))
AMD = Device("gpu", "AMD Instinct MI250X", None)
TPU = Device("tpu", "TPU v4")
CPU = Device("cpu", "CPU")


@pytest.mark.backend_independent
class TestHardwareFindings:
    @pytest.mark.parametrize("devices", [[H100], [V100], [T4], [AMD], [CPU, H100]])
    def test_tensor_core_gpus_gain_from_float16(self, devices):
        assert hardware_findings("mixed_float16", devices) == []

    def test_a_gpu_older_than_volta_gains_little(self):
        (finding,) = hardware_findings("mixed_float16", [P100])
        assert (finding.code, finding.level) == ("hardware-no-speedup", "warning")
        assert "Tesla P100" in finding.message and "7.0" in finding.message

    def test_the_slowest_of_several_gpus_is_named(self):
        (finding,) = hardware_findings("mixed_float16", [H100, P100])
        assert "P100" in finding.message and "H100" not in finding.message

    def test_bfloat16_needs_ampere_and_volta_is_told_to_use_float16(self):
        assert hardware_findings("mixed_bfloat16", [H100]) == []
        (finding,) = hardware_findings("mixed_bfloat16", [T4])
        assert "8.0" in finding.message
        assert '"mixed_float16"' in finding.fix

    def test_a_tpu_is_told_to_use_bfloat16(self):
        (finding,) = hardware_findings("mixed_float16", [TPU])
        assert finding.code == "hardware-no-speedup"
        assert "mixed_bfloat16" in finding.fix
        assert hardware_findings("mixed_bfloat16", [TPU]) == []

    def test_a_cpu_gains_nothing_from_float16(self):
        (finding,) = hardware_findings("mixed_float16", [CPU])
        assert (finding.code, finding.level) == ("hardware-no-speedup", "warning")
        assert "does not speed training up" in finding.message
        assert "compare_precision" in finding.fix

    def test_bfloat16_on_a_cpu_is_only_an_info(self):
        (finding,) = hardware_findings("mixed_bfloat16", [CPU])
        assert finding.level == "info" and "AMX" in finding.message

    def test_float32_says_nothing(self):
        assert hardware_findings("float32", [CPU]) == []

    def test_tpus_want_multiples_of_128(self):
        assert hardware.dims_multiple([TPU]) == 128
        assert hardware.dims_multiple([H100, CPU]) == 8

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ((8, 6), (8, 6)),
            ("9.0", (9, 0)),
            ("10.0a", (10, 0)),
            (None, None),
            ("", None),
        ],
    )
    def test_compute_capability_is_read_in_every_spelling(self, value, expected):
        assert hardware._parse_capability(value) == expected


def test_detect_devices_reads_the_backend_in_use():
    devices = hardware.detect_devices()
    assert devices, "the backend computes somewhere"
    assert all(isinstance(device, Device) for device in devices)
    assert hardware.detect_devices(keras.backend.backend()) == devices
    for device in devices:
        if device.platform == "gpu" and device.compute_capability is not None:
            major, minor = device.compute_capability
            assert major >= 3 and minor >= 0


def test_an_unknown_backend_has_no_devices():
    assert hardware.detect_devices("numpy") == []
