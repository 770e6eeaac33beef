"""The "Gradient check" tab: each run's gradient-check reports as a table.

Renders the reports that `GradientCheckCallback(log_dir=...)` writes (one
`GradientCheckReport.to_dict()` per check, under the plugin name
`metadata.GRADIENT_CHECK_PLUGIN`): per run, the latest report as the article's
reference table (overall relative error and verdict, a row per variable with
its relative error, verdict and colour band, kinks marked), a step selector for
earlier checks, and the runs side by side.

TensorBoard finds the plugin through the `tensorboard_plugins` entry point.
Nothing here imports Keras, TensorFlow or a backend.

References:
    Andrew Ng, "Improving Deep Neural Networks", week 1: gradient checking.
"""

from __future__ import annotations

from keras_bettermodels.tensorboard import metadata
from keras_bettermodels.tensorboard._plugin_base import ReportPlugin

__all__ = ["GradientCheckPlugin"]


class GradientCheckPlugin(ReportPlugin):
    """TensorBoard's "Gradient check" tab.

    Routes, under `/data/plugin/<plugin_name>/`: `index.js` (the frontend),
    `static/<file>`, `reports` (a summary of every run's latest report: its
    relative error, verdict and whether it passed) and
    `report?run=...&tag=...&step=...` (one whole report).

    Args:
        context: the `base_plugin.TBContext` TensorBoard passes to plugins.

    Example:

    ```python
    from tensorboard import default, program

    from keras_bettermodels.tensorboard.gradient_check_plugin import (
        GradientCheckPlugin,
    )

    board = program.TensorBoard(plugins=default.get_plugins() + [GradientCheckPlugin])
    ```
    """

    plugin_name = metadata.GRADIENT_CHECK_PLUGIN
    tab_name = "Gradient check"
    static_folder = "gradient_check"
    headline_fields = ("relative_error", "verdict", "passed", "method", "backend")
