"""sensitivity: each layer pruned alone, the metric per sparsity, the weights back."""

from __future__ import annotations

import itertools
import math
import sys

import keras
import numpy as np
import pytest

from keras_bettermodels.pruning import SensitivityReport, magnitude_mask, sensitivity

SPARSITIES = (0.0, 0.5, 0.8, 0.95)


def _compile(model: keras.Model, metrics=("accuracy",)) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=list(metrics),
    )
    return model


def _glorot(model: keras.Model, seed: int) -> keras.Model:
    """Sets Glorot-uniform kernels drawn by NumPy (and zero biases).

    The layers are built with zeros: on JAX, each new shape of a random
    initializer costs a compilation, seconds on a busy machine; and
    `keras.utils.set_random_seed` would import TensorFlow.
    """
    rng = np.random.default_rng(seed)
    weights = []
    for weight in model.get_weights():
        if weight.ndim < 2:
            weights.append(np.zeros_like(weight))
            continue
        fan_in, fan_out = math.prod(weight.shape[:-1]), weight.shape[-1]
        limit = math.sqrt(6 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, weight.shape).astype("float32"))
    model.set_weights(weights)
    return model


def _mlp() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, "relu", kernel_initializer="zeros", name="hidden"),
            keras.layers.Dense(10, kernel_initializer="zeros", name="head"),
        ],
        name="digits_mlp",
    )


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def _assert_same_weights(model: keras.Model, before: list[np.ndarray]) -> None:
    after = model.get_weights()
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(new, old)


@pytest.fixture(scope="module")
def trained(digits):
    """An MLP trained briefly on digits, and 300 held-out samples."""
    x, y = digits
    model = _compile(_glorot(_mlp(), seed=0))
    model.fit(x[:1200], y[:1200], epochs=2, batch_size=64, shuffle=False, verbose=0)
    return model, x[1200:1500], y[1200:1500]


@pytest.fixture(scope="module")
def scanned(trained):
    model, x, y = trained
    before = _weights(model)
    report = sensitivity(model, x, y, sparsities=SPARSITIES, batch_size=300, verbose=0)
    return report, before


def test_zero_sparsity_is_the_evaluated_baseline_and_weights_come_back(
    trained, scanned
):
    model, x, y = trained
    report, before = scanned
    _assert_same_weights(model, before)
    logs = model.evaluate(x, y, batch_size=300, verbose=0, return_dict=True)
    assert report.metric == "accuracy" and report.mode == "max"
    assert report.baseline == logs["accuracy"]
    assert report.layers == ["hidden", "head"]
    assert report.sizes == {"hidden": 64 * 32, "head": 32 * 10}
    for layer in report.layers:
        assert report[layer][0.0] == logs["accuracy"]
    assert report.baseline > 0.85  # trained: pruning it has something to lose


def test_a_trained_model_degrades_with_sparsity(scanned):
    report, _ = scanned
    for layer, row in report.values.items():
        pairs = itertools.pairwise(row)
        assert all(later <= earlier + 0.02 for earlier, later in pairs), layer
        assert row[-1] < row[0], layer
    # Pruning 95% of the hidden layer's kernel costs the most.
    assert report["hidden"][0.95] < report.baseline - 0.1


def test_suggestions_follow_the_tolerance_rule(scanned):
    report, _ = scanned
    for tolerance in (0.0, 0.01, 0.05, 1.0):
        for layer, chosen in report.suggest(tolerance).items():
            within = [
                report.baseline - v <= tolerance * (1 + 1e-6)
                for v in report.values[layer]
            ]
            index = report.sparsities.index(chosen)
            assert all(within[: index + 1])
            assert index + 1 == len(within) or not within[index + 1]
    assert report.suggest(1.0) == {"hidden": 0.95, "head": 0.95}
    assert report.suggested == report.suggest(report.tolerance)


@pytest.mark.any_backend
@pytest.mark.parametrize(
    ("mode", "row", "tolerance", "expected"),
    [
        ("max", (0.90, 0.89, 0.85, 0.50), 0.01, 0.5),  # 0.01 worse: still in
        ("max", (0.90, 0.8899, 0.90, 0.90), 0.01, 0.25),
        ("max", (0.90, 0.88, 0.90, 0.90), 0.01, 0.25),  # a later recovery is not
        ("max", (0.80, 0.90, 0.90, 0.90), 0.01, 0.0),  # none: 0
        ("max", (0.95, 0.95, 0.95, 0.95), 0.0, 0.95),  # better than baseline
        ("min", (1.00, 1.05, 1.20, 3.00), 0.1, 0.5),  # a loss: higher is worse
        ("min", (1.00, math.nan, 1.00, 1.00), 0.1, 0.25),  # NaN is worse
    ],
)
def test_suggestion_rule_on_scripted_values(mode, row, tolerance, expected):
    report = SensitivityReport(
        metric="m",
        mode=mode,
        baseline=0.9 if mode == "max" else 1.0,
        tolerance=tolerance,
        sparsities=(0.25, 0.5, 0.8, 0.95),
        values={"dense": row},
        sizes={"dense": 10},
    )
    assert report.suggested == {"dense": expected}


@pytest.mark.any_backend
def test_report_prints_round_trips_and_plots(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    report = SensitivityReport(
        metric="accuracy",
        mode="max",
        baseline=0.95,
        tolerance=0.01,
        sparsities=(0.5, 0.9),
        values={"hidden": (0.948, 0.80), "head": (0.90, 0.70)},
        sizes={"hidden": 2048, "head": 320},
    )
    lines = str(report).splitlines()
    assert "accuracy (higher is better)" in lines[0] and "0.9500" in lines[0]
    assert lines[1].split() == ["layer", "weights", "50%", "90%", "suggested"]
    assert lines[3].split() == ["hidden", "2048", "0.9480", "0.8000", "50%"]
    assert lines[4].split() == ["head", "320", "0.9000", "0.7000", "0%"]
    data = report.to_dict()
    assert data["suggested"] == {"hidden": 0.5, "head": 0.0}
    assert data["values"]["hidden"] == [0.948, 0.80]
    assert SensitivityReport.from_dict(data) == report
    assert report["head"] == {0.5: 0.90, 0.9: 0.70}
    with pytest.raises(KeyError, match=r"No layer 'x'.*Layers: hidden, head"):
        report["x"]
    with pytest.raises(ValueError, match="Invalid value for argument `tolerance`"):
        report.suggest(-0.1)

    ax = report.plot()
    assert [line.get_label() for line in ax.get_lines()][:3] == [
        "hidden",
        "_child1",
        "head",
    ]  # each layer's line, then its suggestion circled (head's 0%: none)
    ax.figure.savefig(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"needs matplotlib.*pip install matplotlib"):
        report.plot()


def test_the_kernel_evaluated_is_magnitude_pruned_and_comes_back_on_errors(trained):
    model, x, y = trained
    before = _weights(model)
    kernel = model.get_layer("hidden").kernel
    seen = []

    def flaky(y_true, y_pred):
        seen.append(keras.ops.convert_to_numpy(kernel))
        if len(seen) > 2:
            raise RuntimeError("evaluation failed")
        return keras.metrics.sparse_categorical_accuracy(y_true, y_pred)

    with pytest.raises(RuntimeError, match="evaluation failed"):
        sensitivity(model, x, y, sparsities=(0.5, 0.9), metric=flaky, mode="max")
    assert len(seen) == 3  # baseline, 50%, and the failing 90%
    original = before[0]
    np.testing.assert_array_equal(seen[0], original)
    for sparsity, pruned in zip((0.5, 0.9), seen[1:], strict=True):
        mask = keras.ops.convert_to_numpy(magnitude_mask(original, sparsity))
        np.testing.assert_array_equal(pruned, original * mask)  # the wrapper's rule
        assert np.mean(pruned == 0) == pytest.approx(sparsity, abs=1e-3)
    _assert_same_weights(model, before)


def test_an_uncompiled_model_is_scanned_with_a_metric_on_its_predictions(trained):
    model, x, y = trained
    copy = _mlp()  # not `clone_model`, which imports TensorFlow
    copy.set_weights(model.get_weights())
    before = _weights(copy)
    compiled = sensitivity(
        model, x, y, sparsities=(0.5,), batch_size=300, verbose=0
    ).values
    by_name = sensitivity(copy, x, y, sparsities=(0.5,), metric="accuracy", verbose=0)
    assert by_name.metric == "accuracy" and by_name.mode == "max"
    for layer, row in compiled.items():
        assert by_name.values[layer] == pytest.approx(row)
    metric = keras.metrics.SparseCategoricalCrossentropy(from_logits=True)
    by_object = sensitivity(copy, x, y, sparsities=(0.5,), metric=metric, verbose=0)
    assert by_object.mode == "min"  # Keras' crossentropy metric says lower is better
    assert by_object.metric == "sparse_categorical_crossentropy"
    assert float(metric.result()) == 0.0  # left reset
    _assert_same_weights(copy, before)


def test_a_conv_net_with_a_nested_einsum_layer_is_scanned_on_the_loss(digits):
    # The EinsumDense layer is named like the outer head: rows take paths.
    x, y = digits
    images, labels = x[:200].reshape(-1, 8, 8, 1), y[:200]
    inner = keras.Sequential(
        [
            keras.Input((144,)),
            keras.layers.EinsumDense(
                "ab,bc->ac", 16, kernel_initializer="zeros", name="head"
            ),
        ],
        name="inner",
    )
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(
                4, 3, activation="relu", kernel_initializer="zeros", name="conv"
            ),
            keras.layers.Flatten(),
            inner,
            keras.layers.Dense(10, kernel_initializer="zeros", name="head"),
        ],
        name="convnet",
    )
    _compile(_glorot(model, seed=1), metrics=())  # untrained: the kernels matter
    before = _weights(model)
    report = sensitivity(
        model, images, labels, sparsities=(0.0, 0.9), batch_size=200, verbose=0
    )
    assert report.metric == "loss" and report.mode == "min"
    assert report.layers == ["conv", "inner/head", "convnet/head"]
    assert report.sizes == {
        "conv": 3 * 3 * 1 * 4,
        "inner/head": 144 * 16,
        "convnet/head": 16 * 10,
    }
    loss = model.evaluate(images, labels, batch_size=200, verbose=0)
    assert report["conv"][0.0] == pytest.approx(loss, rel=1e-6)
    assert report["conv"][0.9] != report["conv"][0.0]  # pruned, then restored
    _assert_same_weights(model, before)


@pytest.mark.any_backend
def test_the_first_compiled_metric_is_the_default(digits):
    x, y = digits
    model = _compile(
        _mlp(),
        metrics=[
            keras.metrics.SparseTopKCategoricalAccuracy(3, name="top3"),
            "accuracy",
        ],
    )
    report = sensitivity(model, x[:64], y[:64], sparsities=(0.5,), verbose=0)
    assert report.metric == "top3" and report.mode == "max"
    loss = sensitivity(model, x[:64], y[:64], (0.5,), metric="loss", verbose=0)
    assert loss.metric == "loss" and loss.mode == "min"


@pytest.mark.any_backend
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sparsities": [1.0]}, ValueError, r"`sparsities`.*1\.0 is outside \[0, 1\)"),
        ({"sparsities": []}, ValueError, "Invalid value for argument `sparsities`"),
        ({"sparsities": "0.5"}, TypeError, "Invalid type for argument `sparsities`"),
        ({"sparsities": 0.5}, TypeError, "Invalid type for argument `sparsities`"),
        ({"sparsities": ["a"]}, TypeError, "Invalid type for argument `sparsities`"),
        ({"tolerance": -0.1}, ValueError, "`tolerance`. Expected a non-negative"),
        ({"tolerance": "x"}, TypeError, "Invalid type for argument `tolerance`"),
        ({"mode": "up"}, ValueError, '`mode`. Expected "auto", "min" or "max"'),
        ({"batch_size": 0}, ValueError, "`batch_size`. Expected a positive integer"),
        ({"verbose": 2}, ValueError, "Invalid value for argument `verbose`"),
        ({"metric": "no_such_metric"}, ValueError, "Keras knows no metric"),
        (
            {"metric": lambda t, p: p[:, 0], "sparsities": (0.5,)},
            ValueError,
            '`mode`.*Keras cannot tell.*mode="max"',
        ),
    ],
)
def test_argument_errors(kwargs, error, match):
    x, y = np.zeros((8, 64), "float32"), np.zeros(8, "int32")
    model = _compile(_mlp())
    kwargs = {"verbose": 0, **kwargs}
    with pytest.raises(error, match=match):
        sensitivity(model, x, y, **kwargs)


@pytest.mark.any_backend
def test_model_and_metric_errors():
    x, y = np.zeros((8, 64), "float32"), np.zeros(8, "int32")
    with pytest.raises(TypeError, match="Invalid type for argument `model`"):
        sensitivity("model", x, y)
    uncompiled = _mlp()
    with pytest.raises(
        ValueError,
        match=r"`metric`.*when the model is not compiled.*Received: metric=None\. "
        r"Compile the model, or pass `metric=`",
    ):
        sensitivity(uncompiled, x, y)
    with pytest.raises(ValueError, match="Invalid value for argument `y`"):
        sensitivity(uncompiled, x, metric="accuracy")
    nothing = keras.Sequential([keras.Input((64,)), keras.layers.Dropout(0.1)])
    with pytest.raises(ValueError, match="has no layer that can be pruned"):
        sensitivity(nothing, x, y, metric="mae", verbose=0)
