"""Adding validation data to training data: what `_combine` does on its own.

The concatenation itself is tested through `_data.plan`, in
`test_data.py`.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

from keras_bettermodels.tuners import _combine


class TestStructuresKerasTreeRejects:
    """The two places that fall back when `keras.tree` rejects a structure."""

    @staticmethod
    def _reject(error: type[Exception]):
        def flatten(*args, **kwargs):
            raise error("planted")

        return flatten

    def test_rejected_structure_is_not_arrays_and_is_logged(self, monkeypatch, caplog):
        monkeypatch.setattr(keras.tree, "flatten", self._reject(TypeError))
        with caplog.at_level(logging.DEBUG, logger=_combine.__name__):
            assert _combine.is_array_structure(np.zeros((2, 2))) is False
        assert "planted" in caplog.text

    def test_another_failure_in_flatten_is_not_swallowed(self, monkeypatch):
        monkeypatch.setattr(keras.tree, "flatten", self._reject(RuntimeError))
        with pytest.raises(RuntimeError, match="planted"):
            _combine.is_array_structure(np.zeros((2, 2)))

    def test_shapes_of_a_rejected_structure_show_its_type_and_are_logged(
        self, monkeypatch, caplog
    ):
        monkeypatch.setattr(keras.tree, "map_structure", self._reject(ValueError))
        with caplog.at_level(logging.DEBUG, logger=_combine.__name__):
            assert repr(_combine._Shapes({"a": 1})) == "<dict>"
        assert "planted" in caplog.text

    def test_another_failure_in_shapes_is_not_swallowed(self, monkeypatch):
        monkeypatch.setattr(keras.tree, "map_structure", self._reject(RuntimeError))
        with pytest.raises(RuntimeError, match="planted"):
            repr(_combine._Shapes({"a": 1}))
