"""Runs code in a fresh interpreter and reports which heavy packages it loaded."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("keras", "tensorflow", "jax", "torch", "sklearn")


def heavy_modules_after(code: str) -> list[str]:
    """Returns the heavy top-level packages imported by running `code`."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(set({HEAVY!r}) & "
        "{m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])
