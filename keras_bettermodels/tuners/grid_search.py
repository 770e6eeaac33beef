"""GridSearch that retrains the best hyperparameters on all data."""

from __future__ import annotations

import keras_tuner

from keras_bettermodels.tuners.retrain import RetrainOnFullData

__all__ = ["GridSearch"]


class GridSearch(RetrainOnFullData, keras_tuner.GridSearch):
    """Grid search that retrains the best hyperparameters on all the data.

    A drop-in subclass of `keras_tuner.GridSearch` (every argument, error and
    method keeps its meaning and position) that ends the search with the
    retrain of `RetrainOnFullData`, for the best trial's best epoch count,
    `best_step + 1`.

    Args:
        *args: `keras_tuner.GridSearch`'s: `hypermodel`, `objective`,
            `max_trials`, `seed`, `hyperparameters`, ...
        retrain_on_full_data: whether `search` ends with the retrain.
            Defaults to `True`.
        retrain_epochs: epochs of the retrain; `None` uses the best trial's
            best epoch count. Defaults to `None`.
        **kwargs: the arguments of `keras_tuner.Tuner`.

    Example:

    ```python
    from keras_bettermodels.tuners import GridSearch

    tuner = GridSearch(build, objective="val_accuracy", max_trials=12)
    tuner.search(x_train, y_train, epochs=10, validation_data=(x_val, y_val))
    model = tuner.get_retrained_model()
    ```
    """
