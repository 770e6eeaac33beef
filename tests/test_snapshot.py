"""The shared state watch and on-device snapshot (`keras_bettermodels._snapshot`)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_bettermodels._snapshot import (
    NonfiniteVariable,
    Snapshot,
    WeightsCopy,
    first_nonfinite_variable,
    take_weights,
)


def _model(optimizer: object = "adam") -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, name="first"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.Dense(3, name="last"),
        ],
        name="sequential",
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _data(samples: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 6)).astype("float32")
    return x, rng.normal(size=(samples, 3)).astype("float32")


def _trained(epochs: int = 1) -> keras.Model:
    model = _model()
    model.fit(*_data(), epochs=epochs, batch_size=8, verbose=0)
    return model


def _poison(variable: object, value: float = math.nan) -> None:
    array = keras.ops.convert_to_numpy(variable).copy()
    array.reshape(-1)[0] = value
    variable.assign(array)


def _variable(model: keras.Model, path: str) -> object:
    (variable,) = [v for v in model.weights if v.path == path]
    return variable


def _state(model: keras.Model) -> list[np.ndarray]:
    variables = list(model.weights) + list(model.optimizer.variables)
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b, strict=True)
    )


class TestFirstNonfiniteVariable:
    def test_a_finite_model_and_optimizer_give_none(self):
        assert first_nonfinite_variable(_trained()) is None

    def test_an_unbuilt_model_gives_none(self):
        model = keras.Sequential([keras.layers.Dense(2)])
        assert first_nonfinite_variable(model) is None

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
    def test_one_bad_kernel_entry_is_named_by_its_path(self, value):
        model = _trained()
        _poison(_variable(model, "sequential/last/kernel"), value)
        assert first_nonfinite_variable(model) == NonfiniteVariable(
            "sequential/last/kernel", "weight"
        )

    def test_the_largest_finite_values_are_finite(self):
        """Whatever the reduction, entries near float32's maximum do not
        overflow into a false alarm."""
        model = _trained()
        kernel = _variable(model, "sequential/last/kernel")
        huge = np.full(kernel.shape, np.finfo("float32").max, "float32")
        huge[0] *= -1
        kernel.assign(huge)
        assert first_nonfinite_variable(model) is None

    def test_a_non_trainable_moving_variance_is_watched(self):
        model = _trained()
        _poison(_variable(model, "sequential/norm/moving_variance"))
        found = first_nonfinite_variable(model)
        assert found == NonfiniteVariable("sequential/norm/moving_variance", "weight")
        assert str(found) == "weight `sequential/norm/moving_variance`"

    def test_the_first_bad_weight_is_named_when_several_are(self):
        model = _trained()
        _poison(_variable(model, "sequential/last/bias"))
        _poison(_variable(model, "sequential/first/kernel"))
        assert first_nonfinite_variable(model).path == "sequential/first/kernel"

    def test_an_optimizer_slot_is_an_optimizer_variable(self):
        model = _trained()
        (slot,) = [
            v
            for v in model.optimizer.variables
            if "first_kernel" in v.path and "momentum" in v.path
        ]
        _poison(slot, math.inf)
        found = first_nonfinite_variable(model)
        assert found == NonfiniteVariable(slot.path, "optimizer variable")

    def test_weights_come_before_the_optimizer(self):
        model = _trained()
        _poison(model.optimizer.variables[-1])
        _poison(_variable(model, "sequential/last/bias"))
        assert first_nonfinite_variable(model).kind == "weight"

    def test_a_loss_scale_optimizer_scale_is_watched(self):
        model = _model(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()))
        model.fit(*_data(), epochs=1, batch_size=8, verbose=0)
        _poison(model.optimizer.dynamic_scale, math.inf)
        found = first_nonfinite_variable(model)
        assert found is not None and found.kind == "optimizer variable"
        assert found.path == model.optimizer.dynamic_scale.path

    def test_refuses_what_is_not_a_model(self):
        with pytest.raises(TypeError, match="Invalid type for argument `model`"):
            first_nonfinite_variable([1.0])  # type: ignore[arg-type]

    def test_the_check_copies_no_variable_to_the_host(self, monkeypatch):
        # Only the combined scalar crosses to the host when all is finite.
        model = _trained()
        sizes = []
        convert = keras.ops.convert_to_numpy

        def counting(x):
            array = convert(x)
            sizes.append(array.size)
            return array

        monkeypatch.setattr(keras.ops, "convert_to_numpy", counting)
        assert first_nonfinite_variable(model) is None
        assert sizes == [1]
        _poison(_variable(model, "sequential/norm/moving_mean"))
        sizes.clear()
        first_nonfinite_variable(model)
        # The scalar, then one flag per float variable (no weights).
        count = len(model.weights) + len(model.optimizer.variables) - 1  # iterations
        assert sizes == [1, count]


class TestSnapshot:
    def test_restore_brings_back_weights_and_optimizer_state(self):
        model = _trained()
        snapshot = Snapshot.take(model)
        before = _state(model)
        model.fit(*_data(), epochs=2, batch_size=8, verbose=0)
        assert not _equal(_state(model), before)
        snapshot.restore(model)
        assert _equal(_state(model), before)
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4

    def test_the_copy_is_independent_of_later_training(self):
        # On JAX Keras donates the state's buffers to the train step; on
        # PyTorch and TensorFlow variables are updated in place.
        model = _trained()
        snapshot = Snapshot.take(model)
        before = _state(model)
        model.fit(*_data(), epochs=1, batch_size=8, verbose=0)
        for variable in model.weights:
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
        snapshot.restore(model)
        assert _equal(_state(model), before)

    def test_a_nan_planted_after_the_snapshot_is_undone(self):
        model = _trained()
        snapshot = Snapshot.take(model)
        _poison(_variable(model, "sequential/norm/moving_variance"))
        assert first_nonfinite_variable(model) is not None
        snapshot.restore(model)
        assert first_nonfinite_variable(model) is None

    def test_without_optimizer_only_the_weights_come_back(self):
        model = _trained()
        snapshot = Snapshot.take(model, optimizer=False)
        assert not snapshot.has_optimizer_state
        weights = model.get_weights()
        model.fit(*_data(), epochs=1, batch_size=8, verbose=0)
        snapshot.restore(model)
        assert _equal(model.get_weights(), weights)
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 8

    def test_take_builds_the_optimizer_so_its_state_is_kept(self):
        # TensorFlow builds the optimizer at the first step; the snapshot
        # taken before it must still hold the optimizer's (initial) state.
        model = _model()
        snapshot = Snapshot.take(model)
        assert snapshot.has_optimizer_state and model.optimizer.built
        before = _state(model)
        model.fit(*_data(), epochs=1, batch_size=8, verbose=0)
        snapshot.restore(model)
        assert _equal(_state(model), before)

    def test_the_kept_values_stay_off_the_host(self):
        snapshot = Snapshot.take(_trained())
        kept = snapshot._weights + snapshot._optimizer_variables
        assert kept and not any(isinstance(value, np.ndarray) for value in kept)

    def test_a_model_with_other_variables_is_refused(self):
        snapshot = Snapshot.take(_trained())
        other = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
        other.compile("adam", "mse")
        with pytest.raises(ValueError, match="match the snapshot"):
            snapshot.restore(other)

    def test_refuses_what_is_not_a_model(self):
        with pytest.raises(TypeError, match="Invalid type for argument `model`"):
            Snapshot.take("model")  # type: ignore[arg-type]


def test_take_weights_falls_back_to_get_and_set_weights_off_a_keras_model():
    model = _trained()
    assert isinstance(take_weights(model), Snapshot)
    layer = model.get_layer("first")  # has get_weights / set_weights, no optimizer
    kept = take_weights(layer)
    assert isinstance(kept, WeightsCopy) and not kept.has_optimizer_state
    before = [w.copy() for w in layer.get_weights()]
    layer.set_weights([w + 1 for w in before])
    kept.restore(layer)
    assert _equal(layer.get_weights(), before)
    with pytest.raises(TypeError, match="`get_weights` and `set_weights`"):
        take_weights(object())
