"""TensorBoard support: the event-file writer and the plugins.

`summary` writes the event files; `gradient_check_plugin` and
`input_timing_plugin` are the "Gradient check" and "Input timing" tabs, which
TensorBoard finds through the `tensorboard_plugins` entry point.

TensorBoard imports this package when it loads the plugins, so nothing here may
import Keras, TensorFlow or another backend at import time.
"""
