"""benchmarks/gpu.sh --quick: every part runs, each in its own process, and the
table and the JSON come out (the GPU run itself happens on a GPU machine)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu.sh"


pytestmark = [pytest.mark.backend_independent, pytest.mark.processes]  # own processes


def _run_quick(directory: Path, backends: str) -> tuple[int, str]:
    """`gpu.sh --quick DIRECTORY` on `backends`: its exit code and output."""
    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("needs bash and timeout")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "BACKENDS": backends,
        "PART_TIMEOUT": "300",  # a busy CI machine; each part takes ~10 s idle
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), "--quick", str(directory)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_the_gpu_script_runs_every_part_in_quick_mode(tmp_path):
    # JAX alone: each part starts an interpreter (~10 s idle, a minute under
    # CI load); `BACKENDS="jax torch" bash benchmarks/gpu.sh --quick` runs both.
    backends = [b for b in ("jax",) if importlib.util.find_spec(b)]
    if not backends:
        pytest.skip("needs JAX")
    returncode, output = _run_quick(tmp_path, " ".join(backends))
    assert returncode == 0, output
    for backend in backends:
        check = json.loads((tmp_path / f"gradient_check_{backend}.json").read_text())
        assert check["backend"] == backend
        assert check["verdict"] in ("great", "ok"), check
        mixed = json.loads((tmp_path / f"mixed_precision_{backend}.json").read_text())
        assert mixed["guard_overhead_big"]["layers"] == 4
        # --quick reaches every part: the state check runs on a tiny model too.
        nonfinite_json = tmp_path / f"nonfinite_check_{backend}.json"
        nonfinite = json.loads(nonfinite_json.read_text())
        assert nonfinite["backend"] == backend and nonfinite["params"] < 10**5
        assert f"{backend} " in output
    assert "check_gradients, " in output
    assert "guard overhead, " in output
    assert json.loads((tmp_path / "summary.json").read_text())


def test_a_failing_part_is_reported_and_the_others_go_on(tmp_path):
    """A backend that is not there fails its parts; the script says so."""
    returncode, output = _run_quick(tmp_path, "no_such_backend")
    assert returncode == 1, output
    assert "-- mixed_precision_no_such_backend: exit" in output
    assert "-- gradient_check_no_such_backend: exit" in output
    assert "part(s) failed" in output
