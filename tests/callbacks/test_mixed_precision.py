"""MixedPrecisionGuard: audit at start, loss-scale watch, rescue of NaN runs."""

from __future__ import annotations

import copy
import math
import threading

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks.mixed_precision import MixedPrecisionGuard
from keras_bettermodels.precision import hardware
from tests.precision._models import (
    Overflow,
    PlantNaN,
    amplified_model,
    data,
    has_nan,
    nan_hiding_model,
    same,
)

STEPS = 8  # 256 samples in batches of 32
FIT = {"batch_size": 32, "verbose": 0, "shuffle": False}
_NO_BATCH_SIZE = {"verbose": 0, "shuffle": False}


@pytest.fixture(autouse=True)
def restore_dtype_policy():
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


def _codes(findings):
    return [finding.code for finding in findings]


def _fit(model, callbacks, epochs=3, x_y=None):
    x, y = x_y or data()
    return model.fit(x, y, epochs=epochs, callbacks=callbacks, **FIT)


_RUNTIME = (
    "skipped-steps",
    "loss-scale-collapse",
    "nonfinite-loss",
    "nonfinite-weights",
)


def _runtime(guard):
    return [f for f in guard.findings if f.code in _RUNTIME]


class TestAudit:
    def test_audits_at_train_begin_and_prints_the_findings(self, capsys):
        keras.config.set_dtype_policy("mixed_float16")
        model, _ = amplified_model(auto_scale_loss=True)
        guard = MixedPrecisionGuard(batch_size=30)
        _fit(model, [guard], epochs=1)
        codes = _codes(guard.findings)
        assert "small-model" in codes and "dims-not-multiple-of-8" in codes
        assert "batch_size=30" in str(guard.findings)
        printed = capsys.readouterr().out
        assert "MixedPrecisionGuard: audit of model" in printed
        assert "[info] small-model:" in printed
        # It says so when this machine gains nothing (a CPU), and only then.
        devices = hardware.detect_devices()
        expected = hardware.hardware_findings("mixed_float16", devices)
        assert [
            f for f in guard.findings if f.code == "hardware-no-speedup"
        ] == expected
        if all(d.platform == "cpu" for d in devices):
            assert "hardware-no-speedup" in printed

    def test_prints_nothing_with_verbose_0(self, capsys):
        keras.config.set_dtype_policy("mixed_float16")
        model, amplify = amplified_model(auto_scale_loss=False)
        guard = MixedPrecisionGuard(verbose=0)
        _fit(model, [guard, Overflow(amplify, 1, 1e5)])
        assert "nonfinite-loss" in _codes(guard.findings)
        assert capsys.readouterr().out == ""

    def test_a_float32_model_has_nothing_to_guard_but_is_still_watched(self):
        model, _ = amplified_model(auto_scale_loss=True)
        guard = MixedPrecisionGuard(verbose=0)
        _fit(model, [guard], epochs=1)
        assert _codes(guard.findings) == ["no-mixed-policy"]
        assert guard.loss_scale_report is None  # no LossScaleOptimizer


class TestPlantedOverflow:
    """float16 activations pushed past 65504 in epoch 2, without loss scaling.

    Without loss scaling nothing skips the step: the NaN gradients reach the
    weights. (With a LossScaleOptimizer the step is skipped and the weights
    survive anyway, so a test there would prove nothing.)
    """

    def test_without_the_guard_the_weights_are_lost(self):
        keras.config.set_dtype_policy("mixed_float16")
        model, amplify = amplified_model(auto_scale_loss=False)
        _fit(model, [Overflow(amplify, 1, 1e5)])
        assert has_nan(model.get_weights())

    def test_restore_brings_back_the_last_good_epoch_and_stops(self, capsys):
        keras.config.set_dtype_policy("mixed_float16")
        model, amplify = amplified_model(
            auto_scale_loss=False, optimizer=keras.optimizers.Adam(1e-3)
        )
        overflow = Overflow(amplify, 1, 1e5)
        guard = MixedPrecisionGuard()
        history = _fit(model, [guard, overflow], epochs=4)
        assert len(history.history["loss"]) == 2
        # Every weight, the planted gain (back to 1) included.
        assert same(model.get_weights(), overflow.weights_at[0])
        optimizer_state = [
            keras.ops.convert_to_numpy(v) for v in model.optimizer.variables
        ]
        assert not has_nan(optimizer_state)
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == STEPS
        assert (guard.nonfinite_epoch, guard.restored_epoch, guard.stopped_epoch) == (
            1,
            0,
            1,
        )
        (finding,) = _runtime(guard)
        assert (finding.code, finding.level) == ("nonfinite-loss", "error")
        assert "at batch 0 in epoch 2" in finding.message
        assert "from the end of epoch 1" in finding.message
        assert "Epoch 2: [error] nonfinite-loss" in capsys.readouterr().out

    def test_an_overflow_in_the_first_epoch_restores_the_initial_weights(self):
        keras.config.set_dtype_policy("mixed_float16")
        model, amplify = amplified_model(auto_scale_loss=False)
        amplify.gain.assign(1e5)
        initial = model.get_weights()
        guard = MixedPrecisionGuard(verbose=0)
        _fit(model, [guard])
        assert same(model.get_weights(), initial)
        assert guard.restored_epoch == -1
        assert "from the start of this fit" in _runtime(guard)[0].message

    def test_nans_in_float32_are_rescued_too(self):
        # Whether the loss goes NaN or not: on an AVX-512 CPU TensorFlow's
        # relu maps the NaN activations to 0 and the loss stays finite while
        # the weights behind it turn NaN; the state watch catches that.
        model, amplify = amplified_model(auto_scale_loss=False)
        overflow = Overflow(amplify, 2, math.nan)
        guard = MixedPrecisionGuard(verbose=0)
        history = _fit(model, [guard, overflow], epochs=4)
        assert len(history.history["loss"]) == 3
        assert same(model.get_weights(), overflow.weights_at[1])
        assert (guard.nonfinite_epoch, guard.restored_epoch) == (2, 1)
        (finding,) = _runtime(guard)
        assert finding.code in ("nonfinite-loss", "nonfinite-weights")

    def test_stop_stops_and_leaves_the_weights_as_they_are(self):
        keras.config.set_dtype_policy("mixed_float16")
        model, amplify = amplified_model(auto_scale_loss=False)
        guard = MixedPrecisionGuard(on_nonfinite="stop", verbose=0)
        history = _fit(model, [guard, Overflow(amplify, 1, 1e5)], epochs=4)
        assert len(history.history["loss"]) == 2 and guard.stopped_epoch == 1
        assert has_nan(model.get_weights()) and guard.restored_epoch is None

    def test_raise_raises_floating_point_error(self):
        keras.config.set_dtype_policy("mixed_float16")
        model, amplify = amplified_model(auto_scale_loss=False)
        guard = MixedPrecisionGuard(on_nonfinite="raise", verbose=0)
        with pytest.raises(
            FloatingPointError, match="loss became nan at batch 0 in epoch 2"
        ):
            _fit(model, [guard, Overflow(amplify, 1, 1e5)], epochs=4)
        assert _codes(_runtime(guard)) == ["nonfinite-loss"]

    def test_warn_warns_once_per_epoch_and_trains_on(self):
        keras.config.set_dtype_policy("mixed_float16")
        model, amplify = amplified_model(auto_scale_loss=False)
        guard = MixedPrecisionGuard(on_nonfinite="warn", verbose=0)
        with pytest.warns(RuntimeWarning, match="loss became nan") as caught:
            history = _fit(model, [guard, Overflow(amplify, 1, 1e5)], epochs=3)
        assert len(history.history["loss"]) == 3
        assert len([w for w in caught if w.category is RuntimeWarning]) == 2
        assert guard.nonfinite_epoch == 1 and guard.stopped_epoch == 0


def _finite(values: list[float]) -> bool:
    return all(math.isfinite(value) for value in values)


def _optimizer_state(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]


class TestStateWatch:
    """NaN weights behind a finite loss, planted the same way on every machine.

    `NanToZero` maps NaN activations to 0 (as TensorFlow's relu does on
    AVX-512 CPUs): the loss stays finite while a weight is NaN.
    """

    @pytest.mark.parametrize(
        "path", ["sequential/first/kernel", "sequential/norm/moving_variance"]
    )
    def test_restore_brings_back_the_last_good_epoch_and_stops(self, path):
        model = nan_hiding_model(keras.optimizers.Adam(1e-3))
        plant = PlantNaN(path, 1)
        guard = MixedPrecisionGuard(verbose=0)
        history = _fit(model, [guard, plant], epochs=4)
        # The loss never showed it; the guard noticed in that epoch.
        assert len(history.history["loss"]) == 2
        assert _finite(history.history["loss"])
        assert (guard.nonfinite_epoch, guard.restored_epoch, guard.stopped_epoch) == (
            1,
            0,
            1,
        )
        assert same(model.get_weights(), plant.weights_at[0])
        assert not has_nan(model.get_weights() + _optimizer_state(model))
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == STEPS
        (finding,) = _runtime(guard)
        assert (finding.code, finding.level) == ("nonfinite-weights", "error")
        assert f"The weight `{path}` became NaN or infinite in epoch 2" in (
            finding.message
        )
        assert "from the end of epoch 1" in finding.message

    def test_under_mixed_float16_too(self):
        keras.config.set_dtype_policy("mixed_float16")
        model = nan_hiding_model()
        plant = PlantNaN("sequential/first/kernel", 1)
        guard = MixedPrecisionGuard(verbose=0)
        history = _fit(model, [guard, plant], epochs=3)
        assert _finite(history.history["loss"]) and len(history.history["loss"]) == 2
        assert same(model.get_weights(), plant.weights_at[0])
        assert _codes(_runtime(guard))[-1] == "nonfinite-weights"
        assert guard.nonfinite_epoch == 1

    def test_stop_stops_and_leaves_the_weights_as_they_are(self):
        model = nan_hiding_model()
        guard = MixedPrecisionGuard(on_nonfinite="stop", verbose=0)
        history = _fit(model, [guard, PlantNaN("sequential/first/kernel", 1)])
        assert len(history.history["loss"]) == 2 and guard.stopped_epoch == 1
        assert has_nan(model.get_weights()) and guard.restored_epoch is None

    def test_a_run_resumed_by_backup_and_restore_restores_its_last_epoch(
        self, tmp_path
    ):
        class Interrupt(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 2:
                    raise RuntimeError("interrupted")

        path = "sequential/first/kernel"
        recorder = PlantNaN(path, epoch=-1)  # plants nothing, keeps the weights
        with pytest.raises(RuntimeError, match="interrupted"):
            _fit(
                nan_hiding_model(),
                [
                    MixedPrecisionGuard(verbose=0),
                    keras.callbacks.BackupAndRestore(str(tmp_path)),
                    recorder,
                    Interrupt(),
                ],
                epochs=4,
            )
        # The resumed fit starts from a fresh model: BackupAndRestore puts back
        # the end of epoch 2 after the guard's `on_train_begin` has run.
        model = nan_hiding_model()
        guard = MixedPrecisionGuard(verbose=0)
        backup = keras.callbacks.BackupAndRestore(str(tmp_path))
        _fit(model, [guard, backup, PlantNaN(path, 2)], epochs=4)
        assert (guard.nonfinite_epoch, guard.restored_epoch) == (2, 1)
        assert same(model.get_weights(), recorder.weights_at[1])

    def test_raise_names_the_variable(self):
        model = nan_hiding_model()
        guard = MixedPrecisionGuard(on_nonfinite="raise", verbose=0)
        with pytest.raises(
            FloatingPointError, match="weight `sequential/norm/moving_variance`"
        ):
            _fit(model, [guard, PlantNaN("sequential/norm/moving_variance", 0)])
        assert _codes(_runtime(guard)) == ["nonfinite-weights"]
        assert guard.nonfinite_epoch == 0

    def test_warn_warns_each_epoch_and_trains_on(self):
        model = nan_hiding_model()
        guard = MixedPrecisionGuard(on_nonfinite="warn", verbose=0)
        with pytest.warns(RuntimeWarning, match="sequential/first/kernel") as caught:
            history = _fit(model, [guard, PlantNaN("sequential/first/kernel", 1)])
        assert len(history.history["loss"]) == 3
        assert len([w for w in caught if w.category is RuntimeWarning]) == 2
        assert guard.nonfinite_epoch == 1 and guard.stopped_epoch == 0

    def test_a_nan_written_after_the_last_epoch_end_is_caught_at_train_end(self):
        class PoisonAfterGuard(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    self.weights = self.model.get_weights()
                    (kernel,) = [
                        v
                        for v in self.model.weights
                        if v.path == "sequential/first/kernel"
                    ]
                    kernel.assign(keras.ops.full(kernel.shape, math.nan))

        model = nan_hiding_model()
        poison = PoisonAfterGuard()
        guard = MixedPrecisionGuard(verbose=0)
        _fit(model, [guard, poison], epochs=2)
        assert same(model.get_weights(), poison.weights)
        assert (guard.nonfinite_epoch, guard.restored_epoch) == (1, 1)
        assert _codes(_runtime(guard)) == ["nonfinite-weights"]

    def test_a_huge_input_overflows_adam_behind_a_finite_loss(self):
        # One input of 1e18 in the last batch: the gradient's square overflows
        # Adam's velocity to infinity; the loss (~1e33) and the weights stay
        # finite, and the weights would never update again.
        x, _ = data(64, 4)
        y = np.zeros((64, 1), "float32")
        x[48] = 1e18
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(
                    1, kernel_initializer=keras.initializers.Constant(0.1)
                ),
            ],
            name="sequential",
        )
        model.compile(keras.optimizers.Adam(1e-3), "mse")
        initial = model.get_weights()
        guard = MixedPrecisionGuard(verbose=0)
        history = model.fit(
            x, y, batch_size=16, epochs=3, callbacks=[guard], **_NO_BATCH_SIZE
        )
        assert len(history.history["loss"]) == 1 and _finite(history.history["loss"])
        (finding,) = _runtime(guard)
        assert finding.code == "nonfinite-weights"
        (velocity,) = [
            v for v in model.optimizer.variables if v.path.endswith("kernel_velocity")
        ]
        assert f"The optimizer variable `{velocity.path}` became" in finding.message
        assert guard.restored_epoch == -1
        assert same(model.get_weights(), initial)
        assert not has_nan(_optimizer_state(model))

    def test_one_state_check_per_epoch_and_one_at_train_end(self, monkeypatch):
        from keras_bettermodels.callbacks import mixed_precision

        calls = []
        check = mixed_precision.first_nonfinite_variable

        def counting(model):
            calls.append(model)
            return check(model)

        monkeypatch.setattr(mixed_precision, "first_nonfinite_variable", counting)
        model = nan_hiding_model()
        _fit(model, [MixedPrecisionGuard(on_nonfinite="stop", verbose=0)])
        assert len(calls) == 4 and all(m is model for m in calls)


class TestLossScaleWatch:
    def test_every_step_overflowing_is_counted_and_the_collapse_reported(self):
        # From epoch 2 on, every step overflows: the LossScaleOptimizer skips
        # all 8 and halves the scale 8 times per epoch: 2**15 -> 2**7 -> 2**-1.
        keras.config.set_dtype_policy("mixed_float16")
        model, amplify = amplified_model(auto_scale_loss=True)
        guard = MixedPrecisionGuard(on_nonfinite="warn", verbose=0)
        with pytest.warns(RuntimeWarning):
            _fit(model, [guard, Overflow(amplify, 1, 1e5)], epochs=3)
        report = guard.loss_scale_report
        assert [check.skipped for check in report.checks] == [0, 0, STEPS, STEPS]
        assert report.skipped_steps == 2 * STEPS and report.steps_run == 3 * STEPS
        assert report.scale == 2.0**-1
        # skipped = steps run - iterations gained: only epoch 1's steps counted.
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == STEPS
        levels = {(f.code, f.level) for f in _runtime(guard)}
        assert ("skipped-steps", "warning") in levels
        assert ("loss-scale-collapse", "error") in levels
        collapse = next(f for f in guard.findings if f.code == "loss-scale-collapse")
        assert "fell below 1 (0.5) in epoch 3" in collapse.message
        # The LossScaleOptimizer skipped the NaN steps: the weights survived.
        assert not has_nan(model.get_weights())

    def test_one_bad_batch_per_epoch_halves_the_scale_each_epoch(self):
        keras.config.set_dtype_policy("mixed_float16")
        model, _ = amplified_model(auto_scale_loss=True)
        x, y = data()
        x[0] = 1e5  # float16 infinity: the first batch of every epoch overflows
        guard = MixedPrecisionGuard(on_nonfinite="warn", verbose=0)
        with pytest.warns(RuntimeWarning):
            _fit(model, [guard], epochs=3, x_y=(x, y))
        report = guard.loss_scale_report
        assert [check.skipped for check in report.checks] == [0, 1, 1, 1]
        assert [check.scale for check in report.checks] == [
            2.0**15,
            2.0**14,
            2.0**13,
            2.0**12,
        ]
        collapse = [f for f in guard.findings if f.code == "loss-scale-collapse"]
        assert [(f.level, "epoch 3" in f.message) for f in collapse] == [
            ("warning", True)
        ]
        # Each epoch skipped a step and lowered the scale, as any run's start
        # does: the skips are infos; the collapse at epoch 3 is the warning
        # (and the non-finite loss the error).
        skipped = [f for f in guard.findings if f.code == "skipped-steps"]
        assert [f.level for f in skipped] == ["info"] * 3
        assert "1 of 8 training steps (12.5%) in epoch 1" in skipped[0].message
        assert "nonfinite-loss" in _codes(guard.findings)

    def test_early_skips_from_a_too_high_scale_are_counted_without_nan_losses(self):
        # Large regression targets: the scaled gradients overflow float16 until
        # the scale has halved enough; the loss itself stays finite.
        keras.config.set_dtype_policy("mixed_float16")
        model = keras.Sequential(
            [
                keras.Input((16,)),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(1, dtype="float32"),
            ]
        )
        model.compile(keras.optimizers.SGD(1e-6), "mse")
        x, _ = data()
        y = np.full((len(x), 1), 3000.0, "float32")
        guard = MixedPrecisionGuard(verbose=0)
        model.fit(x, y, epochs=2, callbacks=[guard], **FIT)
        report = guard.loss_scale_report
        assert report.skipped_steps > 0
        iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        assert iterations + report.skipped_steps == 2 * STEPS
        assert report.scale == 2.0 ** (15 - report.skipped_steps)
        assert "nonfinite-loss" not in _codes(guard.findings)
        assert "skipped-steps" in _codes(guard.findings)


@pytest.mark.filterwarnings(
    "ignore:html5lib.s sanitizer is deprecated:DeprecationWarning"
)
def test_log_dir_gets_scalars_and_findings_for_the_text_tab(tmp_path):
    from tensorboard.backend.event_processing import (
        data_provider,
        plugin_event_multiplexer,
    )
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.text import text_plugin

    from keras_bettermodels.tensorboard import summary

    keras.config.set_dtype_policy("mixed_float16")
    model, amplify = amplified_model(auto_scale_loss=True)
    guard = MixedPrecisionGuard(on_nonfinite="warn", verbose=0, log_dir=tmp_path)
    with pytest.warns(RuntimeWarning):
        _fit(model, [guard, Overflow(amplify, 1, 1e5)], epochs=2)
    summary.close_all()

    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0}).Reload()
    scale = events.Tensors("mixed_precision/loss_scale")
    assert [(e.step, e.tensor_proto.float_val[0]) for e in scale] == [
        (0, 2.0**15),
        (1, 2.0**7),
    ]
    skipped = events.Tensors("mixed_precision/skipped_steps")
    assert [e.tensor_proto.float_val[0] for e in skipped] == [0, STEPS]
    metadata = events.SummaryMetadata("mixed_precision/findings")
    assert metadata.plugin_data.plugin_name == "text"
    assert metadata.data_class == summary_pb2.DATA_CLASS_TENSOR

    # TensorBoard's own Text plugin renders the findings.
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(tmp_path))
    plugin = text_plugin.TextPlugin(
        base_plugin.TBContext(logdir=str(tmp_path), data_provider=provider)
    )
    ctx = plugin_context()
    tags = plugin.index_impl(ctx, experiment="")
    assert set(tags["."]) == {"mixed_precision/audit", "mixed_precision/findings"}
    (audit_text,) = plugin.text_impl(ctx, ".", "mixed_precision/audit", "", True)
    assert "small-model" in audit_text["text"]
    runtime = plugin.text_impl(ctx, ".", "mixed_precision/findings", "", True)
    assert [entry["step"] for entry in runtime] == [1] * len(runtime)
    text = " ".join(entry["text"] for entry in runtime)
    assert "skipped-steps" in text and "nonfinite-loss" in text
    # Probed on fit's first batch (no `x` given): the overflowing layer named.
    assert "float16-overflow" in text and amplify.name in text


def plugin_context():
    from tensorboard import context

    return context.RequestContext()


def test_each_fit_starts_afresh():
    keras.config.set_dtype_policy("mixed_float16")
    model, amplify = amplified_model(auto_scale_loss=False)
    guard = MixedPrecisionGuard(verbose=0)
    _fit(model, [guard, Overflow(amplify, 1, 1e5)])
    assert guard.restored_epoch == 0
    amplify.gain.assign(1.0)
    _fit(model, [guard], epochs=2)
    assert "nonfinite-loss" not in _codes(guard.findings)
    assert (guard.restored_epoch, guard.nonfinite_epoch, guard.stopped_epoch) == (
        None,
        None,
        0,
    )


@pytest.mark.parametrize("on_nonfinite", ["stop", "raise"])
def test_batch_hooks_run_out_of_order_still_name_the_first_nan_batch(on_nonfinite):
    # Keras runs an `async_safe` callback's batch-end hooks on a thread pool:
    # batch 3's hook may run before batch 2's.
    model, _ = amplified_model(auto_scale_loss=False)
    guard = MixedPrecisionGuard(verbose=0, on_nonfinite=on_nonfinite)
    guard.set_model(model)
    guard.on_train_begin()
    guard.on_epoch_begin(0)
    for batch, loss in ((0, 0.5), (3, math.nan), (2, math.nan), (4, math.nan)):
        guard.on_train_batch_end(batch, {"loss": loss})
    guard.on_train_batch_end(1, {"loss": 0.4})
    assert model.stop_training  # at once, whatever the mode
    if on_nonfinite == "raise":
        with pytest.raises(FloatingPointError, match="at batch 2 in epoch 1"):
            guard.on_epoch_end(0, {"loss": math.nan})
    else:
        guard.on_epoch_end(0, {"loss": math.nan})
    (finding,) = _runtime(guard)
    assert "at batch 2 in epoch 1" in finding.message
    assert guard.nonfinite_epoch == 0


def test_a_deep_copy_works_like_the_original():
    # keras-tuner deep-copies the callbacks for every trial.
    keras.config.set_dtype_policy("mixed_float16")
    model, amplify = amplified_model(auto_scale_loss=False)
    guard = copy.deepcopy(MixedPrecisionGuard(verbose=0, batch_size=32))
    assert guard.batch_size == 32
    _fit(model, [guard, Overflow(amplify, 1, 1e5)])
    assert guard.restored_epoch == 0


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX state sync")
def test_on_jax_batch_hooks_never_sync_the_training_state():
    # `Callback.model` syncs the whole JAX state into the model; from Keras'
    # callback thread it would also race the training loop.
    keras.config.set_dtype_policy("mixed_float16")
    model, amplify = amplified_model(auto_scale_loss=False)
    calls = []
    sync = model.jax_state_sync

    def counting_sync():
        calls.append(threading.current_thread() is threading.main_thread())
        sync()

    model.jax_state_sync = counting_sync
    _fit(
        model,
        [
            MixedPrecisionGuard(on_nonfinite="stop", verbose=0),
            Overflow(amplify, 1, 1e5),
        ],
    )
    assert calls and all(calls), "jax_state_sync ran off the main thread"


class TestArguments:
    @pytest.mark.parametrize(
        ("arguments", "error", "match"),
        [
            ({"on_nonfinite": "ignore"}, ValueError, "`on_nonfinite`"),
            ({"batch_size": 0}, ValueError, "`batch_size`"),
            ({"min_params": -5}, ValueError, "`min_params`"),
            ({"verbose": "yes"}, TypeError, "`verbose`"),
            ({"log_dir": 3}, TypeError, "`log_dir`"),
        ],
    )
    def test_bad_arguments_are_refused_in_keras_wording(self, arguments, error, match):
        with pytest.raises(error, match=f"Invalid (value|type) for argument {match}"):
            MixedPrecisionGuard(**arguments)

    def test_keeps_every_argument(self):
        guard = MixedPrecisionGuard(
            on_nonfinite="warn", batch_size=64, min_params=10, verbose=0, log_dir="runs"
        )
        assert (guard.on_nonfinite, guard.batch_size, guard.min_params) == (
            "warn",
            64,
            10,
        )
        assert (guard.verbose, guard.log_dir, guard.findings) == (0, "runs", [])

    def test_arguments_are_keyword_only(self):
        with pytest.raises(TypeError):
            MixedPrecisionGuard("restore")  # type: ignore[misc]


def test_a_model_without_an_input_is_audited_once_it_is_built():
    # TensorFlow builds such a model at its first step, after train begin.
    keras.config.set_dtype_policy("mixed_float16")
    model = keras.Sequential(
        [
            keras.layers.Dense(30, activation="relu"),
            keras.layers.Dense(4),
            keras.layers.Activation("softmax", dtype="float32"),
        ]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    guard = MixedPrecisionGuard(verbose=0)
    _fit(model, [guard], epochs=2)
    assert _codes(guard.findings).count("small-model") == 1
    assert "`dense" in str(
        [f for f in guard.findings if f.code == "dims-not-multiple-of-8"]
    )


@pytest.mark.parametrize("sample", ["given", "fit's first batch"])
def test_overflow_finding_names_the_layer_from_the_sample_batch(sample):
    keras.config.set_dtype_policy("mixed_float16")
    model, amplify = amplified_model(auto_scale_loss=True)
    x, y = data()
    given = {"x": x[:32], "y": y[:32]} if sample == "given" else {}
    guard = MixedPrecisionGuard(on_nonfinite="stop", verbose=0, batch_size=32, **given)
    _fit(model, [Overflow(amplify, 0, 1e6), guard], epochs=1)
    overflow = [f for f in guard.findings if f.code == "float16-overflow"]
    assert len(overflow) == 1 and f"`{amplify.path}`" in overflow[0].message
    assert "nonfinite-loss" in _codes(guard.findings)
