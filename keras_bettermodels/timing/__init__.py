"""Input timing: epoch clocks, cache detection and the cache experiment.

- `measure_pipeline(dataset, epochs=2)`: time a dataset alone, without a model.
- `compare_cache(make_dataset, epochs=5, cache_to=None)`: the same pipeline
  with and without `.cache()`, side by side.
- `inspect_pipeline(dataset)`: is a `tf.data` pipeline cached (memory or
  file), prefetched, and where does the cache sit relative to `map` and
  `shuffle`?
- `summarize(epochs, ...)` / `advise(...)`: the pure analysis behind
  `keras_bettermodels.callbacks.CacheTimingCallback`, returning a
  `TimingReport` (`report`: the report types, their dicts and text).

Importing this package imports neither Keras nor TensorFlow.
"""

from keras_bettermodels.timing.analysis import (
    advise,
    compile_time,
    recompiled_epochs,
    speedup,
    steady_epoch_time,
    summarize,
)
from keras_bettermodels.timing.benchmark import (
    CacheComparison,
    PipelineTiming,
    compare_cache,
    measure_pipeline,
)
from keras_bettermodels.timing.pipeline import (
    PipelineInfo,
    file_cache_complete,
    file_cache_files,
    inspect_pipeline,
)
from keras_bettermodels.timing.report import EpochTiming, TimingReport

__all__ = [
    "CacheComparison",
    "EpochTiming",
    "PipelineInfo",
    "PipelineTiming",
    "TimingReport",
    "advise",
    "compare_cache",
    "compile_time",
    "file_cache_complete",
    "file_cache_files",
    "inspect_pipeline",
    "measure_pipeline",
    "recompiled_epochs",
    "speedup",
    "steady_epoch_time",
    "summarize",
]
