"""The "Input timing" tab: epoch times, cache speedups and advice per run.

Renders the timing reports that `CacheTimingCallback(log_dir=...)` writes (one
`TimingReport` dict per report, under the plugin name
`metadata.INPUT_TIMING_PLUGIN`): per run, the first epoch split into compile
time and the rest beside a steady epoch (linear from 0), a bar chart of the
epoch times with the cache-filling and recompiled epochs marked (nothing
stacked; logarithmic when the epochs differ over tenfold), the steady-state
speedup, samples per second, whether the input was cached, and the advice.
Every run is drawn on the same scales, so "cached" and "uncached" read at a
glance (the rule: docs/tensorboard.md, "Scales").

TensorBoard finds the plugin through the `tensorboard_plugins` entry point.
Nothing here imports Keras, TensorFlow or a backend.

References:
    TensorFlow, "Better performance with the tf.data API" (caching).
"""

from __future__ import annotations

from keras_bettermodels.tensorboard import metadata
from keras_bettermodels.tensorboard._plugin_base import ReportPlugin

__all__ = ["InputTimingPlugin"]


class InputTimingPlugin(ReportPlugin):
    """TensorBoard's "Input timing" tab.

    Routes, under `/data/plugin/<plugin_name>/`: `index.js` (the frontend),
    `static/<file>`, `reports` (a summary of every run's latest report: cached
    or not, speedup, epoch times) and `report?run=...&tag=...&step=...` (one
    whole report).

    Args:
        context: the `base_plugin.TBContext` TensorBoard passes to plugins.

    Example:

    ```python
    from tensorboard import default, program

    from keras_bettermodels.tensorboard.input_timing_plugin import InputTimingPlugin

    board = program.TensorBoard(plugins=default.get_plugins() + [InputTimingPlugin])
    ```
    """

    plugin_name = metadata.INPUT_TIMING_PLUGIN
    tab_name = "Input timing"
    static_folder = "input_timing"
    headline_fields = (
        "cached",
        "cache",
        "speedup",
        "first_epoch_time",
        "steady_epoch_time",
        "compile_time",
        "samples_per_second",
        "backend",
    )
