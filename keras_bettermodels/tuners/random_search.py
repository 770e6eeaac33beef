"""RandomSearch that finishes the job: retrains the best hyperparameters on all data."""

from __future__ import annotations

import keras_tuner

from keras_bettermodels.tuners.retrain import RetrainOnFullData

__all__ = ["RandomSearch"]


class RandomSearch(RetrainOnFullData, keras_tuner.RandomSearch):
    """Random search that retrains the best hyperparameters on all the data.

    A drop-in subclass of `keras_tuner.RandomSearch`: every argument, error
    and method keeps its meaning and position. After the search, `search`
    retrains the best hyperparameters once on training + validation data
    (see `RetrainOnFullData`), for the best trial's best epoch count,
    `best_step + 1`.

    Args:
        *args: `keras_tuner.RandomSearch`'s: `hypermodel`, `objective`,
            `max_trials`, `seed`, `hyperparameters`, ...
        retrain_on_full_data: whether `search` ends with the retrain.
            Defaults to `True`.
        retrain_epochs: epochs of the retrain; `None` uses the best trial's
            best epoch count. Defaults to `None`.
        **kwargs: the arguments of `keras_tuner.Tuner`: `directory`,
            `project_name`, `overwrite`, `executions_per_trial`, ...

    Example:

    ```python
    import keras
    from keras_bettermodels.tuners import RandomSearch

    def build(hp):
        model = keras.Sequential([
            keras.layers.Dense(hp.Int("units", 32, 512, step=32), activation="relu"),
            keras.layers.Dense(10),
        ])
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 1e-3])),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model

    tuner = RandomSearch(build, objective="val_accuracy", max_trials=10)
    tuner.search(x_train, y_train, epochs=10, validation_data=(x_val, y_val))
    model = tuner.get_retrained_model()   # trained on x_train + x_val
    print(tuner.retrain_info.samples, tuner.retrain_info.epochs)
    ```

    References:
        James Bergstra and Yoshua Bengio, "Random Search for Hyper-Parameter
        Optimization", Journal of Machine Learning Research 13, 2012.
    """
