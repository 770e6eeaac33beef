"""Magnitude pruning on Keras 3, the workflow of TensorFlow's pruning guide.

TensorFlow Model Optimization's guide trains a model, wraps it with
`tfmot.sparsity.keras.prune_low_magnitude`, fine-tunes it with the
`UpdatePruningStep` callback, strips the wrappers and compares the
gzip-compressed sizes. That package works only with Keras 2; here is the same
workflow with `keras_bettermodels` on Keras 3, on any backend:

1. train a dense MLP on scikit-learn's digits;
2. prune it to 80% sparsity while fine-tuning (`PolynomialDecay`);
3. check the sparsity layer by layer (`sparsity_report`);
4. strip the wrappers (`strip_pruning`): same predictions, plain Keras layers;
5. compare accuracy and the size of the gzip-compressed weights.

Run it from the repository root, on any Keras backend:

    python examples/pruning.py
    KERAS_BACKEND=jax python examples/pruning.py

`KBM_QUICK=1` trains for a few epochs only (the tests use it).
"""

import gzip
import io
import os

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning import (
    PolynomialDecay,
    prune_low_magnitude,
    sparsity_report,
    strip_pruning,
)

QUICK = os.environ.get("KBM_QUICK") == "1"
EPOCHS, FINE_TUNE_EPOCHS = (4, 2) if QUICK else (30, 10)
BATCH_SIZE = 32

digits = load_digits()
x = (digits.data / 16.0).astype("float32")
y = digits.target.astype("int32")
order = np.random.default_rng(0).permutation(len(x))
x, y = x[order], y[order]
x_train, y_train, x_test, y_test = x[:1200], y[:1200], x[1200:], y[1200:]


def compile_model(model: keras.Model) -> keras.Model:
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def gzipped_size(model: keras.Model) -> int:
    """Bytes of the model's weights, saved with NumPy and gzip-compressed."""
    buffer = io.BytesIO()
    np.savez(buffer, *model.get_weights())
    return len(gzip.compress(buffer.getvalue()))


keras.utils.set_random_seed(0)

# 1. A dense baseline.
model = compile_model(
    keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
)
model.fit(x_train, y_train, epochs=EPOCHS, batch_size=BATCH_SIZE, verbose=0)
_, baseline_accuracy = model.evaluate(x_test, y_test, verbose=0)

# 2. Prune to 80% while fine-tuning: sparsity rises from 0 along a cubic curve
#    over the first 60% of the steps, masks updated every 10 steps. The
#    callback is required: it switches pruning on for the length of `fit`.
steps = FINE_TUNE_EPOCHS * int(np.ceil(len(x_train) / BATCH_SIZE))
end_step = int(0.6 * steps) // 10 * 10
schedule = PolynomialDecay(
    initial_sparsity=0.0,
    final_sparsity=0.8,
    begin_step=0,
    end_step=end_step,
    frequency=10,
)
pruned = compile_model(prune_low_magnitude(model, schedule=schedule))
pruned.fit(
    x_train,
    y_train,
    epochs=FINE_TUNE_EPOCHS,
    batch_size=BATCH_SIZE,
    verbose=0,
    callbacks=[UpdatePruningMasks()],
)

# 3. How sparse is each layer?
print(sparsity_report(pruned))

# 4. Strip the wrappers for export: plain Dense layers with the zeros baked in.
final = strip_pruning(pruned)
same = np.allclose(final.predict(x_test, verbose=0), pruned.predict(x_test, verbose=0))
compile_model(final)
_, pruned_accuracy = final.evaluate(x_test, y_test, verbose=0)

# 5. Accuracy and compressed size.
print(f"baseline test accuracy: {baseline_accuracy:.4f}")
print(f"pruned test accuracy:   {pruned_accuracy:.4f}")
print(f"stripped model predicts the same as the pruned one: {same}")
ratio = gzipped_size(final) / gzipped_size(model)
print(f"gzip-compressed weights: {ratio:.2f}x the size of the baseline's")
print(f"sparsity={sparsity_report(final).sparsity:.3f}")
