"""The tiny digits model the cross-validation, table and HParams tests search."""

from __future__ import annotations

import keras


def build_tiny(hp):
    """Dense(4-16 units) on digits' 64 features, softmax over 10 classes."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
