"""inspect_pipeline on real tf.data pipelines: cache kind, path, position, prefetch.

The inspection reads only `tf.data` objects, never Keras or a backend, so these
tests run once (`backend_independent`); the callback's
tests run the same inspection under every backend through `fit`.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from keras_bettermodels.timing.pipeline import (
    PipelineInfo,
    file_cache_complete,
    file_cache_files,
    inspect_pipeline,
    is_tf_dataset,
)

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.backend_independent


def _source():
    x = np.arange(40, dtype="float32").reshape(20, 2)
    return tf.data.Dataset.from_tensor_slices((x, np.arange(20)))


def _decode(x, y):
    return tf.sqrt(x) * 2.0, y


def _python_decode(x, y):
    x = tf.numpy_function(lambda a: a * 2, [x], tf.float32)
    return tf.ensure_shape(x, [2]), y


def test_no_cache():
    info = inspect_pipeline(_source().map(_decode).batch(4))
    assert info.cached is False and info.cache is None and info.cache_path is None
    assert info.transformations == ("tensor_slices", "map", "batch")
    assert info.maps == 1 and info.prefetched is False
    assert info.cache_position == ""


def test_memory_cache_after_map_before_shuffle():
    dataset = (
        _source()
        .map(_decode, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
        .shuffle(20)
        .batch(4)
        .prefetch(tf.data.AUTOTUNE)
    )
    info = inspect_pipeline(dataset)
    assert (info.cached, info.cache, info.cache_path) == (True, "memory", None)
    assert info.transformations == (
        "tensor_slices",
        "map",
        "cache",
        "shuffle",
        "batch",
        "prefetch",
    )
    assert (info.maps_before_cache, info.maps_after_cache) == (1, 0)
    assert (info.shuffle_before_cache, info.shuffle_after_cache) == (False, True)
    assert info.prefetched is True
    assert info.cache_position == "after map, before shuffle"
    assert info.describe() == (
        "tensor_slices -> map -> cache(memory) -> shuffle -> batch -> prefetch"
    )


def test_file_cache_and_its_path(tmp_path):
    path = str(tmp_path / "train_cache")
    info = inspect_pipeline(_source().map(_decode).cache(path).batch(4))
    assert (info.cached, info.cache, info.cache_path) == (True, "file", path)


def test_cache_before_an_expensive_map():
    info = inspect_pipeline(_source().cache().map(_python_decode).batch(4))
    assert (info.maps_before_cache, info.maps_after_cache) == (0, 1)
    assert info.python_maps == 1 and info.python_map_after_cache is True
    assert info.cache_position == "before map"


def test_py_function_maps_are_flagged_and_graph_maps_are_not():
    py = inspect_pipeline(
        _source().map(lambda x, y: (tf.py_function(lambda a: a, [x], tf.float32), y))
    )
    assert py.python_maps == 1
    assert inspect_pipeline(_source().map(_decode)).python_maps == 0


def test_shuffle_before_cache_freezes_the_order():
    info = inspect_pipeline(_source().shuffle(20).cache().batch(4))
    assert (info.shuffle_before_cache, info.shuffle_after_cache) == (True, False)
    assert info.cache_position == "after shuffle"


def test_take_after_cache_and_endless_repeat_before_it():
    assert inspect_pipeline(_source().cache().take(5)).take_after_cache is True
    assert inspect_pipeline(_source().take(5).cache()).take_after_cache is False
    endless = inspect_pipeline(_source().repeat().cache())
    assert endless.repeat_before_cache is True and endless.infinite is True
    assert endless.cardinality is None
    assert inspect_pipeline(_source().repeat(2).cache()).repeat_before_cache is False


def test_restructuring_maps_are_not_counted_as_work():
    # `unbatch` inserts an identity map of its own.
    info = inspect_pipeline(_source().batch(4).cache().unbatch().batch(5))
    assert info.maps == 0 and info.maps_after_cache == 0


def test_the_cache_nearest_the_output_is_the_one_reported(tmp_path):
    path = str(tmp_path / "late")
    info = inspect_pipeline(_source().cache().map(_decode).cache(path).batch(2))
    assert info.cache == "file" and info.cache_path == path
    assert info.maps_before_cache == 1 and info.maps_after_cache == 0


def test_a_cache_on_one_branch_of_a_zip():
    left = _source().map(_decode).cache()
    right = tf.data.Dataset.range(20).map(lambda v: v * 3)
    info = inspect_pipeline(tf.data.Dataset.zip((left, right)).batch(4))
    assert info.cached is True
    assert info.maps == 2 and info.maps_before_cache == 1
    assert info.maps_after_cache == 0  # the other branch does not pass the cache


def test_generator_sources_and_options_wrappers():
    def generate():
        yield from range(6)

    dataset = (
        tf.data.Dataset.from_generator(
            generate, output_signature=tf.TensorSpec((), tf.int64)
        )
        .map(lambda v: v + 1)
        .cache()
        .with_options(tf.data.Options())
        .prefetch(2)
        .with_options(tf.data.Options())
    )
    info = inspect_pipeline(dataset)
    assert info.transformations[-3:] == ("map", "cache", "prefetch")
    assert info.prefetched is True  # options wrappers are not transformations
    assert info.cardinality is None and info.infinite is False


def test_batch_size_from_the_spec_or_the_last_batch():
    assert inspect_pipeline(_source().batch(4)).batch_size == 4
    assert inspect_pipeline(_source().batch(4, drop_remainder=True)).batch_size == 4
    assert inspect_pipeline(_source().padded_batch(3)).batch_size == 3
    assert inspect_pipeline(_source()).batch_size is None
    assert inspect_pipeline(_source().batch(4)).cardinality == 5


def test_to_dict_round_trip():
    info = inspect_pipeline(_source().map(_decode).cache().shuffle(4).batch(4))
    document = info.to_dict()
    assert document["cache_position"] == "after map, before shuffle"
    assert PipelineInfo.from_dict(document) == info


def _graph_kinds(dataset) -> tuple[str, ...]:
    """The dataset ops of the serialized graph, source first, named as kinds."""
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())
    aliases = {"parallelmap": "map", "tensorslice": "tensor_slices"}
    kinds = []
    for node in graph.node:  # topological order: inputs first
        match = re.fullmatch(r"(\w+?)Dataset(V\d+)?", node.op)
        if match:
            name = match.group(1).lower()
            kinds.append(aliases.get(name, name))
    return tuple(kinds)


@pytest.mark.parametrize(
    "build",
    [
        lambda s: s.map(_decode).cache().shuffle(8).batch(4).prefetch(2),
        lambda s: s.cache().map(_decode, num_parallel_calls=2).batch(4),
        lambda s: s.shuffle(4).cache().repeat(2).take(7).batch(2),
        lambda s: s.map(_decode).cache("").prefetch(1),
    ],
    ids=["cache_then_shuffle", "cache_then_map", "shuffle_repeat_take", "plain"],
)
def test_the_walk_agrees_with_the_serialized_graph(build):
    """Guards the class-name walk against a TensorFlow release renaming classes."""
    dataset = build(_source())
    assert inspect_pipeline(dataset).transformations == _graph_kinds(dataset)


def test_file_cache_files_and_completeness(tmp_path):
    path = str(tmp_path / "c")
    (tmp_path / "c_other.txt").write_text("not a cache file")
    assert file_cache_files(path) == [] and not file_cache_complete(path)
    dataset = tf.data.Dataset.range(5).cache(path)
    iterator = iter(dataset)
    next(iterator)
    filling = file_cache_files(path)
    assert any(name.endswith(".lockfile") for name in filling)
    assert not file_cache_complete(path)
    del iterator
    for _ in dataset:
        pass
    assert file_cache_complete(path)
    assert [name[len(path) :] for name in file_cache_files(path)] == [
        ".data-00000-of-00001",
        ".index",
    ]


def test_anything_but_a_dataset_is_a_type_error():
    with pytest.raises(TypeError, match=r"Invalid type for argument `dataset`\."):
        inspect_pipeline(np.zeros(3))
    assert is_tf_dataset(_source()) and not is_tf_dataset([1, 2])
