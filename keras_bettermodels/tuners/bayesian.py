"""BayesianOptimization that retrains the best hyperparameters on all data."""

from __future__ import annotations

import keras_tuner

from keras_bettermodels.tuners.retrain import RetrainOnFullData

__all__ = ["BayesianOptimization"]


class BayesianOptimization(RetrainOnFullData, keras_tuner.BayesianOptimization):
    """Bayesian optimization that retrains the best hyperparameters on all the data.

    A drop-in subclass of `keras_tuner.BayesianOptimization` (every argument,
    error and method keeps its meaning and position) that ends the search
    with the retrain of `RetrainOnFullData`, for the best trial's best epoch
    count, `best_step + 1`. Needs scikit-learn and SciPy, as keras-tuner's
    own (both come with keras-bettermodels; `[bayesian]` names them too).

    Args:
        *args: `keras_tuner.BayesianOptimization`'s: `hypermodel`,
            `objective`, `max_trials`, `num_initial_points`, `alpha`, `beta`,
            `seed`, ...
        retrain_on_full_data: whether `search` ends with the retrain.
            Defaults to `True`.
        retrain_epochs: epochs of the retrain; `None` uses the best trial's
            best epoch count. Defaults to `None`.
        **kwargs: the arguments of `keras_tuner.Tuner`.

    Example:

    ```python
    from keras_bettermodels.tuners import BayesianOptimization

    tuner = BayesianOptimization(build, objective="val_accuracy", max_trials=10)
    tuner.search(x_train, y_train, epochs=10, validation_data=(x_val, y_val))
    model = tuner.get_retrained_model()
    ```

    References:
        Jasper Snoek, Hugo Larochelle and Ryan P. Adams, "Practical Bayesian
        Optimization of Machine Learning Algorithms", NeurIPS 2012.
    """
