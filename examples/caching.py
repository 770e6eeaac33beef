"""The seed article's caching tip, measured: one pipeline with and without a cache.

The article times `SampleDataset().map(mapped_function)` for 5 epochs, with and
without `.cache()`. Here the same idea runs in two ways on scikit-learn's
digits, with a `map` that sleeps 1 ms per sample to stand in for decoding:

1. `compare_cache` times the pipeline alone (no model), uncached and cached,
   side by side;
2. a small MLP trains on it with `CacheTimingCallback`, uncached and cached;
   each report tells the cache-filling epoch from the cached ones, takes
   compile time out of the first epoch, and gives advice.

Run it from the repository root, on any Keras backend (Keras 3 feeds tf.data to
JAX and PyTorch models too); it needs TensorFlow for tf.data:

    python examples/caching.py
    KERAS_BACKEND=jax python examples/caching.py

`KBM_QUICK=1` uses 320 samples and 3 epochs (the tests use it).
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
from sklearn.datasets import load_digits

try:
    import tensorflow as tf
except ImportError:
    print(
        "This example needs TensorFlow for tf.data: "
        "pip install 'keras-bettermodels[tensorflow]' (docs/input-timing.md times a "
        "keras.utils.PyDataset without TensorFlow)"
    )
    sys.exit(0)

from keras_bettermodels.callbacks.cache_timing import CacheTimingCallback
from keras_bettermodels.timing import compare_cache

QUICK = os.environ.get("KBM_QUICK") == "1"
EPOCHS = 3 if QUICK else 5
SAMPLES = 320 if QUICK else 1797
BATCH_SIZE = 32
SLEEP_PER_SAMPLE = 0.001  # seconds: the "expensive" decoding step

digits = load_digits()
x = (digits.data[:SAMPLES] / 16.0).astype("float32")
y = digits.target[:SAMPLES].astype("int32")


def decode(features):
    time.sleep(SLEEP_PER_SAMPLE * len(features))  # stands in for real decoding
    return features


def slow_map(features, labels):
    features = tf.numpy_function(decode, [features], tf.float32)
    return tf.ensure_shape(features, [None, 64]), labels


def make_pipeline():
    """Batches, then decodes them: the expensive step to cache after."""
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH_SIZE).map(slow_map)


def build_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


print(f"Keras backend: {keras.backend.backend()}")

# 1. The pipeline alone, as in the article.
print(f"\n1. compare_cache: the pipeline alone, {EPOCHS} epochs")
print(compare_cache(make_pipeline, epochs=EPOCHS))

# 2. Training on it, without and with `.cache()` (and with `.prefetch()`).
keras.utils.set_random_seed(0)
for name, dataset in (
    ("uncached", make_pipeline().prefetch(tf.data.AUTOTUNE)),
    ("cached", make_pipeline().cache().prefetch(tf.data.AUTOTUNE)),
):
    print(f"\n2. fit on the {name} pipeline, {EPOCHS} epochs")
    timer = CacheTimingCallback(dataset=dataset, verbose=1)
    build_model().fit(
        dataset, epochs=EPOCHS, verbose=0, shuffle=False, callbacks=[timer]
    )
    print(f"speedup={timer.speedup:.2f} compile_time={timer.compile_time:.3f}s")
