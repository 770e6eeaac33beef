"""TensorBoard support: the event-file writer and the plugins.

`summary` writes the event files; `gradient_check_plugin`,
`input_timing_plugin` and `training_health_plugin` are the "Gradient check",
"Input timing" and "Training health" tabs, which TensorBoard finds through the
`tensorboard_plugins` entry point.

TensorBoard imports this package when it loads the plugins, so nothing here may
import Keras, TensorFlow or another backend at import time.
"""
