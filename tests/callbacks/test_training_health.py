"""TrainingHealth: planted problems are named, healthy models are left alone."""

from __future__ import annotations

import copy
import glob

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks import TrainingHealth
from keras_bettermodels.health.report import HealthReport
from tests.zoo.models import ZOO

FIT = {"verbose": 0, "shuffle": False}


@pytest.fixture(autouse=True)
def restore_dtype_policy():
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


def _data(samples=32, features=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(samples, features)).astype("float32")
    return x, rng.integers(0, classes, samples).astype("int32")


def _classifier(*hidden, float32_output=False):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu", name="first"),
            *hidden,
            keras.layers.Dense(3, name="last"),
            keras.layers.Activation("softmax", dtype="float32"),
        ],
        name="net",
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _found(health):
    return [(f.code, f.layer) for f in health.report().findings]


def test_dead_relu_layer_is_named():
    model = _classifier(
        keras.layers.Dense(
            8,
            activation="relu",
            bias_initializer=keras.initializers.Constant(-10.0),
            name="dead",
        )
    )
    x, y = _data()
    health = TrainingHealth(x, y, every_n_steps=1, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[health], **FIT)
    assert ("dead-units", "net/dead") in _found(health)
    report = health.report()
    assert report.steps == [0, 1]
    dead = next(row for row in report.table() if row.layer == "net/dead")
    assert dead.dead_fraction == 1.0 and dead.grad_norm == 0.0
    assert report.layers == ("net/first", "net/dead", "net/last")
    last = report.table()[-1]  # the layers before the dead one get no gradient
    assert last.update_ratio is not None and last.update_ratio > 0


def test_float16_overflow_names_the_layer_and_not_the_ones_after():
    keras.config.set_dtype_policy("mixed_float16")
    model = _classifier(
        keras.layers.Dense(
            8,
            kernel_initializer=keras.initializers.Constant(1e5),
            name="scale",
        ),
        keras.layers.Dense(8, activation="relu", name="after"),
    )
    x, y = _data()
    health = TrainingHealth(every_n_steps=1, verbose=0)  # samples fit's 1st batch
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[health], **FIT)
    overflow = [f for f in health.report().findings if f.code == "float16-overflow"]
    assert [f.layer for f in overflow] == ["net/scale"]
    assert health.report().policy == "mixed_float16"


def _regression(samples=512, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, 4)).astype("float32")
    w = np.array([1.0, -1.0, 0.5, 2.0], "float32")
    y = (x @ w + noise * rng.normal(size=samples)).astype("float32")[:, None]
    return x, y


def _spiking_fit(on_spike, keep=True):
    """Regression where batch 10's sample weights make its loss 10× the others'.

    Batches of 32 keep the other batches' losses within about 2× of each other.
    `Keep` records the weights after each step; it is not `async_safe`, so
    Keras then runs every batch-end hook on the training thread, right after
    its step. Without it (`keep=False`), on JAX and PyTorch, the losses reach
    `TrainingHealth` on a worker thread, a step or two late.
    """
    x, y = _regression()
    weights = np.ones(512, "float32")
    weights[320:352] = 10.0
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    kept = {}

    class Keep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            kept[batch] = [w.copy() for w in self.model.get_weights()]

    health = TrainingHealth(
        x[:16], y[:16], every_n_steps=1, spike_window=4, on_spike=on_spike, verbose=0
    )
    model.fit(
        x, y, sample_weight=weights, batch_size=32, epochs=1,
        callbacks=[health, Keep()] if keep else [health], **FIT,
    )  # fmt: skip
    return health, kept


def test_loss_spike_at_its_step_and_restore_puts_back_the_weights_before_it():
    health, kept = _spiking_fit("restore")
    spikes = [f for f in health.findings if f.code == "loss-spike"]
    assert [(f.step, f.layer) for f in spikes] == [(10, None)]
    assert health.restored_step == 9
    for after_restore, before_spike in zip(kept[10], kept[9], strict=True):
        np.testing.assert_array_equal(after_restore, before_spike)
    assert len(kept) == 16  # and training went on
    # Alone, the callback is `async_safe`: the spike may be noticed later,
    # and the state put back is one from before it.
    health, _ = _spiking_fit("restore", keep=False)
    spikes = [f for f in health.findings if f.code == "loss-spike"]
    assert [f.step for f in spikes] == [10]
    assert health.restored_step is not None and 0 <= health.restored_step <= 9
    assert len(health.report().steps) == 16


@pytest.mark.any_backend
def test_stop_on_spike():
    health, kept = _spiking_fit("stop")
    assert health.stopped_step == 10 and max(kept) == 10


@pytest.mark.any_backend
def test_warn_on_spike():
    with pytest.warns(RuntimeWarning, match="jumped"):
        health, kept = _spiking_fit("warn")
    assert health.restored_step is None and len(kept) == 16


@pytest.mark.any_backend
def test_a_converged_model_fitted_again_makes_no_spike_but_a_tenfold_batch_does():
    x, y = _regression(noise=0.1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    solution, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    model.set_weights([solution[:4], solution[4]])  # converged: loss ~ 0.01
    health = TrainingHealth(spike_window=4, verbose=0)
    for _ in range(2):
        model.fit(x, y, batch_size=32, epochs=2, callbacks=[health], **FIT)
        assert health.findings == []
    weights = np.ones(len(x), "float32")
    weights[160:192] = 10.0  # batch 5
    with pytest.warns(RuntimeWarning, match="jumped"):
        model.fit(
            x, y, sample_weight=weights, batch_size=32, epochs=1,
            callbacks=[health], **FIT,
        )  # fmt: skip
    assert [(f.code, f.step) for f in health.findings] == [("loss-spike", 5)]


@pytest.mark.parametrize("name", ["multi_input_output", "one_hot_mlp"])
def test_healthy_zoo_models_make_no_finding(name):
    case = ZOO[name]()
    health = TrainingHealth(case.x, case.y, every_n_steps=1, verbose=0)
    case.model.fit(case.x, case.y, batch_size=32, epochs=1, callbacks=[health], **FIT)
    assert health.report().findings == ()
    assert len(health.report().rows) == 2 * len(health.report().layers)


@pytest.mark.any_backend
def test_report_goes_to_tensorboard_and_a_copy_starts_afresh(tmp_path):
    from tensorboard.backend.event_processing.event_file_loader import (
        EventFileLoader,
    )

    from keras_bettermodels.tensorboard import metadata, summary

    model = _classifier()
    x, y = _data()
    health = TrainingHealth(x, y, every_n_steps=1, verbose=0, log_dir=str(tmp_path))
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[health], **FIT)
    summary.close_all()
    documents = [
        summary.read_json(value.tensor)
        for path in glob.glob(str(tmp_path / "events.out.tfevents.*"))
        for event in EventFileLoader(path).Load()
        for value in event.summary.value
        if value.tag == "training_health/report"
        and value.metadata.plugin_data.plugin_name == metadata.TRAINING_HEALTH_PLUGIN
    ]
    assert documents and HealthReport.from_dict(documents[-1]) == health.report()
    clone = copy.deepcopy(health)
    assert clone.every_n_steps == 1 and clone._program is None
    assert clone.log_dir == health.log_dir


@pytest.mark.any_backend
def test_a_generator_without_a_sample_leaves_only_spikes_to_watch(capsys):
    model = _classifier()
    x, y = _data()

    def batches():  # cannot be read twice: no sample to take from it
        while True:
            yield x[:16], y[:16]

    health = TrainingHealth()
    model.fit(batches(), steps_per_epoch=2, epochs=1, callbacks=[health], verbose=0)
    assert health.report().rows == () and "loss spikes only" in capsys.readouterr().out


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every_n_steps": 0}, ValueError, "`every_n_steps`. Expected a positive"),
        ({"on_spike": "raise"}, ValueError, "`on_spike`"),
        ({"spike_factor": 1.0}, ValueError, "`spike_factor`"),
        ({"spike_window": 0}, ValueError, "`spike_window`"),
        ({"x": "data"}, TypeError, "`x`"),
        ({"y": np.zeros(3)}, ValueError, "`x`"),
        ({"log_dir": 3}, TypeError, "`log_dir`"),
        ({"every_n_step": 3}, TypeError, "every_n_steps"),
    ],
)
def test_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainingHealth(**kwargs)
