"""Tuners: keras-tuner's, finished with a retrain on all the data.

`RandomSearch`, `Hyperband`, `BayesianOptimization` and `GridSearch` are
drop-in subclasses of keras-tuner's classes of the same names that retrain
the best hyperparameters on training + validation data after the search;
`RetrainOnFullData` is the mixin they share, for a `keras_tuner.Tuner` of
one's own. Importing this package imports keras-tuner, Keras and the Keras
backend; `BayesianOptimization`'s scikit-learn and SciPy come with the package.
"""

from keras_bettermodels.tuners._results import ResultsTable, one_standard_error
from keras_bettermodels.tuners.bayesian import BayesianOptimization
from keras_bettermodels.tuners.grid_search import GridSearch
from keras_bettermodels.tuners.hyperband import Hyperband
from keras_bettermodels.tuners.random_search import RandomSearch
from keras_bettermodels.tuners.retrain import RetrainInfo, RetrainOnFullData

__all__ = [
    "BayesianOptimization",
    "GridSearch",
    "Hyperband",
    "RandomSearch",
    "ResultsTable",
    "RetrainInfo",
    "RetrainOnFullData",
    "one_standard_error",
]
