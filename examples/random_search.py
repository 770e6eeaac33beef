"""The seed article's keras-tuner snippet, with our `RandomSearch` swapped in.

The article writes:

    import kerastuner as kt
    tuner = kt.RandomSearch(model_builder, objective = 'val_accuracy', ...)
    tuner.search(img_train, label_train, epochs = 10,
                 validation_data = (img_test, label_test))
    best_model = tuner.get_best_models(1)[0]

and warns that `get_best_models()` is a shortcut: for the best performance,
retrain the best hyperparameters on the whole data set. Here the same code runs
on scikit-learn's 8x8 digits with `keras_bettermodels.tuners.RandomSearch`,
which does that retrain at the end of `search`. The only changes: the import,
`keras` for `tf.keras`, 8x8 images, `verbose=0` for a short output, and the
project under `runs/`, started afresh each run (`overwrite=True`; leave it out
to resume an interrupted search instead). Both models are then measured on
digits that neither the search nor the retrain saw.

Run it from the repository root, on any Keras backend:

    python examples/random_search.py
    KERAS_BACKEND=jax python examples/random_search.py

`KBM_QUICK=1` runs 2 trials of 2 epochs instead of 10 of 10 (the tests use it).
"""

import os

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_bettermodels import tuners as kt  # was: import kerastuner as kt

QUICK = os.environ.get("KBM_QUICK") == "1"
MAX_TRIALS = 2 if QUICK else 10
EPOCHS = 2 if QUICK else 10

# Digits as 8x8 images scaled to [0, 1]: 1000 to train on, 400 to validate on
# (the article's "test" split), and 397 held out to measure the models.
digits = load_digits()
images = (digits.images / 16.0).astype("float32")
labels = digits.target.astype("int32")
order = np.random.default_rng(0).permutation(len(images))
images, labels = images[order], labels[order]
img_train, label_train = images[:1000], labels[:1000]
img_test, label_test = images[1000:1400], labels[1000:1400]
img_held_out, label_held_out = images[1400:], labels[1400:]


def model_builder(hp):
    model = keras.Sequential()
    model.add(keras.Input(shape=(8, 8)))  # the article: Flatten(input_shape=...)
    model.add(keras.layers.Flatten())
    hp_units = hp.Int("units", min_value=32, max_value=512, step=32)
    model.add(keras.layers.Dense(units=hp_units, activation="relu"))
    model.add(keras.layers.Dense(10))
    hp_learning_rate = hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hp_learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


keras.utils.set_random_seed(0)
tuner = kt.RandomSearch(
    model_builder,
    objective="val_accuracy",
    max_trials=MAX_TRIALS,
    directory=os.path.join("runs", "random_search_starter"),
    project_name="intro_to_kt",
    overwrite=True,
)
tuner.search(
    img_train,
    label_train,
    epochs=EPOCHS,
    validation_data=(img_test, label_test),
    verbose=0,
)
best_model = tuner.get_best_models(1)[0]
best_hyperparameters = tuner.get_best_hyperparameters(1)[0]

# What the article leaves to you, done: the best hyperparameters retrained on
# training + validation data, for the best trial's best epoch count.
retrained = tuner.get_retrained_model()
info = tuner.retrain_info

print(f"Best hyperparameters: {best_hyperparameters.values}")
for name, model in (
    ("get_best_models()[0] (search model, training split only)", best_model),
    ("get_retrained_model() (training + validation data)", retrained),
):
    metrics = model.evaluate(img_held_out, label_held_out, verbose=0, return_dict=True)
    print(f"{name}: held-out accuracy {metrics['accuracy']:.4f}")
print(
    f"The retrained model was retrained on {info.samples} samples "
    f"({info.train_samples} training + {info.validation_samples} validation) "
    f"for {info.epochs} epochs ({info.epochs_source}); saved to {info.model_path}"
)
