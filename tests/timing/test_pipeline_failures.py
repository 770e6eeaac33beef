"""What the pipeline walk does with what it cannot read: logged, never hidden.

Fakes stand in for tf.data classes, so these run without TensorFlow.
"""

from __future__ import annotations

import logging

import pytest

from keras_bettermodels.timing import pipeline

pytestmark = pytest.mark.backend_independent

LOGGER = "keras_bettermodels.timing.pipeline"


class _SourceDataset:
    def _inputs(self):
        return []


class _HiddenDataset:
    """A dataset class that does not list its inputs (the base class's way)."""

    def _inputs(self):
        raise NotImplementedError


class _BrokenDataset:
    def _inputs(self):
        raise RuntimeError("a broken hook")


class _MapDataset:
    def __init__(self, source, wrapper):
        self._source, self._map_func = source, wrapper

    def _inputs(self):
        return [self._source]


class _Unreadable:
    """A function wrapper that no longer holds a traced function."""


class _SymbolicTensor:
    dtype = "int64"


def test_a_dataset_without_inputs_is_a_source_and_it_is_logged(caplog):
    hidden = _HiddenDataset()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        nodes, _ = pipeline._walk(_MapDataset(hidden, None))
    assert [node.kind for node in nodes.values()] == ["map", "hidden"]
    assert nodes[id(hidden)].inputs == []
    assert "hidden lists no inputs: taken as a source" in caplog.text


def test_an_unexpected_error_in_the_walk_is_not_swallowed():
    with pytest.raises(RuntimeError, match="a broken hook"):
        pipeline._walk(_BrokenDataset())


def test_an_unreadable_map_function_counts_as_work_and_it_is_logged(caplog):
    mapped = _MapDataset(_SourceDataset(), _Unreadable())
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert pipeline._function_ops(mapped) is None
    assert "could not read the function of map" in caplog.text
    assert pipeline._function_ops(_SourceDataset()) is None  # no function at all


def test_a_symbolic_tensor_has_no_value_and_it_is_logged(caplog):
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert pipeline._scalar(_SymbolicTensor()) is None
    assert "no value to read in _SymbolicTensor" in caplog.text
    assert pipeline._scalar(7) == 7 and pipeline._scalar(b"") == b""
