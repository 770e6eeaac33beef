"""Every script in `examples/` runs, quickly (`KBM_QUICK=1`), on each backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))


def test_examples_exist() -> None:
    assert EXAMPLES, f"no examples found in {REPO / 'examples'}"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(script: Path) -> None:
    env = {**os.environ, "KBM_QUICK": "1"}  # keeps KERAS_BACKEND
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopped_epoch" in result.stdout, result.stdout
