"""The package as users install it: a wheel, in a fresh environment."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.backend_independent, pytest.mark.processes]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
    )
    (path,) = out.glob("keras_bettermodels-*.whl")
    return path


def test_the_wheel_ships_the_package_and_its_type_marker(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "keras_bettermodels/py.typed" in names
    assert "keras_bettermodels/criteria/__init__.py" in names
    assert not any(name.startswith("tests/") for name in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    for requirement in (
        "keras",
        "keras-tuner",
        "six",
        "tensorboard",
        "numpy",
        "scikit-learn",  # the demo's data: `[jax]` alone runs it
    ):
        assert f"Requires-Dist: {requirement}" in text
    assert "Provides-Extra: tensorflow" in text and "Provides-Extra: jax" in text
    # The license travels with the wheel, not only its name in the metadata.
    assert "License-Expression: Apache-2.0" in text
    assert "License-File: LICENSE" in text
    (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert b"Apache License" in zipfile.ZipFile(wheel).read(license_file)


def test_the_wheel_installs_and_imports_away_from_the_source_tree(wheel, tmp_path):
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # Without PYTHONPATH: pip would take a source tree on it for an installed copy.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        env=env,
    )
    code = (
        "import keras_bettermodels, keras_bettermodels.criteria as c\n"
        "print(keras_bettermodels.__file__)\n"
        "print(keras_bettermodels.__version__, c.get('GL5') | 'UP3')\n"
    )
    out = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    ).stdout.splitlines()
    assert "site-packages" in out[0] and str(ROOT) not in out[0]
    assert out[1] == "0.1.0.dev0 GL(5) | UP(3)"


def test_the_wheel_ships_the_tensorboard_plugins(wheel):
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    for path in (
        "common.js",
        "gradient_check/index.js",
        "input_timing/index.js",
        "training_health/index.js",
    ):
        assert f"keras_bettermodels/tensorboard/static/{path}" in names
    entry_points = archive.read(
        next(n for n in names if n.endswith("entry_points.txt"))
    ).decode()
    assert "[tensorboard_plugins]" in entry_points
    for target in (
        "keras_bettermodels.tensorboard.gradient_check_plugin:GradientCheckPlugin",
        "keras_bettermodels.tensorboard.input_timing_plugin:InputTimingPlugin",
        "keras_bettermodels.tensorboard.training_health_plugin:TrainingHealthPlugin",
    ):
        assert target in entry_points
