"""The deprecated module `keras_bettermodels.layers.prune_low_magnitude`.

Its names still resolve for one release, with a warning; `.keras` files saved
when the wrapper lived here (they record this module) load without one.
"""

from __future__ import annotations

import json
import warnings
import zipfile

import keras
import numpy as np
import pytest

from keras_bettermodels.layers import PruneLowMagnitude
from keras_bettermodels.pruning import ConstantSparsity
from tests.pruning._helpers import assert_moved, numpy

OLD_MODULE = "keras_bettermodels.layers.prune_low_magnitude"
EVERY_10 = ConstantSparsity(0.5, begin_step=0, frequency=10)


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("PruneLowMagnitude", "keras_bettermodels.layers"),
        ("MISSING_CALLBACK", "keras_bettermodels.pruning.wrapper"),
        ("PRUNABLE_WEIGHTS", "keras_bettermodels.pruning.prunable_layer"),
        ("prunable_weight_name", "keras_bettermodels.pruning.prunable_layer"),
        ("magnitude_mask", "keras_bettermodels.pruning"),
        ("reattach_jax_state", "keras_bettermodels.pruning.recovery"),
    ],
)
def test_each_old_name_still_resolves_with_a_deprecation_warning(name, home):
    assert_moved(OLD_MODULE, name, home)


def _as_saved_before(config: dict) -> dict:
    """A layer config as earlier versions wrote it: the old module, fewer arguments."""
    if config.get("registered_name") == "keras_bettermodels>PruneLowMagnitude":
        config["module"] = OLD_MODULE
        for key in ("block_size", "block_pooling_type", "sparsity_m_by_n"):
            del config["config"][key]
    for value in config.values():
        if isinstance(value, dict):
            _as_saved_before(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _as_saved_before(item)
    return config


def test_a_keras_file_saved_before_the_move_loads_without_a_warning(tmp_path):
    keras.utils.set_random_seed(0)
    wrapper = PruneLowMagnitude(keras.layers.Dense(4), schedule=EVERY_10)
    model = keras.Sequential([keras.Input((3,)), wrapper])
    wrapper.pruning_mask.assign(np.array([[1, 0, 1, 0]] * 3, "float32"))
    new, old = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(new)
    with zipfile.ZipFile(new) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(_as_saved_before(json.loads(data))).encode()
            target.writestr(item, data)
    assert OLD_MODULE.encode() in zipfile.ZipFile(old).read("config.json")

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"`keras_bettermodels\.")
        restored = keras.saving.load_model(old)
    loaded = restored.layers[0]
    assert type(loaded) is PruneLowMagnitude
    assert loaded.schedule == EVERY_10 and loaded.sparsity_m_by_n is None
    assert np.array_equal(numpy(loaded.pruning_mask), numpy(wrapper.pruning_mask))
    x = np.ones((2, 3), "float32")
    assert np.allclose(numpy(restored(x)), numpy(model(x)))


def test_a_config_saved_before_the_move_still_loads():
    layer = PruneLowMagnitude(keras.layers.Dense(4), schedule=EVERY_10)
    config = _as_saved_before(keras.saving.serialize_keras_object(layer))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"`keras_bettermodels\.")
        restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, PruneLowMagnitude)
    assert restored.schedule == EVERY_10
    assert restored.sparsity_m_by_n is None
    assert restored.block_pooling_type == "AVG"
