"""The deprecated module `keras_bettermodels.callbacks.pruning`.

The callbacks live in `keras_bettermodels.pruning.callbacks` (tested in
`tests/pruning/test_callbacks.py`); the names this module re-exported still
resolve for one release, with a warning.
"""

from __future__ import annotations

import pytest

from tests.pruning._helpers import assert_moved

OLD_MODULE = "keras_bettermodels.callbacks.pruning"


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("UpdatePruningMasks", "keras_bettermodels.callbacks"),
        ("UpdatePruningStep", "keras_bettermodels.callbacks"),
        ("PruningSummaries", "keras_bettermodels.callbacks"),
        ("pruning_wrappers", "keras_bettermodels.pruning"),
        ("shortfall_message", "keras_bettermodels.pruning.callbacks"),
    ],
)
def test_each_old_name_still_resolves_with_a_deprecation_warning(name, home):
    assert_moved(OLD_MODULE, name, home)


def test_the_old_module_is_still_an_attribute_of_the_callbacks_package():
    import keras_bettermodels.callbacks

    with pytest.warns(DeprecationWarning, match="callbacks.pruning.UpdatePruningMasks"):
        found = keras_bettermodels.callbacks.pruning.UpdatePruningMasks
    assert found is keras_bettermodels.callbacks.UpdatePruningMasks
