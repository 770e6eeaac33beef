"""TensorBoard support: the event-file writer and, later, the plugins.

TensorBoard imports this package when it loads the plugins, so nothing here may
import Keras, TensorFlow or another backend at import time.
"""
