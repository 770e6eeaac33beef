"""measure_pipeline and compare_cache: the article's experiment as functions."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from keras_bettermodels.timing.benchmark import (
    CacheComparison,
    PipelineTiming,
    compare_cache,
    measure_pipeline,
)
from keras_bettermodels.timing.pipeline import file_cache_files

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.backend_independent

SLEEP = 0.005  # seconds per element in the slow map
ELEMENTS = 24


def _slow_pipeline():
    """24 elements through a map that sleeps 5 ms each: ~120 ms per pass."""

    def read(value):
        time.sleep(SLEEP)
        return value

    return tf.data.Dataset.range(ELEMENTS).map(
        lambda v: tf.numpy_function(read, [v], tf.int64)
    )


def test_measure_pipeline_times_each_pass_and_counts_elements():
    timing = measure_pipeline(_slow_pipeline(), epochs=3)
    assert len(timing.epoch_times) == 3 and timing.elements == ELEMENTS
    assert min(timing.epoch_times) >= ELEMENTS * SLEEP * 0.9
    assert timing.total_time == pytest.approx(sum(timing.epoch_times))
    assert timing.steady_epoch_time == pytest.approx(np.median(timing.epoch_times[1:]))
    assert timing.elements_per_second < ELEMENTS / (ELEMENTS * SLEEP * 0.9)


def test_measure_pipeline_on_any_reiterable():
    timing = measure_pipeline([1, 2, 3], epochs=2)
    assert timing.elements == 3 and timing.steady_epoch_time is not None
    single = measure_pipeline(range(4), epochs=1)
    assert single.steady_epoch_time is None and single.elements == 4


def test_measure_pipeline_on_a_cached_dataset_fills_then_reads():
    timing = measure_pipeline(_slow_pipeline().cache(), epochs=3)
    # Gross effect: the first pass sleeps ~120 ms, the later ones not at all.
    assert timing.first_epoch_time > 3 * timing.steady_epoch_time


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"epochs": 0}, ValueError, r"Invalid value for argument `epochs`"),
        ({"epochs": 1.5}, TypeError, r"Invalid type for argument `epochs`"),
    ],
)
def test_measure_pipeline_bad_epochs(arguments, error, match):
    with pytest.raises(error, match=match):
        measure_pipeline([1], **arguments)


def test_measure_pipeline_refuses_iterators_and_endless_datasets():
    with pytest.raises(TypeError, match=r"not an iterator\)\. Received"):
        measure_pipeline(iter([1, 2]))
    with pytest.raises(TypeError, match=r"argument `dataset`"):
        measure_pipeline(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected a finite dataset.*\.repeat\(\)"):
        measure_pipeline(tf.data.Dataset.range(3).repeat())


def test_compare_cache_in_memory():
    result = compare_cache(_slow_pipeline, epochs=3)
    assert isinstance(result, CacheComparison)
    assert result.cache == "memory" and result.cache_path is None
    assert result.warm is None and result.warm_speedup is None
    assert result.uncached.elements == result.cached.elements == ELEMENTS
    # Gross effects only: caching pays after the first pass. The whole-run gain
    # is bounded by 3x (the first epoch fills the cache) and shrinks under load
    # (1.19 seen on a loaded CI machine); the steady epochs carry the effect.
    assert result.speedup > 1.1
    assert result.steady_speedup > 3
    assert result.bound == 3  # a cold cache gains at most 3x over 3 epochs
    text = str(result)
    assert "uncached" in text and "cache (memory, cold)" in text
    assert "steady-state epoch ratio" in text


def test_compare_cache_to_a_file_times_cold_and_warm_and_cleans_up(tmp_path):
    (tmp_path / "keep.txt").write_text("the user's file")
    result = compare_cache(_slow_pipeline, epochs=2, cache_to=tmp_path)
    assert result.cache == "file"
    assert result.cache_path == os.path.join(tmp_path, "kbm_compare_cache")
    assert isinstance(result.warm, PipelineTiming)
    # The warm run finds the file: its first pass is fast too.
    assert result.warm.first_epoch_time < result.cached.first_epoch_time / 2
    assert result.warm_speedup > result.speedup
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]
    assert "cache (file, warm)" in str(result)
    document = result.to_dict()
    assert document["warm"]["elements"] == ELEMENTS and document["bound"] == 2


def test_compare_cache_never_touches_existing_cache_files(tmp_path):
    prefix = str(tmp_path / "mine")
    for _ in tf.data.Dataset.range(3).cache(prefix):
        pass
    before = file_cache_files(prefix)
    assert before
    with pytest.raises(ValueError, match=r"Invalid value for argument `cache_to`"):
        compare_cache(_slow_pipeline, epochs=1, cache_to=prefix)
    assert file_cache_files(prefix) == before


def test_compare_cache_refuses_a_cached_pipeline():
    with pytest.raises(ValueError, match=r"an uncached pipeline.*Remove `\.cache\(\)`"):
        compare_cache(lambda: tf.data.Dataset.range(3).cache(), epochs=1)


@pytest.mark.parametrize(
    ("make_dataset", "arguments", "match"),
    [
        ("not callable", {}, r"Invalid type for argument `make_dataset`"),
        (lambda: [1, 2], {}, r"Invalid type for argument `make_dataset\(\)`"),
        (_slow_pipeline, {"cache_to": 3}, r"Invalid type for argument `cache_to`"),
    ],
)
def test_compare_cache_bad_arguments(make_dataset, arguments, match):
    with pytest.raises(TypeError, match=match):
        compare_cache(make_dataset, epochs=1, **arguments)
