"""CacheTimingCallback in real fits, on every backend.

Keras 3 feeds `tf.data` to JAX and PyTorch models too, so the `tf.data` tests
run on every backend where TensorFlow is importable (they are skipped, with the
reason, where it is not); the PyTorch `DataLoader` test runs on the torch
backend. A `map` that sleeps 5 ms per sample makes reading the data the slow
part; speed assertions are gross effects with wide margins.

On the torch backend the tests run PyTorch with one intra-op thread: its
spinning worker threads, competing with tf.data's on a busy 2-core machine,
make a 10-step epoch of a 10-parameter model take as long as the sleeping map
(measured here: 0.6 s instead of 0.1 s), which would drown the effect measured.
"""

from __future__ import annotations

import json
import statistics
import time

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks.cache_timing import CacheTimingCallback
from keras_bettermodels.tensorboard import metadata, summary
from keras_bettermodels.timing.analysis import TimingReport

SAMPLES = 80
BATCH = 8
STEPS = SAMPLES // BATCH
SLEEP = 0.005  # seconds per sample in the slow map: ~0.4 s per uncached epoch
# The cached / uncached comparison sleeps longer, so that a busy machine's
# hiccups stay small next to the input time it measures.
FIXTURE_SLEEP = 0.008
EPOCHS = 4


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tf():
    return pytest.importorskip(
        "tensorflow", reason="tf.data pipelines need TensorFlow installed"
    )


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def _slow_pipeline(cache=None, *, prefetch=True, sleep=SLEEP):
    """from_tensor_slices -> slow map [-> cache] -> batch [-> prefetch]."""
    tf = _tf()
    x, y = _data()

    def read(features):
        time.sleep(sleep)
        return features

    def slow_map(features, label):
        features = tf.numpy_function(read, [features], tf.float32)
        return tf.ensure_shape(features, [4]), label

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).map(slow_map)
    if cache is not None:
        dataset = dataset.cache(cache)
    dataset = dataset.batch(BATCH)
    return dataset.prefetch(2) if prefetch else dataset


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _fit(data, callbacks, *, model=None, **kwargs):
    """Fits `model` (a new one if `None`, so that its first epoch compiles)."""
    model = model or _model()
    kwargs.setdefault("epochs", EPOCHS)
    if not isinstance(callbacks, list):
        callbacks = [callbacks]
    if isinstance(data, tuple):
        model.fit(*data, verbose=0, callbacks=callbacks, **kwargs)
    else:  # a dataset is shuffled by its pipeline, if at all
        model.fit(data, verbose=0, callbacks=callbacks, shuffle=False, **kwargs)
    return model


@pytest.fixture(scope="module")
def shared_model():
    """One model for the tests that do not look at compile time: fits stay cheap."""
    return _model()


@pytest.fixture(scope="module")
def cached_and_uncached(tmp_path_factory):
    """One fit on a memory-cached pipeline (logging), one on an uncached one."""
    _tf()
    log_dir = tmp_path_factory.mktemp("timing_logs")
    results = {}
    for name, cache in (("cached", ""), ("uncached", None)):
        dataset = _slow_pipeline(cache, sleep=FIXTURE_SLEEP)
        timer = CacheTimingCallback(
            dataset=dataset,
            verbose=0,
            log_dir=str(log_dir) if name == "cached" else None,
        )
        _fit(dataset, timer)
        results[name] = timer
    summary.close_all()
    results["log_dir"] = log_dir
    return results


class TestTfData:
    def test_cached_steady_epochs_are_faster_and_the_report_says_cached(
        self, cached_and_uncached
    ):
        cached, uncached = (
            cached_and_uncached["cached"],
            cached_and_uncached["uncached"],
        )
        # Gross effect: a cached epoch skips ~0.64 s of sleeping.
        assert cached.steady_epoch_time < uncached.steady_epoch_time / 2
        report = cached.report()
        assert report.cached is True and report.cache == "memory"
        assert report.pipeline.cache_position == "after map"
        assert report.speedup > 2
        # On JAX the second epoch often compiles again: reported first, apart.
        working = [line for line in report.advice if "compiled again" not in line]
        assert working[0].startswith("the cache works")

    def test_the_uncached_run_is_told_to_add_cache_after_the_map(
        self, cached_and_uncached
    ):
        report = cached_and_uncached["uncached"].report()
        assert report.cached is False
        assert report.speedup < 2  # near 1, however long compilation took
        # On JAX the second epoch often compiles again: reported first, apart.
        advice = tuple(line for line in report.advice if "compiled again" not in line)
        assert advice == (
            "epoch time does not drop after the first epoch and the pipeline is "
            "not cached: add `.cache()` after the expensive `map`",
        )

    def test_every_epoch_is_timed_with_its_steps_and_samples(self, cached_and_uncached):
        timer = cached_and_uncached["uncached"]
        assert len(timer.epoch_times) == EPOCHS
        for index, epoch in enumerate(timer.epochs):
            assert epoch.epoch == index
            assert epoch.steps == STEPS
            assert epoch.samples == SAMPLES  # the batch size comes from the pipeline
            assert epoch.time >= SAMPLES * FIXTURE_SLEEP * 0.9
            assert 0 <= epoch.time_to_first_step <= epoch.first_step_time <= epoch.time
            assert epoch.validation_time == 0.0
        assert timer.first_epoch_time == timer.epoch_times[0]
        steady = [
            epoch.time
            for epoch in timer.epochs[1:]
            if epoch.epoch not in timer.recompiled_epochs
        ]
        assert timer.steady_epoch_time == pytest.approx(float(np.median(steady)))
        assert timer.samples_per_second == pytest.approx(
            SAMPLES / timer.steady_epoch_time
        )
        assert timer.steps_per_second == pytest.approx(STEPS / timer.steady_epoch_time)

    def test_the_figures_follow_the_definitions(self, cached_and_uncached):
        timer = cached_and_uncached["cached"]
        kept = [
            epoch
            for epoch in timer.epochs
            if epoch.epoch not in timer.recompiled_epochs
        ]
        first_steps = [epoch.first_step_time for epoch in kept]
        last_steps = [epoch.last_step_time for epoch in kept]
        assert timer.steady_epoch_time == pytest.approx(
            float(np.median([epoch.time for epoch in kept[1:]]))
        )
        expected_compile = max(0.0, first_steps[0] - np.median(first_steps[1:]))
        expected_compile += max(0.0, last_steps[0] - np.median(last_steps[1:]))
        assert timer.compile_time == pytest.approx(expected_compile)
        assert timer.speedup == pytest.approx(
            (timer.first_epoch_time - timer.compile_time) / timer.steady_epoch_time
        )
        assert timer.report().epoch_times == timer.epoch_times

    def test_log_dir_holds_scalars_and_the_report(self, cached_and_uncached):
        from tensorboard.backend.event_processing.event_accumulator import (
            EventAccumulator,
        )

        events = EventAccumulator(
            str(cached_and_uncached["log_dir"]), size_guidance={"tensors": 0}
        ).Reload()
        tags = set(events.Tags()["tensors"])
        assert {
            "input_timing/epoch_time",
            "input_timing/samples_per_second",
            "input_timing/steps_per_second",
            "input_timing/first_step_time",
            "input_timing/validation_time",
            "input_timing/report",
        } <= tags
        timer = cached_and_uncached["cached"]
        times = events.Tensors("input_timing/epoch_time")
        assert [event.step for event in times] == list(range(EPOCHS))
        assert [event.tensor_proto.float_val[0] for event in times] == pytest.approx(
            timer.epoch_times, rel=1e-6
        )
        (report_event,) = events.Tensors("input_timing/report")
        assert report_event.step == EPOCHS - 1
        info = events.SummaryMetadata("input_timing/report")
        assert info.plugin_data.plugin_name == metadata.INPUT_TIMING_PLUGIN
        header = metadata.parse_plugin_content(info.plugin_data.content)
        assert header["version"] == metadata.PROTOCOL_VERSION == 1
        document = summary.read_json(report_event.tensor_proto)
        assert document == json.loads(json.dumps(timer.report().to_dict()))
        assert TimingReport.from_dict(document).cached is True

    def test_validation_is_timed_apart_from_training(self, shared_model):
        x, y = _data()
        timer = CacheTimingCallback(batch_size=BATCH, verbose=0)
        walls = []
        outside = keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: walls.append(time.perf_counter()),
            on_epoch_end=lambda epoch, logs: walls.append(
                time.perf_counter() - walls.pop()
            ),
        )
        _fit(
            (x, y),
            [timer, outside],
            model=shared_model,
            epochs=2,
            batch_size=BATCH,
            validation_data=_slow_pipeline(),
        )
        for epoch, wall in zip(timer.epochs, walls, strict=True):
            # Validation sleeps 0.4 s; it is carved out of the epoch's time.
            assert epoch.validation_time >= SAMPLES * SLEEP * 0.9
            assert epoch.time + epoch.validation_time == pytest.approx(wall, abs=0.02)

    def test_a_file_cache_from_an_earlier_run_is_reported_as_reused(
        self, tmp_path, shared_model
    ):
        path = str(tmp_path / "cache")
        first = CacheTimingCallback(dataset=_slow_pipeline(path), verbose=0)
        _fit(_slow_pipeline(path), first, model=shared_model, epochs=1)
        assert first.report().cache_path == path
        assert first.report().cache_reused is False
        assert first.report().cache_partial is False  # one full pass wrote it
        dataset = _slow_pipeline(path)
        second = CacheTimingCallback(dataset=dataset, verbose=0)
        _fit(dataset, second, model=shared_model, epochs=2)
        report = second.report()
        assert report.cache == "file" and report.cache_reused is True
        assert report.advice[0].startswith(
            f"a file cache from an earlier run was reused ({path})"
        )
        # The warm first epoch reads the file: no ~0.4 s of sleeping.
        assert second.first_epoch_time < first.first_epoch_time

    def test_a_cache_left_partly_filled_is_reported(self, shared_model):
        dataset = _slow_pipeline("")
        timer = CacheTimingCallback(dataset=dataset, verbose=0)
        # 6 of 10 batches
        _fit(dataset, timer, model=shared_model, epochs=2, steps_per_epoch=3)
        report = timer.report()
        assert report.cache_partial is True
        assert report.advice[0].startswith(
            "the cache was only partly filled and will be discarded (only 6 "
        )

    def test_a_cache_before_the_slow_map_is_reported(self, shared_model):
        tf = _tf()
        x, y = _data()

        def read(features):
            time.sleep(SLEEP)
            return features

        dataset = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .cache()
            .map(lambda f, y: (tf.numpy_function(read, [f], tf.float32), y))
            .map(lambda f, y: (tf.ensure_shape(f, [4]), y))
            .batch(BATCH)
            .prefetch(2)
        )
        timer = CacheTimingCallback(dataset=dataset, verbose=0)
        _fit(dataset, timer, model=shared_model, epochs=2)
        report = timer.report()
        assert report.pipeline.cache_position == "before map"
        assert any(
            line.startswith("the cache sits before an expensive `map`")
            for line in report.advice
        )

    def test_an_unprefetched_pipeline_is_told_to_prefetch(self, shared_model):
        dataset = _slow_pipeline("", prefetch=False)
        timer = CacheTimingCallback(dataset=dataset, verbose=0)
        _fit(dataset, timer, model=shared_model, epochs=2)
        assert timer.report().prefetched is False
        assert "`.prefetch(tf.data.AUTOTUNE)`" in timer.report().advice[-1]


class TestNumPy:
    def test_numpy_input_with_batch_size(self, shared_model):
        x, y = _data()
        timer = CacheTimingCallback(batch_size=BATCH, verbose=0)
        _fit((x, y), timer, model=shared_model, epochs=3, batch_size=BATCH)
        report = timer.report()
        assert [epoch.steps for epoch in report.epochs] == [STEPS] * 3
        assert report.samples_per_second == pytest.approx(
            SAMPLES / report.steady_epoch_time
        )
        assert report.cached is None and report.pipeline is None
        # Nothing to cache in arrays held in memory (a JAX recompile aside).
        assert [line for line in report.advice if "compiled again" not in line] == []
        # The same instance in a second fit starts afresh.
        _fit((x, y), timer, model=shared_model, epochs=2, batch_size=BATCH)
        assert len(timer.epoch_times) == 2 and len(timer.report().epochs) == 2

    def test_a_last_smaller_batch_is_not_mistaken_for_a_speedup(self):
        """JAX compiles again for it and TensorFlow retraces, in epoch 1 only."""
        # 100 steps an epoch: a busy machine's stall of tens of milliseconds
        # stays small next to an epoch, while a compilation does not.
        x, y = (np.tile(array, (10,) + (1,) * (array.ndim - 1)) for array in _data())
        timer = CacheTimingCallback(verbose=0)
        _fit((x[:-3], y[:-3]), timer, epochs=4, batch_size=BATCH)
        assert timer.epochs[0].steps == 10 * STEPS
        # Without the last step's excess JAX reported ~40x here; arrays in
        # memory gain nothing from one epoch to the next.
        assert timer.speedup < 5

    def test_verbose_0_prints_nothing_and_without_batch_size_only_steps(
        self, capsys, shared_model
    ):
        x, y = _data()
        timer = CacheTimingCallback(verbose=0)
        _fit((x, y), timer, model=shared_model, epochs=2, batch_size=BATCH)
        assert capsys.readouterr().out == ""
        assert timer.samples_per_second is None
        assert timer.steps_per_second is not None
        assert all(epoch.samples is None for epoch in timer.epochs)

    def test_verbose_1_prints_the_report(self, capsys, shared_model):
        x, y = _data()
        timer = CacheTimingCallback(batch_size=BATCH)
        _fit((x, y), timer, model=shared_model, epochs=2, batch_size=BATCH)
        out = capsys.readouterr().out
        assert "Input timing: 2 epoch(s), warm-up 1; pipeline not inspected" in out
        assert "samples/s" in out and "speedup" in out

    def test_before_fit_there_is_nothing_to_report(self):
        timer = CacheTimingCallback()
        assert timer.epoch_times == []
        assert timer.first_epoch_time is None and timer.speedup is None
        assert timer.samples_per_second is None
        assert timer.report().epochs == ()

    def test_batch_end_dispatch_stays_asynchronous(self, shared_model):
        """No batch-end hook: Keras keeps dispatching batch ends off the loop."""
        from keras.src import backend, utils

        timer = CacheTimingCallback()
        assert utils.is_default(timer.on_train_batch_end)
        assert utils.is_default(timer.on_batch_end)
        callbacks = keras.callbacks.CallbackList([timer], model=shared_model)
        assert callbacks._async_train == backend.IS_THREAD_SAFE


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason=f"PyTorch DataLoaders are timed on the torch backend; "
    f"KERAS_BACKEND={keras.backend.backend()}",
)
def test_a_torch_dataloader_is_timed_with_its_batch_size(shared_model):
    import torch

    x, y = _data()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=BATCH,
    )
    timer = CacheTimingCallback(dataset=loader, verbose=0)
    _fit(loader, timer, model=shared_model, epochs=2)
    report = timer.report()
    assert [epoch.steps for epoch in report.epochs] == [STEPS, STEPS]
    assert report.batch_size == BATCH and report.samples_per_second is not None
    assert report.cached is None  # timing only


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        (
            {"dataset": np.zeros((4, 2))},
            TypeError,
            r"Invalid type for argument `dataset`",
        ),
        ({"dataset": [1, 2]}, TypeError, r"a `tf\.data\.Dataset`, a `torch"),
        ({"batch_size": 0}, ValueError, r"`batch_size`\. Expected a positive integer"),
        ({"batch_size": 8.0}, TypeError, r"Invalid type for argument `batch_size`"),
        ({"warmup_epochs": 0}, ValueError, r"Received: warmup_epochs=0"),
        ({"warmup_epochs": True}, TypeError, r"argument `warmup_epochs`"),
        ({"verbose": -1}, ValueError, r"Invalid value for argument `verbose`"),
        ({"log_dir": 3}, TypeError, r"Invalid type for argument `log_dir`"),
    ],
)
def test_bad_arguments(arguments, error, match):
    with pytest.raises(error, match=match):
        CacheTimingCallback(**arguments)


def test_arguments_are_kept_as_attributes(tmp_path):
    timer = CacheTimingCallback(
        batch_size=16, warmup_epochs=2, verbose=0, log_dir=tmp_path
    )
    assert (timer.dataset, timer.batch_size, timer.warmup_epochs, timer.verbose) == (
        None,
        16,
        2,
        0,
    )
    assert timer.log_dir == tmp_path
    with pytest.raises(TypeError, match="positional"):
        CacheTimingCallback(None)  # type: ignore[misc]


class _SlowBatches(keras.utils.PyDataset):
    """Reads a batch in `sleep` seconds; the first read of epoch `slow_epoch`
    (0-based) takes `planted` seconds more: a planted recompilation."""

    def __init__(self, *, sleep=0.02, slow_epoch=None, planted=4.0):
        super().__init__()
        self.x, self.y = _data()
        self.batch_size = BATCH
        self.sleep, self.slow_epoch, self.planted = sleep, slow_epoch, planted
        self.epoch = None  # set by `epoch_hook`
        self.planted_in = None

    def epoch_hook(self):
        def begin(epoch, logs):
            self.epoch = epoch

        return keras.callbacks.LambdaCallback(on_epoch_begin=begin)

    def __len__(self):
        return STEPS

    def __getitem__(self, index):
        planting = self.slow_epoch is not None and self.epoch == self.slow_epoch
        if planting and self.planted_in is None:
            self.planted_in = self.epoch
            time.sleep(self.planted)
        time.sleep(self.sleep)
        rows = slice(index * BATCH, (index + 1) * BATCH)
        return self.x[rows], self.y[rows]


class TestAnyPipeline:
    """A PyDataset, a generator: timed on every backend, no tf.data needed."""

    def test_a_planted_recompile_is_reported_apart_and_left_out_of_speedup(self):
        batches = _SlowBatches(slow_epoch=1)
        timer = CacheTimingCallback(dataset=batches, verbose=0)
        _fit(batches, [timer, batches.epoch_hook()], epochs=3)
        report = timer.report()
        assert batches.planted_in == 1
        assert report.recompiled_epochs == (1,)
        assert timer.recompiled_epochs == (1,)
        assert report.recompile_time > 2.0  # the planted 4 s, gross
        # Steady is the third epoch alone, and the speedup divides by it.
        # Counted in, the planted epoch (>= 4 s more) would have cut the
        # speedup by a third or more. No band around 1: on a loaded CI machine a
        # 10-step epoch can take twice the first one.
        third = timer.epoch_times[2]
        assert report.steady_epoch_time == pytest.approx(third)
        uncompiled_first = report.first_epoch_time - report.compile_time
        assert report.speedup == pytest.approx(uncompiled_first / third)
        counted_in = uncompiled_first / statistics.median(timer.epoch_times[1:])
        assert report.speedup > 1.5 * counted_in
        assert report.advice[0].startswith("epoch(s) 2 compiled again")
        assert report.input_kind == "PyDataset" and report.cached is None
        assert "not a tf.data pipeline (PyDataset)" in str(report)
        assert report.batch_size == BATCH

    def test_an_uncached_pydataset_reads_about_1(self):
        # 1 s of reading an epoch, so that a loaded machine's stalls stay
        # small beside it.
        batches = _SlowBatches(sleep=0.1)
        timer = CacheTimingCallback(dataset=batches, verbose=0)
        _fit(batches, timer, epochs=3)
        assert 0.5 < timer.speedup < 2

    def test_a_generator_is_timed(self, shared_model):
        x, y = _data()

        def batches():
            while True:
                for start in range(0, SAMPLES, BATCH):
                    yield x[start : start + BATCH], y[start : start + BATCH]

        generator = batches()
        timer = CacheTimingCallback(dataset=generator, batch_size=BATCH, verbose=0)
        _fit(generator, timer, model=shared_model, epochs=2, steps_per_epoch=STEPS)
        report = timer.report()
        assert [epoch.steps for epoch in report.epochs] == [STEPS, STEPS]
        assert report.input_kind == "generator" and report.pipeline is None
        assert report.samples_per_second is not None
        assert "not a tf.data pipeline (generator)" in str(report)

    def test_it_runs_without_tensorflow(self):
        """TensorFlow blocked: import, fit on a PyDataset, report."""
        import os
        import subprocess
        import sys

        backend = keras.backend.backend()
        if backend == "tensorflow":
            pytest.skip("the TensorFlow backend needs TensorFlow")
        code = (
            # As if not installed: `import` fails, `find_spec` answers None.
            "import sys\n"
            "sys.modules['tensorflow'] = None\n"
            "import keras, numpy as np\n"
            "from keras_bettermodels.callbacks import CacheTimingCallback\n"
            "class B(keras.utils.PyDataset):\n"
            "    def __len__(self): return 2\n"
            "    def __getitem__(self, i):\n"
            "        return np.zeros((4, 3), 'float32'), np.zeros((4,), 'int32')\n"
            "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\n"
            "model.compile('sgd', 'sparse_categorical_crossentropy')\n"
            "timer = CacheTimingCallback(dataset=B(), batch_size=4, verbose=0)\n"
            "model.fit(B(), epochs=2, verbose=0, callbacks=[timer])\n"
            "print(timer.report().input_kind, len(timer.epochs))\n"
            "assert sys.modules['tensorflow'] is None\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "KERAS_BACKEND": backend},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split()[-2:] == ["PyDataset", "2"]


@pytest.mark.parametrize("array", [np.zeros((1797, 64), "float32")])
def test_an_array_dataset_names_the_argument_and_suggests_batch_size(array):
    with pytest.raises(TypeError) as raised:
        CacheTimingCallback(dataset=array)
    message = str(raised.value)
    assert message.startswith("Invalid type for argument `dataset`.")
    assert "Received: dataset=ndarray(shape=(1797, 64), dtype=float32)" in message
    assert "pass `batch_size=`" in message
    assert "0., 0." not in message and len(message) < 400


# Training that waits on the device -------------------------------------------

# Samples of the fits below: 160 train (20 steps of BATCH), 40 validate (5 steps).
DEVICE_SAMPLES = 200
DEVICE_SPLIT = 0.2
DEVICE_STEPS = 20
DEVICE_VALIDATION_STEPS = 5


class _SlowInTraining(keras.layers.Layer):
    """Planted device work in every training step and none in validation.

    In training it multiplies a (`size`, `size`) matrix by itself `matmuls`
    times (tens of milliseconds on a CPU) and adds the result, times zero, to
    its input. The work runs on the device, inside the compiled step: on JAX
    the host dispatches the steps and moves on before they have run, as on a
    GPU, whatever the machine. Validation (`training=False`) skips it.
    """

    def __init__(self, size=384, matmuls=8, **kwargs):
        super().__init__(**kwargs)
        self.size, self.matmuls = size, matmuls

    def build(self, input_shape):
        self.matrix = self.add_weight(
            shape=(self.size, self.size),
            initializer=keras.initializers.RandomNormal(stddev=self.size**-0.5),
            trainable=False,
        )

    def call(self, inputs, training=False):
        if not training:
            return inputs
        product = self.matrix
        for _ in range(self.matmuls):
            product = keras.ops.tanh(keras.ops.matmul(product, self.matrix))
        work = keras.ops.stop_gradient(keras.ops.mean(product))
        return inputs + 0.0 * work


def _slow_training_model():
    model = keras.Sequential(
        [keras.Input((4,)), _SlowInTraining(), keras.layers.Dense(2)]
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _device_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(DEVICE_SAMPLES, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


class _Batches(keras.utils.PyDataset):
    """`x`, `y` in batches of BATCH, read from memory."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, BATCH

    def __len__(self):
        return -(-len(self.x) // BATCH)

    def __getitem__(self, index):
        rows = slice(index * BATCH, (index + 1) * BATCH)
        return self.x[rows], self.y[rows]


def _batches_forever(x, y):
    while True:
        for start in range(0, len(x), BATCH):
            yield x[start : start + BATCH], y[start : start + BATCH]


def _torch_loader(x, y):
    import torch

    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=BATCH,
    )


INPUT_KINDS = ["arrays", "PyDataset", "generator", "DataLoader"]


def _fit_with_validation(kind, callbacks, *, model=None, epochs=4, validation=True):
    """Fits the slow-training model on `kind` of input, validating on the last
    fifth of the data (`validation_split` for arrays)."""
    if kind == "DataLoader" and keras.backend.backend() != "torch":
        pytest.skip(
            f"PyTorch DataLoaders are fed on the torch backend; "
            f"KERAS_BACKEND={keras.backend.backend()}"
        )
    model = model or _slow_training_model()
    x, y = _device_data()
    split = int(DEVICE_SAMPLES * (1 - DEVICE_SPLIT))
    kwargs = {"epochs": epochs, "verbose": 0, "callbacks": callbacks}
    if kind == "arrays":
        if validation:
            kwargs["validation_split"] = DEVICE_SPLIT
        else:
            x, y = x[:split], y[:split]
        model.fit(x, y, batch_size=BATCH, shuffle=False, **kwargs)
        return model
    train, test = (x[:split], y[:split]), (x[split:], y[split:])
    if kind == "PyDataset":
        data, validation_data = _Batches(*train), _Batches(*test)
    elif kind == "DataLoader":
        data, validation_data = _torch_loader(*train), _torch_loader(*test)
    else:
        data, validation_data = _batches_forever(*train), _batches_forever(*test)
        kwargs["steps_per_epoch"] = DEVICE_STEPS
        if validation:
            kwargs["validation_steps"] = DEVICE_VALIDATION_STEPS
    if validation:
        kwargs["validation_data"] = validation_data
    model.fit(data, shuffle=False, **kwargs)
    return model


class TestDeviceWork:
    """Training steps' device work is booked to training, validation's to
    validation, on every backend; on JAX the steps run asynchronously."""

    @pytest.mark.parametrize("kind", INPUT_KINDS)
    def test_training_is_booked_to_training_and_uncached_inputs_read_about_1(
        self, kind
    ):
        timer = CacheTimingCallback(batch_size=BATCH, verbose=0)
        model = _fit_with_validation(kind, [timer])
        report = timer.report()
        assert [epoch.steps for epoch in timer.epochs] == [DEVICE_STEPS] * 4
        for epoch in timer.epochs[1:]:  # epoch 1 compiles the validation step
            # Training does the planted work, validation none of it: on JAX,
            # without the wait, the first validation step absorbed it all.
            assert epoch.validation_time < epoch.time / 2, str(report)
        # Nothing is cached: the first epoch, less its compilation, is a
        # steady one.
        if not 0.5 < timer.speedup < 2:
            # A busy machine can stretch one epoch twofold; it does not do
            # so twice. One more fit, of the compiled model, decides.
            retry = CacheTimingCallback(batch_size=BATCH, verbose=0)
            _fit_with_validation(kind, [retry], model=model)
            assert 0.5 < retry.speedup < 2, f"{report}\n{retry.report()}"
        assert timer.sync_time == pytest.approx(report.sync_time)
        assert report.sync_time == pytest.approx(
            sum(epoch.sync_time for epoch in timer.epochs)
        )
        assert "waited for the device" in str(report)

    def test_training_time_agrees_with_an_outside_clock(self):
        """The outside clock: epochs of the same fit without validation, where
        Keras itself waits for the last step's metrics at the epoch's end."""
        model = _slow_training_model()
        walls = []
        outside = keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: walls.append(time.perf_counter()),
            on_epoch_end=lambda epoch, logs: walls.append(
                time.perf_counter() - walls.pop()
            ),
        )
        _fit_with_validation(
            "arrays", [outside], model=model, epochs=4, validation=False
        )
        timer = CacheTimingCallback(batch_size=BATCH, verbose=0)
        _fit_with_validation("arrays", [timer], model=model, epochs=4)
        outside_epoch = statistics.median(walls[1:])
        ratio = timer.steady_epoch_time / outside_epoch
        # Gross: without the wait JAX booked the milliseconds the host took
        # to dispatch the steps, 0.04x the outside clock.
        assert 0.5 < ratio < 3, (walls, str(timer.report()))
        if keras.backend.backend() == "jax":
            # The host reached validation before the device ran the steps.
            assert timer.sync_time > 0
