"""The probes (`_probes.py`): on the device, compiled once, every coordinate.

No variable goes through NumPy in a repeated call; nothing is compiled per
direction; the coordinate method probes every coordinate (or a sample of
them) with a progress bar.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.gradient_check import _clone, _probes
from keras_bettermodels.gradient_check.check import check_gradients
from tests.gradient_check import planted
from tests.gradient_check._models import batch, sequential, verdicts_of

BACKEND = keras.backend.backend()


@pytest.mark.skipif(BACKEND == "torch", reason="PyTorch runs the probes eagerly")
def test_nothing_is_compiled_per_direction():
    from keras_bettermodels.gradient_check import _probes

    x, y = batch()
    model = sequential(keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1))
    check_gradients(model, x, y, seed=0, num_directions=1)
    move = _probes._compiled("move", BACKEND)
    compiled = _traces(move)
    report = check_gradients(model, x, y, seed=1, num_directions=6)
    assert report.passed, report
    assert report.num_evaluations == 2 * 6 * (4 + 1) + 1
    assert _traces(move) == compiled


def _traces(function):
    if BACKEND == "jax":
        return function._cache_size()
    return function.experimental_get_tracing_count()


def test_the_probes_keep_theta_and_the_gradient_on_the_device(monkeypatch):
    """No variable goes through NumPy in a repeated call: only scalars do."""
    x, y = batch()
    model = sequential(keras.layers.Dense(40, activation="tanh"), keras.layers.Dense(1))
    check_gradients(model, x, y, seed=0, num_directions=1)
    converted = []
    original = keras.ops.convert_to_numpy

    def watched(value):
        array = original(value)
        converted.append(np.size(array))
        return array

    monkeypatch.setattr(keras.ops, "convert_to_numpy", watched)
    report = check_gradients(model, x, y, seed=1, num_directions=2)
    assert report.passed, report
    # The batch is converted (60 and 12 numbers); no variable is.
    sizes = {int(np.prod(v.shape)) for v in model.weights} - {1}
    assert converted and not sizes & set(converted), (sizes, converted)


def test_the_coordinate_method_checks_every_coordinate_and_locates_the_bug(capsys):
    keras.utils.set_random_seed(6)
    x, y = batch(samples=6, features=3)
    model = sequential(
        planted.ScaledKernelDense(2, activation="tanh", name="scaled"),
        keras.layers.Dense(1, name="after"),
        features=3,
    )
    report = check_gradients(
        model, x, y, method="coordinate", max_coordinates_per_variable=None, seed=0
    )
    assert [v.checked for v in report.variables] == [6, 2, 2, 1]
    # A failing check whose steps were not smooth is looked at again at nudged
    # weights (∇J and J there, then every coordinate): still a bug, so the
    # report is the one at the model's weights.
    assert report.num_evaluations in (2 * 11 + 1, 2 * (2 * 11 + 1) + 1)
    assert report.nudge is None
    assert {n for n, v in verdicts_of(report).items() if v == "bug"} == {
        "m/scaled/kernel"
    }
    assert "coordinate" in capsys.readouterr().out  # the progress bar
    sampled = check_gradients(
        model, x, y, method="coordinate", max_coordinates_per_variable=3, verbose=0
    )
    assert [v.checked for v in sampled.variables] == [3, 2, 2, 1]
    assert capsys.readouterr().out == ""


def test_signs_are_packed_bits_per_shape_and_one_over_the_root_of_the_total():
    shapes = [(3, 4), (5,), (0,)]
    packed, size = _probes.signs(np.random.default_rng(0), shapes)
    assert [(p.dtype, p.size) for p in packed] == [
        (np.uint8, 2),
        (np.uint8, 1),
        (np.uint8, 0),
    ]
    assert size == pytest.approx(1 / np.sqrt(17))
    again, _ = _probes.signs(np.random.default_rng(0), shapes)
    for first, second in zip(packed, again, strict=True):
        np.testing.assert_array_equal(first, second)


def test_the_kernels_move_theta_along_the_signs_the_bits_spell():
    rng = np.random.default_rng(1)
    shapes = [(2, 3), (4,)]
    thetas = [rng.normal(size=shape) for shape in shapes]
    grads = [rng.normal(size=shape) for shape in shapes]
    packed, size = _probes.signs(rng, shapes)
    expected = [
        np.where(np.unpackbits(bits)[: theta.size] == 1, size, -size).reshape(
            theta.shape
        )
        for bits, theta in zip(packed, thetas, strict=True)
    ]
    tensor = keras.ops.convert_to_tensor
    with _clone.float64_scope():
        plus, minus, dot = _probes._compiled("move", BACKEND)(
            tuple(tensor(theta) for theta in thetas),
            tuple(tensor(grad) for grad in grads),
            tuple(tensor(bits) for bits in packed),
            _probes._scalar(size),
            _probes._scalar(1e-3),
        )
        moved = _probes._compiled("set_coordinate", BACKEND)(
            tensor(thetas[0]), _probes._scalar(4, "int64"), _probes._scalar(9.0)
        )
        plus, minus, dot, moved = keras.tree.map_structure(
            keras.ops.convert_to_numpy, (plus, minus, dot, moved)
        )
    for theta, v, up, down in zip(thetas, expected, plus, minus, strict=True):
        np.testing.assert_allclose(up, theta + 1e-3 * v, rtol=1e-12)
        np.testing.assert_allclose(down, theta - 1e-3 * v, rtol=1e-12)
    assert float(dot) == pytest.approx(
        sum(float(np.sum(g * v)) for g, v in zip(grads, expected, strict=True))
    )
    changed = thetas[0].copy()
    changed.flat[4] = 9.0
    np.testing.assert_array_equal(moved, changed)
