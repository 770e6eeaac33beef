"""Scripted epochs and pipelines for the pure input-timing tests (no clock, no data)."""

from __future__ import annotations

from keras_bettermodels.timing.pipeline import PipelineInfo
from keras_bettermodels.timing.report import EpochTiming


def pipeline_info(**changes) -> PipelineInfo:
    fields = {
        "transformations": ("tensor_slices", "map", "batch", "prefetch"),
        "cached": False,
        "cache": None,
        "cache_path": None,
        "prefetched": True,
        "maps": 1,
        "maps_before_cache": 0,
        "maps_after_cache": 0,
        "python_maps": 0,
        "python_map_after_cache": False,
        "shuffle_before_cache": False,
        "shuffle_after_cache": False,
        "take_after_cache": False,
        "repeat_before_cache": False,
        "batch_size": 32,
        "cardinality": 10,
        "infinite": False,
    }
    fields.update(changes)
    return PipelineInfo(**fields)


CACHED = {
    "transformations": ("tensor_slices", "map", "cache", "batch", "prefetch"),
    "cached": True,
    "cache": "memory",
    "maps_before_cache": 1,
}


def scripted_epochs(times, first_steps, steps=10, samples=None, last_steps=None):
    last_steps = last_steps or [0.0] * len(times)
    return [
        EpochTiming(index, t, 0.0, steps, 0.001, f, samples, last)
        for index, (t, f, last) in enumerate(
            zip(times, first_steps, last_steps, strict=True)
        )
    ]
