"""The "Training health" tab: each run's per-layer statistics and findings.

Renders the reports that `TrainingHealth(log_dir=...)` writes (one
`HealthReport.to_dict()` per epoch, under the plugin name
`metadata.TRAINING_HEALTH_PLUGIN`, tag `training_health/report`): per run, the
latest report's findings on top (code, layer, step, message), a table of the
layers (in forward order) by the ten statistics at a sampled step chosen with
a selector (the latest by default), each cell with a sparkline of that
statistic over the sampled steps, and the loss over the steps with its
spikes marked.

TensorBoard finds the plugin through the `tensorboard_plugins` entry point.
Nothing here imports Keras, TensorFlow or a backend.

References:
    Xavier Glorot, Yoshua Bengio, "Understanding the difficulty of training
    deep feedforward neural networks", AISTATS 2010 (gradients compared layer
    by layer).
"""

from __future__ import annotations

from keras_bettermodels.tensorboard import metadata
from keras_bettermodels.tensorboard._plugin_base import ReportPlugin

__all__ = ["TrainingHealthPlugin"]


class TrainingHealthPlugin(ReportPlugin):
    """TensorBoard's "Training health" tab.

    Routes, under `/data/plugin/<plugin_name>/`: `index.js` (the frontend),
    `static/<file>`, `reports` (a summary of every run's latest report: its
    number of findings and of sampled steps, and the dtype policy) and
    `report?run=...&tag=...&step=...` (one whole report).

    Args:
        context: the `base_plugin.TBContext` TensorBoard passes to plugins.

    Example:

    ```python
    from tensorboard import default, program

    from keras_bettermodels.tensorboard.training_health_plugin import (
        TrainingHealthPlugin,
    )

    board = program.TensorBoard(plugins=default.get_plugins() + [TrainingHealthPlugin])
    ```
    """

    plugin_name = metadata.TRAINING_HEALTH_PLUGIN
    tab_name = "Training health"
    static_folder = "training_health"
    headline_fields = ("num_findings", "num_steps", "policy", "version")
