"""The seed article's caching experiment, the callback against an outside clock,
and the callback's overhead on `fit`.

1. The article's experiment (the tf.data guide's `ArtificialDataset`): a
   generator dataset that sleeps 30 ms on "file open" and 15 ms per sample
   read, two of them interleaved, then a mapped function that sleeps 30 ms per
   sample; 5 epochs, iterated without a model. Timed uncached, with `.cache()`
   (memory), with `.cache(filename)` from an empty file (cold) and with
   `.cache(filename)` finding the file an earlier run left (warm). Over 5
   epochs a cold cache gains at most 5x in total (the first epoch still
   pays); the article's 8.9x needs a warm file cache.

2. `CacheTimingCallback.speedup` against an outside clock: a fresh model fits
   5 epochs on a digits pipeline with a slow `map` (1 ms per sample), cached and
   uncached, and reports its speedup, with compile time taken out of the first
   epoch. The outside clock times the same fit on a model whose train function
   was compiled beforehand (so no epoch compiles) with a `LambdaCallback`:
   first epoch over the median later epoch. Goal: within 10 %.

3. The callback's overhead on `fit`: NumPy digits, a small MLP, 10 epochs of
   57 steps, with and without the callback, alternating over several rounds;
   medians compared side by side. Plus the per-step hook alone, in ns.

4. Asynchronous steps (issue 24): NumPy arrays with `validation_split=0.1`,
   a 1M-parameter MLP and a small convnet, 8 steps of 256 an epoch. Per epoch
   the callback's training and validation seconds and its wait for the
   device; its steady training epoch against an outside clock (the same
   compiled model fitting the same 90 % without validation, where Keras
   itself waits for the epoch's metrics at its end); and what the wait costs:
   whole fits with validation, with and without the callback, alternating.
   On JAX every step is dispatched asynchronously; before the wait the
   training steps' work showed up in the first validation step.

Run from the repository root, on any Keras backend (TensorFlow must be
installed for parts 1 and 2); name parts to run only those:

    python benchmarks/caching.py
    KERAS_BACKEND=jax python benchmarks/caching.py
    KERAS_BACKEND=jax python benchmarks/caching.py 4

Timings are noisy on a busy machine: read the ratios, not the digits. On the
torch backend, on a machine with 4 cores or fewer, PyTorch runs one intra-op
thread (both sides of every comparison alike).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_bettermodels.callbacks.cache_timing import CacheTimingCallback
from keras_bettermodels.timing import compare_cache

ARTICLE_EPOCHS = 5
FIT_EPOCHS = 5
SLOW_MAP_SLEEP = 0.001  # seconds per sample
BATCH_SIZE = 32
OVERHEAD_EPOCHS = 10
OVERHEAD_ROUNDS = 7
CLOCK_ROUNDS = 3
HOOK_CALLS = 100_000
HOOK_REPEATS = 5
ASYNC_SAMPLES = 2000
ASYNC_BATCH = 256
ASYNC_EPOCHS = 4
ASYNC_ROUNDS = 3


# 1. The article's experiment ------------------------------------------------


def article_dataset():
    """`range(2).interleave(ArtificialDataset).map(mapped_function)`: the guide's."""
    import tensorflow as tf

    def generator(num_samples):
        time.sleep(0.03)  # opening the file
        for sample_index in range(num_samples):
            time.sleep(0.015)  # reading a record
            yield (sample_index,)

    def artificial_dataset(_):
        return tf.data.Dataset.from_generator(
            generator,
            output_signature=tf.TensorSpec(shape=(1,), dtype=tf.int64),
            args=(3,),
        )

    def mapped_function(sample):
        tf.py_function(lambda: time.sleep(0.03), [], ())  # hard pre-processing
        return sample

    return tf.data.Dataset.range(2).interleave(artificial_dataset).map(mapped_function)


def article_experiment() -> None:
    print(f"== 1. The article's experiment: {ARTICLE_EPOCHS} epochs, no model")
    memory = compare_cache(article_dataset, epochs=ARTICLE_EPOCHS)
    with tempfile.TemporaryDirectory() as directory:
        files = compare_cache(
            article_dataset, epochs=ARTICLE_EPOCHS, cache_to=directory
        )
        left = os.listdir(directory)
    assert files.warm is not None
    rows = [
        ("uncached", files.uncached, 1.0),
        (".cache() (memory)", memory.cached, memory.speedup),
        (".cache(filename), cold", files.cached, files.speedup),
        (".cache(filename), warm", files.warm, files.warm_speedup),
    ]
    print(
        f"{'pipeline':<26} {'total s':>8} {'first s':>8} {'steady s':>9} {'speedup':>8}"
    )
    for name, timing, ratio in rows:
        print(
            f"{name:<26} {timing.total_time:>8.4f} {timing.first_epoch_time:>8.4f} "
            f"{timing.steady_epoch_time:>9.4f} {ratio:>7.2f}x"
        )
    print(
        f"memory uncached total (its own run): {memory.uncached.total_time:.4f} s; "
        f"steady-state epoch ratio: memory {memory.steady_speedup:.1f}x, "
        f"file {files.steady_speedup:.1f}x"
    )
    print(
        f"cold bound over {ARTICLE_EPOCHS} epochs: {ARTICLE_EPOCHS}x "
        f"(memory reached {memory.speedup / ARTICLE_EPOCHS:.0%} of it, file "
        f"{files.speedup / ARTICLE_EPOCHS:.0%}); warm file cache "
        f"{files.warm_speedup:.1f}x (goal >= 8x; the article: 1.6306 s / 0.1832 s "
        f"= 8.9x); cache files left behind: {left}"
    )


# 2. The callback against an outside clock -----------------------------------


def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y.astype("int32")


def build_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def digits_pipeline(cached: bool, slow: bool = True):
    import tensorflow as tf

    x, y = digits()

    def decode(features):
        time.sleep(SLOW_MAP_SLEEP * len(features))
        return features

    def slow_map(features, labels):
        features = tf.numpy_function(decode, [features], tf.float32)
        return tf.ensure_shape(features, [None, 64]), labels

    # Batched before the slow map, so that the sleep is one call per batch.
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH_SIZE)
    if slow:
        dataset = dataset.map(slow_map)
    if cached:
        dataset = dataset.cache()
    return dataset.prefetch(2)


def outside_clock(cached: bool) -> float:
    """First epoch over the median later epoch, on a model compiled beforehand."""
    model = build_model()
    model.fit(digits_pipeline(cached=False, slow=False), epochs=1, verbose=0)
    walls: list[float] = []
    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: walls.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: walls.append(
            time.perf_counter() - walls.pop()
        ),
    )
    model.fit(digits_pipeline(cached), epochs=FIT_EPOCHS, verbose=0, callbacks=[clock])
    return walls[0] / statistics.median(walls[1:])


def callback_speedup(cached: bool) -> tuple[float, float, int]:
    dataset = digits_pipeline(cached)
    timer = CacheTimingCallback(dataset=dataset, verbose=0)
    build_model().fit(dataset, epochs=FIT_EPOCHS, verbose=0, callbacks=[timer])
    assert timer.speedup is not None and timer.compile_time is not None
    return timer.speedup, timer.compile_time, len(timer.recompiled_epochs)


def callback_against_outside_clock() -> None:
    print(
        f"\n== 2. CacheTimingCallback.speedup against an outside clock "
        f"({FIT_EPOCHS} epochs, digits, {SLOW_MAP_SLEEP * 1000:.0f} ms/sample map, "
        f"median of {CLOCK_ROUNDS} alternating rounds)"
    )
    print(
        f"{'pipeline':<10} {'callback':>9} {'compile s':>10} {'outside':>8} "
        f"{'diff':>7} {'recompiled':>10}   rounds (callback / outside)"
    )
    for cached in (True, False):
        ours, compiled, truth, recompiled = [], [], [], 0
        for _ in range(CLOCK_ROUNDS):
            speedup, compile_time, again = callback_speedup(cached)
            ours.append(speedup)
            compiled.append(compile_time)
            recompiled += again
            truth.append(outside_clock(cached))
        median_ours, median_truth = statistics.median(ours), statistics.median(truth)
        rounds = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(ours, truth, strict=True))
        print(
            f"{'cached' if cached else 'uncached':<10} {median_ours:>8.2f}x "
            f"{statistics.median(compiled):>10.3f} {median_truth:>7.2f}x "
            f"{median_ours / median_truth - 1:>+7.1%} {recompiled:>10}   {rounds}"
        )


# 3. Overhead on fit ---------------------------------------------------------


def overhead() -> None:
    x, y = digits()
    model = build_model()
    initial = model.get_weights()

    def fit(callbacks: list[keras.callbacks.Callback]) -> tuple[float, float]:
        """Wall and CPU seconds of one fit (CPU time: less swayed by other load)."""
        model.set_weights(initial)
        start, cpu_start = time.perf_counter(), time.process_time()
        model.fit(
            x,
            y,
            epochs=OVERHEAD_EPOCHS,
            batch_size=BATCH_SIZE,
            verbose=0,
            callbacks=callbacks,
        )
        return time.perf_counter() - start, time.process_time() - cpu_start

    fit([])  # compiles outside the timings
    times: dict[str, list[float]] = {"without": [], "with": []}
    cpu: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(OVERHEAD_ROUNDS):
        for name, callbacks in (
            ("without", []),
            ("with", [CacheTimingCallback(batch_size=BATCH_SIZE, verbose=0)]),
        ):
            wall, cpu_seconds = fit(callbacks)
            times[name].append(wall)
            cpu[name].append(cpu_seconds)
    steps_per_epoch = -(-len(x) // BATCH_SIZE)
    steps = OVERHEAD_EPOCHS * steps_per_epoch
    print(
        f"\n== 3. Overhead on fit: {OVERHEAD_EPOCHS} epochs x {steps_per_epoch} "
        f"steps, {OVERHEAD_ROUNDS} alternating rounds"
    )
    for name, seconds, pick in (
        ("wall median", times, statistics.median),
        ("wall min", times, min),
        ("CPU median", cpu, statistics.median),
    ):
        without, with_ = pick(seconds["without"]), pick(seconds["with"])
        print(
            f"{name:<12} without callback {without:.3f} s, with {with_:.3f} s: "
            f"{with_ / without - 1:+.2%}"
        )
    spread = max(times["without"]) / min(times["without"]) - 1
    print(f"spread of the runs without the callback (max / min - 1): {spread:.0%}")

    # The per-step hook alone, through Keras' CallbackList: the best of
    # several repeats, which a busy machine cannot make faster than it is.
    per_step = {}
    for name, callbacks in (
        ("no callback", []),
        ("CacheTimingCallback", [CacheTimingCallback(verbose=0)]),
    ):
        callback_list = keras.callbacks.CallbackList(callbacks, model=model)
        callback_list.on_train_begin()
        callback_list.on_epoch_begin(0)
        best = float("inf")
        for _ in range(HOOK_REPEATS):
            start = time.perf_counter()
            for step in range(HOOK_CALLS):
                callback_list.on_train_batch_begin(step)
            best = min(best, (time.perf_counter() - start) / HOOK_CALLS)
        per_step[name] = best
        print(f"on_train_batch_begin, {name:<20}: {best * 1e9:6.0f} ns per step")
    extra = per_step["CacheTimingCallback"] - per_step["no callback"]
    fit_step = min(times["without"]) / steps
    print(
        f"hook cost per step {extra * 1e9:.0f} ns against {fit_step * 1e6:.0f} us "
        f"per training step (fastest fit): {extra / fit_step:.3%} of fit"
    )


# 4. Asynchronous steps -------------------------------------------------------


def async_mlp() -> keras.Model:
    """784 -> 1024 -> 256 -> 10: 1,068,810 parameters."""
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(1024, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def async_convnet() -> keras.Model:
    """Two 3x3 convolutions and poolings on 28x28 images: 12,810 parameters."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def epoch_walls() -> tuple[keras.callbacks.Callback, list[float]]:
    """A callback that appends each epoch's wall seconds to the list."""
    walls: list[float] = []
    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: walls.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: walls.append(
            time.perf_counter() - walls.pop()
        ),
    )
    return clock, walls


def async_timings(name: str, model: keras.Model, rng: np.random.Generator) -> None:
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    shape = model.input_shape[1:]
    x = rng.normal(size=(ASYNC_SAMPLES, *shape)).astype("float32")
    y = rng.integers(0, 10, ASYNC_SAMPLES).astype("int32")
    fit = {"batch_size": ASYNC_BATCH, "verbose": 0, "shuffle": False}

    timer = CacheTimingCallback(batch_size=ASYNC_BATCH, verbose=0)
    model.fit(x, y, epochs=ASYNC_EPOCHS, validation_split=0.1, callbacks=[timer], **fit)
    report = timer.report()
    print(f"{name} ({model.count_params():,} parameters)")
    print(f"  {'epoch':>5} {'train s':>8} {'val s':>8} {'waited s':>9}")
    for epoch in report.epochs:
        print(
            f"  {epoch.epoch + 1:>5} {epoch.time:>8.3f} "
            f"{epoch.validation_time:>8.3f} {epoch.sync_time:>9.3f}"
        )

    # The outside clock: the training part alone, same model (compiled).
    clock, walls = epoch_walls()
    train = ASYNC_SAMPLES * 9 // 10
    model.fit(x[:train], y[:train], epochs=3, callbacks=[clock], **fit)
    outside = statistics.median(walls)
    steady = report.steady_epoch_time or float("nan")
    print(
        f"  speedup {report.speedup or float('nan'):.2f}x (nothing cached: "
        f"about 1); steady training epoch {steady:.3f} s, outside clock "
        f"{outside:.3f} s ({steady / outside:.2f}x)"
    )

    # The wait's cost: whole fits with validation, with and without it.
    seconds: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(ASYNC_ROUNDS):
        for label, callbacks in (
            ("without", []),
            ("with", [CacheTimingCallback(verbose=0)]),
        ):
            start = time.perf_counter()
            model.fit(x, y, epochs=2, validation_split=0.1, callbacks=callbacks, **fit)
            seconds[label].append(time.perf_counter() - start)
    without = statistics.median(seconds["without"])
    with_ = statistics.median(seconds["with"])
    print(
        f"  cost: 2-epoch fit with validation, median of {ASYNC_ROUNDS}: "
        f"without the callback {without:.3f} s, with {with_:.3f} s "
        f"({with_ / without - 1:+.1%}); it waited {timer.sync_time:.3f} s "
        f"in all in the {ASYNC_EPOCHS}-epoch fit above"
    )


def asynchronous_steps() -> None:
    print(
        f"\n== 4. Asynchronous steps: arrays, validation_split=0.1, "
        f"{ASYNC_EPOCHS} epochs of {ASYNC_SAMPLES * 9 // 10} samples in batches "
        f"of {ASYNC_BATCH}"
    )
    rng = np.random.default_rng(0)
    async_timings("MLP", async_mlp(), rng)
    async_timings("convnet", async_convnet(), rng)


def main() -> None:
    parts = set(sys.argv[1:]) or {"1", "2", "3", "4"}
    keras.utils.set_random_seed(0)
    print(f"Keras backend: {keras.backend.backend()}")
    if keras.backend.backend() == "torch" and (os.cpu_count() or 1) <= 4:
        import torch

        # On a small machine PyTorch's spinning intra-op threads fight
        # tf.data's: a 57-step epoch of this MLP took 13 s instead of 0.5 s.
        torch.set_num_threads(1)
        print("PyTorch intra-op threads: 1 (small machine, shared with tf.data)")
    if parts & {"1", "2"}:
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            print("TensorFlow is not installed: parts 1 and 2 need tf.data; skipped.")
        else:
            if "1" in parts:
                article_experiment()
            if "2" in parts:
                callback_against_outside_clock()
    if "3" in parts:
        overhead()
    if "4" in parts:
        asynchronous_steps()


if __name__ == "__main__":
    main()
