"""Moved names: found in the old module with a warning; documented paths: none."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import pytest

from keras_bettermodels.pruning._moved import moved_names


def _old_module() -> types.ModuleType:
    module = types.ModuleType("old_home")
    module.__getattr__ = moved_names("old_home", {"dumps": "json"})
    sys.modules["old_home"] = module
    return module


def test_the_warning_points_at_the_line_that_imports_the_name():
    _old_module()
    with pytest.warns(DeprecationWarning) as caught:
        from old_home import dumps
    import json

    assert dumps is json.dumps
    assert caught[0].filename == __file__
    assert "`from json import dumps`" in str(caught[0].message)
    del sys.modules["old_home"]


def test_a_name_that_never_lived_there_is_an_attribute_error():
    module = _old_module()
    with pytest.raises(AttributeError, match="module 'old_home' has no attribute"):
        module.loads  # noqa: B018
    del sys.modules["old_home"]


DOCUMENTED = """
import warnings
warnings.filterwarnings("error", message=r"`keras_bettermodels\\.")
from keras_bettermodels.layers import PruneLowMagnitude
from keras_bettermodels.callbacks import (
    PruningSummaries, UpdatePruningMasks, UpdatePruningStep,
)
import keras_bettermodels.pruning as pruning
from keras_bettermodels.pruning import tfmot
import keras_bettermodels

for name in pruning.__all__:
    getattr(pruning, name)
assert PruneLowMagnitude is pruning.PruneLowMagnitude
assert UpdatePruningMasks is tfmot.sparsity.keras.UpdatePruningMasks
assert keras_bettermodels.PruneLowMagnitude is PruneLowMagnitude
print("ok")
"""


def test_the_documented_paths_import_without_a_warning():
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DOCUMENTED)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
