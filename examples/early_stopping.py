"""The seed article's early-stopping snippet, with our `EarlyStopping` swapped in.

The article writes:

    import tensorflow as tf
    callback = tf.keras.callbacks.EarlyStopping(monitor='loss', patience=3)
    model = tf.keras.models.Sequential([...])
    model.compile(...)
    model.fit(..., callbacks = [callback])

Here the same code runs on scikit-learn's digits with
`keras_bettermodels.callbacks.EarlyStopping`: first exactly the article's
arguments (Keras' patience rule on the training loss), then Prechelt's GL_5 on
the validation loss, with the best weights restored. Nothing else changes.

Run it from the repository root, on any Keras backend:

    python examples/early_stopping.py
    KERAS_BACKEND=jax python examples/early_stopping.py

`KBM_QUICK=1` caps training at 15 epochs (the tests use it).
"""

import os

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_bettermodels.callbacks import EarlyStopping

EPOCHS = 15 if os.environ.get("KBM_QUICK") == "1" else 100

# Digits scaled to [0, 1]; a small training set so that the model overfits.
digits = load_digits()
x = (digits.data / 16.0).astype("float32")
y = digits.target.astype("int32")
order = np.random.default_rng(0).permutation(len(x))
x, y = x[order], y[order]
x_train, y_train = x[:300], y[:300]
x_val, y_val = x[300:800], y[300:800]


def build_model() -> keras.Model:
    model = keras.models.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


keras.utils.set_random_seed(0)

# 1. The article's callback, unchanged: stop when the training loss has not
#    improved for 3 epochs.
callback = EarlyStopping(monitor="loss", patience=3)
model = build_model()
model.fit(
    x_train,
    y_train,
    validation_data=(x_val, y_val),
    epochs=EPOCHS,
    verbose=0,
    callbacks=[callback],
)
print("monitor='loss', patience=3:")
print(f"  stopped_epoch={callback.stopped_epoch}")  # 0 if it did not stop, as in Keras
print(f"  stopping_reason={callback.stopping_reason}")

# 2. Prechelt's GL_5: stop as soon as the validation loss is more than 5% above
#    its best so far, and keep the weights of the best epoch.
callback = EarlyStopping(criterion="GL5", restore_best_weights=True)
model = build_model()
model.fit(
    x_train,
    y_train,
    validation_data=(x_val, y_val),
    epochs=EPOCHS,
    verbose=0,
    callbacks=[callback],
)
print("criterion='GL5' on val_loss, restore_best_weights=True:")
print(f"  stopped_epoch={callback.stopped_epoch}")
print(f"  stopping_reason={callback.stopping_reason}")
print(f"  best epoch (1-based): {callback.best_epoch + 1}")
