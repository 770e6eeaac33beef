"""The tf.data internals `_compat.timing` reads are where TensorFlow 2.21 has them."""

from __future__ import annotations

import numpy as np
import pytest

from keras_bettermodels._compat import timing

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.backend_independent


def _source():
    return tf.data.Dataset.from_tensor_slices(np.arange(12, dtype="float32"))


def test_dataset_type_is_tf_data_dataset():
    assert timing.dataset_type() is not None
    assert issubclass(timing.dataset_type(), tf.data.Dataset)
    assert isinstance(_source(), timing.dataset_type())


def test_dataset_inputs_lead_back_to_the_source():
    source = _source()
    mapped = source.map(lambda v: v * 2.0)
    assert timing.dataset_inputs(mapped) == [source]
    assert timing.dataset_inputs(source) == []
    zipped = tf.data.Dataset.zip((source, mapped))
    assert timing.dataset_inputs(zipped) == [source, mapped]


def test_map_function_graph_def_holds_the_mapped_ops():
    mapped = _source().map(tf.sqrt)
    graph_def = timing.map_function_graph_def(mapped)
    assert "Sqrt" in {node.op for node in graph_def.node}
    parallel = _source().map(tf.sqrt, num_parallel_calls=2)
    assert "Sqrt" in {node.op for node in timing.map_function_graph_def(parallel).node}
    assert timing.map_function_graph_def(_source()) is None


def test_batch_cache_and_repeat_arguments(tmp_path):
    assert int(timing.batch_size_argument(_source().batch(4))) == 4
    assert int(timing.batch_size_argument(_source().padded_batch(3))) == 3
    assert timing.cache_filename_argument(_source().cache()).numpy() == b""
    path = str(tmp_path / "cache")
    assert (
        timing.cache_filename_argument(_source().cache(path)).numpy() == path.encode()
    )
    assert int(timing.repeat_count_argument(_source().repeat())) == -1
    assert int(timing.repeat_count_argument(_source().repeat(3))) == 3


def test_a_symbolic_tensor_has_a_dtype_and_no_numpy():
    """`pipeline._scalar` tells a symbolic tensor by exactly this."""
    seen = []

    @tf.function
    def probe(value):
        seen.append((hasattr(value, "numpy"), hasattr(value, "dtype")))
        return value

    probe(tf.constant(1))
    assert seen == [(False, True)]
    assert hasattr(tf.constant(1), "numpy")


def test_the_base_dataset_class_does_not_list_inputs():
    """`pipeline._walk` treats exactly this as a source."""
    with pytest.raises(NotImplementedError):
        timing.dataset_type()._inputs(object())
