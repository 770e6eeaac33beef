"""The retrain's data: training + validation as one, and the callbacks it keeps."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks.early_stopping import EarlyStopping
from keras_bettermodels.tuners import _data


def _arrays(n: int, features: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(n, features)).astype("float32"),
        rng.integers(0, 3, n).astype("int32"),
    )


class TestArrays:
    def test_concatenates_training_then_validation_and_drops_validation_arguments(
        self,
    ):
        (x, y), (xv, yv) = _arrays(30), _arrays(10, seed=1)
        full = _data.plan(
            (x, y),
            {
                "epochs": 4,
                "batch_size": 8,
                "validation_data": (xv, yv),
                "validation_batch_size": 5,
                "validation_freq": 2,
            },
        ).full()
        assert full.kind == "arrays"
        (fx, fy) = full.args
        np.testing.assert_array_equal(fx, np.concatenate([x, xv]))
        np.testing.assert_array_equal(fy, np.concatenate([y, yv]))
        assert full.kwargs == {"epochs": 4, "batch_size": 8}
        assert (full.train_samples, full.validation_samples, full.samples) == (
            30,
            10,
            40,
        )

    def test_keyword_data_stays_keyword(self):
        (x, y), (xv, yv) = _arrays(6), _arrays(2, seed=1)
        full = _data.plan((), {"x": x, "y": y, "validation_data": [xv, yv]}).full()
        assert full.args == ()
        assert full.kwargs["x"].shape == (8, 4) and full.kwargs["y"].shape == (8,)

    def test_multi_input_dicts_are_concatenated_key_by_key(self):
        x = {"a": np.zeros((5, 2)), "b": np.ones((5, 3))}
        xv = {"a": np.full((2, 2), 7.0), "b": np.full((2, 3), 9.0)}
        full = _data.plan(
            (x, np.arange(5)), {"validation_data": (xv, np.arange(2))}
        ).full()
        fx = full.args[0]
        assert fx["a"].shape == (7, 2) and fx["b"].shape == (7, 3)
        assert fx["a"][-1, 0] == 7.0 and fx["b"][-1, 0] == 9.0

    def test_sample_weights_are_concatenated_with_ones_where_missing(self):
        (x, y), (xv, yv) = _arrays(4), _arrays(2, seed=1)
        weights = np.full(4, 3.0, "float32")
        full = _data.plan(
            (x, y), {"sample_weight": weights, "validation_data": (xv, yv)}
        ).full()
        np.testing.assert_array_equal(full.kwargs["sample_weight"], [3, 3, 3, 3, 1, 1])
        full = _data.plan(
            (x, y), {"validation_data": (xv, yv, np.array([5.0, 6.0]))}
        ).full()
        np.testing.assert_array_equal(full.kwargs["sample_weight"], [1, 1, 1, 1, 5, 6])

    def test_backend_tensors_are_concatenated_in_their_own_library(self):
        (x, y), (xv, yv) = _arrays(5), _arrays(3, seed=1)
        tensors = [keras.ops.convert_to_tensor(a) for a in (x, y, xv, yv)]
        full = _data.plan(
            tuple(tensors[:2]), {"validation_data": tuple(tensors[2:])}
        ).full()
        fx, fy = full.args
        assert type(fx) is type(tensors[0])
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(fx), np.concatenate([x, xv])
        )
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(fy), np.concatenate([y, yv])
        )

    def test_mixed_numpy_and_tensor_fall_back_to_numpy(self):
        (x, y), (xv, yv) = _arrays(5), _arrays(3, seed=1)
        full = _data.plan(
            (x, y), {"validation_data": (keras.ops.convert_to_tensor(xv), yv)}
        ).full()
        np.testing.assert_allclose(full.args[0], np.concatenate([x, xv]))

    def test_checking_only_copies_nothing(self):
        (x, y), (xv, yv) = _arrays(30), _arrays(10, seed=1)
        full = _data.plan((x, y), {"validation_data": (xv, yv)}).counted
        assert full.args[0] is x and full.samples == 40

    def test_steps_per_epoch_grows_with_the_added_data(self):
        (x, y), (xv, yv) = _arrays(30), _arrays(10, seed=1)
        full = _data.plan(
            (x, y), {"steps_per_epoch": 3, "validation_data": (xv, yv)}
        ).full()
        assert full.kwargs["steps_per_epoch"] == 4
        assert any("steps_per_epoch" in note for note in full.notes)


class TestValidationSplit:
    def test_the_whole_x_and_y_with_no_split(self):
        x, y = _arrays(40)
        full = _data.plan((x, y), {"validation_split": 0.25}).full()
        assert full.kind == "validation_split"
        assert full.args[0] is x and full.args[1] is y
        assert "validation_split" not in full.kwargs
        # Keras keeps floor(40 * 0.75) = 30 for training.
        assert (full.train_samples, full.validation_samples) == (30, 10)

    def test_validation_data_wins_over_validation_split_as_in_keras(self):
        (x, y), (xv, yv) = _arrays(40), _arrays(10, seed=1)
        full = _data.plan(
            (x, y), {"validation_split": 0.5, "validation_data": (xv, yv)}
        ).full()
        assert full.kind == "arrays" and full.samples == 50


def test_without_validation_data_there_is_only_the_training_data():
    x, y = _arrays(12)
    full = _data.plan((x, y), {"epochs": 2}).full()
    assert full.kind == "training data only"
    assert full.args[0] is x and (full.samples, full.validation_samples) == (12, None)


class TestBadInput:
    @pytest.mark.parametrize(
        ("val_x", "val_y", "name"),
        [
            (np.zeros((3, 5)), np.zeros(3), "x"),
            (np.zeros((3, 4, 1)), np.zeros(3), "x"),
            (np.zeros((3, 4)), np.zeros((3, 3)), "y"),
        ],
    )
    def test_incompatible_shapes_are_a_value_error(self, val_x, val_y, name):
        x, y = _arrays(6)
        with pytest.raises(
            ValueError,
            match=rf"Invalid value for argument `validation_data`\. Expected "
            rf"validation `{name}` with the per-sample shape of the training `{name}`",
        ):
            _data.plan((x, y), {"validation_data": (val_x, val_y)}).full()

    def test_a_different_structure_is_a_value_error(self):
        x = {"a": np.zeros((4, 2)), "b": np.zeros((4, 2))}
        with pytest.raises(ValueError, match="with the structure of the training"):
            _data.plan(
                (x, np.zeros(4)),
                {"validation_data": ({"a": np.zeros((2, 2))}, np.zeros(2))},
            ).full()

    def test_missing_labels_on_one_side_is_a_value_error(self):
        x, y = _arrays(6)
        with pytest.raises(ValueError, match="the validation data has no `y`"):
            _data.plan((x, y), {"validation_data": (x[:2],)}).full()

    def test_error_messages_show_shapes_not_values(self):
        x, y = _arrays(6)
        with pytest.raises(ValueError) as caught:
            _data.plan(
                (x, y), {"validation_data": (np.zeros((3, 5)), np.zeros(3))}
            ).full()
        assert "(3, 5)" in str(caught.value) and "(6, 4)" in str(caught.value)
        assert "0." not in str(caught.value)

    def test_a_generator_cannot_take_validation_data(self):
        x, y = _arrays(6)
        generator = ((x[i : i + 2], y[i : i + 2]) for i in range(0, 6, 2))
        with pytest.raises(
            TypeError,
            match=r"Invalid type for argument `x`\. .*retrain_on_full_data=False",
        ):
            _data.plan((generator,), {"validation_data": (x, y)}).full()

    def test_validation_data_must_be_a_tuple_for_arrays(self):
        x, y = _arrays(6)
        with pytest.raises(
            TypeError, match="Invalid type for argument `validation_data`"
        ):
            _data.plan((x, y), {"validation_data": x}).full()

    def test_too_many_positional_arguments(self):
        with pytest.raises(TypeError, match="at most 16 positional arguments"):
            _data.plan(tuple(range(17)), {}).full()


@pytest.mark.tensorflow_only
class TestDatasets:
    def _datasets(self, n=30, nv=10, features=4, batch=8):
        import tensorflow as tf

        (x, y), (xv, yv) = _arrays(n, features), _arrays(nv, features, seed=1)
        train = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
        val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(batch)
        return train, val, np.concatenate([x, xv])

    def test_datasets_are_concatenated(self):
        train, val, expected = self._datasets()
        full = _data.plan((train,), {"validation_data": val}).full()
        assert full.kind == "dataset" and full.samples is None
        (joined,) = full.args
        seen = np.concatenate([batch_x.numpy() for batch_x, _ in joined])
        np.testing.assert_array_equal(seen, expected)
        assert (full.train_batches, full.validation_batches, full.batches) == (
            4,
            2,
            6,
        )

    def test_incompatible_element_shapes_are_a_value_error(self):
        train, _, _ = self._datasets()
        _, val, _ = self._datasets(features=5)
        with pytest.raises(
            ValueError, match="Invalid value for argument `validation_data`"
        ):
            _data.plan((train,), {"validation_data": val}).full()

    def test_an_infinite_dataset_is_a_value_error(self):
        train, val, _ = self._datasets()
        with pytest.raises(ValueError, match=r"Expected a finite `tf\.data\.Dataset`"):
            _data.plan((train.repeat(),), {"validation_data": val}).full()

    def test_validation_arrays_with_a_dataset_are_a_type_error(self):
        train, _, _ = self._datasets()
        x, y = _arrays(4)
        with pytest.raises(TypeError, match=r"a `tf\.data\.Dataset` when `x` is one"):
            _data.plan((train,), {"validation_data": (x, y)}).full()


class TestCallbacks:
    def test_callbacks_that_read_validation_metrics_are_dropped(self):
        callbacks = [
            keras.callbacks.EarlyStopping(monitor="val_loss"),
            keras.callbacks.EarlyStopping(monitor="loss"),
            EarlyStopping(criterion="GL5"),
            keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy"),
            keras.callbacks.ModelCheckpoint("best.keras", save_best_only=True),
            keras.callbacks.ModelCheckpoint("every.keras"),
            keras.callbacks.History(),
        ]
        kept, dropped = _data.split_callbacks(callbacks)
        assert kept == [callbacks[1], callbacks[5], callbacks[6]]
        assert [_data.describe_callback(c) for c in dropped] == [
            "EarlyStopping(monitor='val_loss')",
            "EarlyStopping(monitor='val_loss')",
            "ReduceLROnPlateau(monitor='val_accuracy')",
            "ModelCheckpoint(monitor='val_loss')",
        ]

    def test_no_callbacks(self):
        assert _data.split_callbacks(None) == ([], [])
