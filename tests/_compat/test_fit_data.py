"""`fit_data`: the training data of the running `fit`, read from a callback."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels._compat.fit_data import MAX_SAMPLES, fit_data

pytestmark = pytest.mark.any_backend  # Keras' `fit` frame: the same on each


class _Reads(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        data = fit_data()
        self.batch = None if data is None else data.first_batch()


def _fit(x, y=None, **kwargs):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    reads = _Reads()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[reads], **kwargs)
    return reads.batch


def _arrays(n=40):
    x = np.arange(n * 3, dtype="float32").reshape(n, 3)
    return x, np.arange(n, dtype="float32")


def test_arrays_give_their_first_batch_size_rows_after_the_validation_split():
    x, y = _arrays()
    weights = np.linspace(0, 1, 40).astype("float32")
    bx, by, bw = _fit(x, y, batch_size=8, sample_weight=weights, validation_split=0.5)
    np.testing.assert_array_equal(bx, x[:8])
    np.testing.assert_array_equal(by, y[:8])
    np.testing.assert_array_equal(bw, weights[:8])


def test_without_a_batch_size_keras_default_of_32_and_never_more_than_the_cap():
    x, y = _arrays()
    assert len(_fit(x, y)[0]) == 32
    x, y = _arrays(MAX_SAMPLES + 10)
    assert len(_fit(x, y, batch_size=MAX_SAMPLES + 10)[0]) == MAX_SAMPLES


def test_a_py_dataset_gives_its_first_batch():
    x, y = _arrays()

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 5

        def __getitem__(self, index):
            return x[index * 8 : (index + 1) * 8], y[index * 8 : (index + 1) * 8]

    bx, by, bw = _fit(Batches())
    np.testing.assert_array_equal(bx, x[:8])
    np.testing.assert_array_equal(by, y[:8])
    assert bw is None


def test_a_tf_data_dataset_gives_its_first_batch():
    tf = pytest.importorskip("tensorflow")
    x, y = _arrays()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    bx, by, _ = _fit(dataset)
    np.testing.assert_array_equal(bx, x[:4])
    np.testing.assert_array_equal(by, y[:4])


def test_a_generator_cannot_be_read_twice_and_outside_fit_there_is_nothing():
    x, y = _arrays()

    def batches():
        while True:
            yield x[:8], y[:8]

    assert _fit(batches(), steps_per_epoch=2) is None
    assert fit_data() is None
