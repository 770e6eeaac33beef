"""Every script in `examples/` runs, quickly (`KBM_QUICK=1`), on each backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))

# What each example must print: proof that it did its job, not just that it ran.
# A new example without an entry here fails, so none goes unchecked.
EXPECTED_OUTPUT = {
    "early_stopping.py": "stopped_epoch",
    "caching.py": "Input timing:",
    "pruning.py": "stripped model predicts the same as the pruned one: True",
    "random_search.py": "retrained on 1400 samples (1000 training + 400 validation)",
    "gradient_check.py": "verdict=bug passed=False",
    "mixed_precision.py": "weights intact: True",
    "scaling_out.py": "restored the best epoch's weights on every replica: True",
}


def test_examples_exist() -> None:
    assert EXAMPLES, f"no examples found in {REPO / 'examples'}"


# The order examples take backends in: the TensorFlow pass, the longest,
# gets the fewest.
ROTATION = ("jax", "torch", "tensorflow")


def _examples() -> list[Any]:
    """Each example runs on one backend in `make test`, in turn; `-m slow` runs
    the others too. Every example is backend-agnostic, and its parts have their
    own tests on every backend: this keeps `make test` within its time budget."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return [
        pytest.param(
            script,
            id=script.name,
            marks=()
            if ROTATION[index % len(ROTATION)] == backend
            else pytest.mark.slow,
        )
        for index, script in enumerate(EXAMPLES)
    ]


@pytest.mark.parametrize("script", _examples())
def test_example_runs(script: Path) -> None:
    assert script.name in EXPECTED_OUTPUT, f"add {script.name} to EXPECTED_OUTPUT"
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
    assert EXPECTED_OUTPUT[script.name] in result.stdout, result.stdout
