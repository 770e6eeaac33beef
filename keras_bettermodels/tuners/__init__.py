"""Tuners: keras-tuner's, finished with a retrain on all the data.

`RandomSearch` is a drop-in subclass of `keras_tuner.RandomSearch` that retrains
the best hyperparameters on training + validation data after the search.
Importing this package imports keras-tuner, Keras and the Keras backend.
"""

from keras_bettermodels.tuners.random_search import RandomSearch, RetrainInfo

__all__ = ["RandomSearch", "RetrainInfo"]
