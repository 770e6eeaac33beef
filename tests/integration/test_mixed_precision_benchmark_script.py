"""benchmarks/mixed_precision.py and the GPU script that runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._imports import heavy_modules_after

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "mixed_precision.py"
GPU_SCRIPT = REPO / "benchmarks" / "mixed_precision_gpu.sh"


@pytest.mark.backend_independent
def test_the_gpu_script_is_valid_bash_and_installs_the_wheels_first():
    subprocess.run(["bash", "-n", str(GPU_SCRIPT)], check=True)
    commands = [
        line
        for line in GPU_SCRIPT.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert commands[0] == (
        "python3 -m pip install -q --no-index --no-deps --target /tmp/site "
        ".whl/*.whl && export PYTHONPATH=/tmp/site:$PWD"
    )


@pytest.mark.backend_independent
def test_the_table_of_saved_results_needs_no_keras(tmp_path):
    row = {"float32_ms": 10.0, "mixed_ms": 4.0, "speedup": 2.5}
    report = {
        "backend": "jax",
        "devices": ["gpu: NVIDIA H100 80GB HBM3 (compute capability 9.0)"],
        "hardware_no_speedup": False,
        "models": {
            "dense 2x4096 b1024": {
                "tf32": row,
                "strict": {**row, "float32_ms": 20.0, "speedup": 5.0},
            }
        },
        "guard_overhead": {"overhead_pct": 0.5, "hooks_pct_in_loop": 0.3},
    }
    path = tmp_path / "jax.json"
    path.write_text(json.dumps(report))
    code = (
        "import runpy\n"
        f"module = runpy.run_path({str(SCRIPT)!r}, run_name='benchmark')\n"
        f"assert module['main'](['--table', {str(path)!r}]) == 0"
    )
    assert heavy_modules_after(code) == []
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--table", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "dense 2x4096 b1024" in result.stdout
    assert "2.50x" in result.stdout and "5.00x" in result.stdout
    assert "hardware-no-speedup: False" in result.stdout


@pytest.mark.slow
def test_the_quick_run_measures_every_part(tmp_path):
    # What the GPU script runs, with tiny sizes; `--tf32 both` takes the GPU
    # path (TensorFloat-32 on, then off) on a CPU too.
    path = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--tf32", "both", "--json", str(path)],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(path.read_text())
    assert {f["code"] for f in report["audit"]["findings"]} >= {"small-model"}
    assert len(report["models"]) == 2
    for modes in report["models"].values():
        assert set(modes) == {"tf32", "strict"}
        for row in modes.values():
            assert row["float32_ms"] > 0 and row["mixed_ms"] > 0
    overhead = report["guard_overhead"]
    assert overhead["fit_s_with"] > 0 and overhead["hooks_ms_in_loop"] > 0
    assert "MixedPrecisionGuard overhead on fit" in result.stdout
