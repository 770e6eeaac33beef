"""`python -m keras_bettermodels demo`: Prechelt's early stopping on a real task.

Trains a small MLP on scikit-learn's handwritten digits with a deliberately
small training split, so that it overfits within a few dozen epochs, and stops
it with `EarlyStopping(criterion=GL(5) | UP(3), restore_best_weights=True)`.
It then prints why and when training stopped, the best epoch and the test
accuracy of the restored weights, and writes TensorBoard logs:

- `<log_dir>/early_stopping`: GL(t), P_k(t) and PQ(t), written by the callback;
- `<log_dir>/fit`: `loss`, `val_loss`, `accuracy` and `val_accuracy` per epoch;
- `<log_dir>/gradient_check`: the gradient checks (the "Gradient check" tab);
- `<log_dir>/mixed_precision`: the mixed-precision guard's audit;
- `<log_dir>/input_timing/uncached` and `.../cached`: the same input pipeline
  timed without and with a cache (the "Input timing" tab). With TensorFlow
  installed it is a `tf.data` pipeline whose `map` is slow, the callback
  inspecting its `.cache()`; without TensorFlow (`pip install
  'keras-bettermodels[jax]'` or `[torch]`) a `keras.utils.PyDataset` whose
  reads are slow, once as it is and once keeping its batches in memory after
  the first epoch (timing only: there is no `tf.data` pipeline to inspect).

The last line it prints is the command that serves the logs with this
environment's TensorBoard. Runs on every Keras backend. Importing this module
is cheap: Keras, the backend and scikit-learn are imported when the demo runs.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import shlex
import shutil
import sys
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["add_arguments", "main", "run", "run_from_args"]

DEFAULT_LOG_DIR = os.path.join("runs", "demo")
DEFAULT_EPOCHS = 300
QUICK_EPOCHS = 30
TRAIN_SIZE = 300
VALIDATION_SIZE = 500
SEED = 0
BATCH_SIZE = 32
# The input pipelines' slow read: the seed article's 1 ms per sample, standing
# for opening and decoding files.
READ_SECONDS_PER_SAMPLE = 0.001
GRADIENT_CHECK_EVERY = 10
_FIT_TAGS = ("loss", "val_loss", "accuracy", "val_accuracy")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"Expected a positive integer. Received: {text!r}"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the demo's options to `parser` and returns it.

    Args:
        parser: the parser of the `demo` command.

    Returns:
        `parser`.
    """
    parser.add_argument(
        "--log-dir",
        default=DEFAULT_LOG_DIR,
        help=f"where to write the TensorBoard logs (default: {DEFAULT_LOG_DIR})",
    )
    parser.add_argument(
        "--epochs",
        type=_positive_int,
        default=DEFAULT_EPOCHS,
        help=f"the most epochs to train (default: {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"train at most {QUICK_EPOCHS} epochs (for tests)",
    )
    return parser


def _load_digits() -> tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]]:
    """Returns (train, validation, test) splits of the digits, scaled to [0, 1]."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], y[order]
    val_end = TRAIN_SIZE + VALIDATION_SIZE
    return (
        (x[:TRAIN_SIZE], y[:TRAIN_SIZE]),
        (x[TRAIN_SIZE:val_end], y[TRAIN_SIZE:val_end]),
        (x[val_end:], y[val_end:]),
    )


def _write_fit_scalars(
    log_dir: str, epoch: int, logs: Mapping[str, Any] | None
) -> None:
    """Writes this epoch's losses and accuracies to TensorBoard's Scalars tab."""
    from keras_bettermodels.tensorboard import summary

    logs = logs or {}
    summary.write_scalars(
        log_dir,
        epoch,
        {tag: None if logs.get(tag) is None else float(logs[tag]) for tag in _FIT_TAGS},
    )


def _format(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"


def _tensorboard_command(log_dir: str) -> str:
    """The command that serves `log_dir` with this environment's TensorBoard.

    `tensorboard` when the one on `PATH` is this environment's (it finds the
    tabs); otherwise this Python's `-m tensorboard.main`, since a `tensorboard`
    from another environment would not have them. The path is absolute, so the
    command works from any directory.
    """
    logs = shlex.quote(os.path.abspath(log_dir))
    found = shutil.which("tensorboard")
    ours = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    if found is not None and os.path.exists(ours) and os.path.samefile(found, ours):
        program = "tensorboard"
    else:
        program = f"{shlex.quote(sys.executable)} -m tensorboard.main"
    return f"{program} --logdir {logs} --host 127.0.0.1"


def _build_model(features: int) -> Any:
    """The demo's MLP, compiled."""
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(features,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _tf_data_pipelines(x: Any, y: Any) -> list[tuple[str, Any]]:
    """A tf.data pipeline with a slow `map`, without and with `.cache()`."""
    import tensorflow as tf

    def slow_map(features: Any, labels: Any) -> Any:
        tf.py_function(lambda: time.sleep(READ_SECONDS_PER_SAMPLE * BATCH_SIZE), [], ())
        return features, labels

    base = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(BATCH_SIZE, drop_remainder=True)  # see _slow_batches_class
        .map(slow_map)
    )
    return [
        ("uncached", base.prefetch(tf.data.AUTOTUNE)),
        ("cached", base.cache().prefetch(tf.data.AUTOTUNE)),
    ]


@functools.cache
def _slow_batches_class() -> type:
    """`SlowBatches`, a `keras.utils.PyDataset` (defined when Keras is imported)."""
    import keras

    class SlowBatches(keras.utils.PyDataset):
        """Whole batches of `x` and `y`, each read in 1 ms per sample, as from disk.

        With `keep`, a batch read once is kept in memory and served from there
        in the later epochs: a cache, which the first epoch fills. Samples that
        do not fill a last whole batch are left out: a smaller last batch would
        make JAX compile the step a second time.
        """

        def __init__(self, x: Any, y: Any, batch_size: int, keep: bool) -> None:
            super().__init__()
            self.x, self.y, self.batch_size = x, y, batch_size
            self.kept: dict[int, tuple[Any, Any]] | None = {} if keep else None

        def __len__(self) -> int:
            return len(self.x) // self.batch_size

        def __getitem__(self, index: int) -> tuple[Any, Any]:
            if self.kept is not None and index in self.kept:
                return self.kept[index]
            rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
            batch = (self.x[rows], self.y[rows])
            time.sleep(READ_SECONDS_PER_SAMPLE * len(batch[0]))
            if self.kept is not None:
                self.kept[index] = batch
            return batch

    return SlowBatches


def _py_dataset_pipelines(x: Any, y: Any) -> list[tuple[str, Any]]:
    """A PyDataset with a slow read, as it is and keeping its batches."""
    batches = _slow_batches_class()
    return [
        ("uncached", batches(x, y, BATCH_SIZE, keep=False)),
        ("cached", batches(x, y, BATCH_SIZE, keep=True)),
    ]


def _cache_timing_demo(x: Any, y: Any, epochs: int, log_dir: str) -> None:
    """Fits the MLP on a slow input pipeline, uncached then cached, timed.

    A tf.data pipeline when TensorFlow is installed (the callback inspects it
    and finds the cache), a `keras.utils.PyDataset` otherwise (timing only).
    """
    from keras_bettermodels.callbacks import CacheTimingCallback

    read = f"{READ_SECONDS_PER_SAMPLE * 1000:g} ms per sample"
    # Not `except ImportError`: a TensorFlow that is installed but fails to
    # import should say so, not be taken for an install without it.
    if importlib.util.find_spec("tensorflow") is not None:
        pipelines = _tf_data_pipelines(x, y)
        print(
            f"\nCache timing: a tf.data pipeline whose map takes {read}, "
            "without and with .cache()"
        )
    else:
        pipelines = _py_dataset_pipelines(x, y)
        print(
            "\nCache timing: TensorFlow is not installed, so no tf.data: a "
            f"keras.utils.PyDataset that reads in {read} (as from disk), as it is "
            "and keeping its batches in memory after the first epoch"
        )
    steady: dict[str, float | None] = {}
    for name, dataset in pipelines:
        run_dir = os.path.join(log_dir, "input_timing", name)
        timer = CacheTimingCallback(dataset=dataset, verbose=0, log_dir=run_dir)
        model = _build_model(x.shape[1])
        model.fit(dataset, epochs=epochs, verbose=0, shuffle=False, callbacks=[timer])
        report = timer.report()
        steady[name] = report.steady_epoch_time
        print(f"\nCache timing, {name} pipeline:\n{report}")
    uncached, cached = steady["uncached"], steady["cached"]
    if uncached and cached:
        print(
            f"Cache timing: a steady epoch takes {uncached:.3f} s uncached and "
            f"{cached:.3f} s cached, {uncached / cached:.1f}x faster"
        )


def _mixed_precision_demo(
    data: tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]],
    log_dir: str,
    quick: bool,
) -> None:
    """The MLP under mixed_float16 with the guard, then float32 vs mixed, timed."""
    import keras

    from keras_bettermodels.callbacks import MixedPrecisionGuard
    from keras_bettermodels.precision import compare_precision, float32_outputs

    (x_train, y_train), (x_val, y_val), _ = data
    features = x_train.shape[1]

    def build() -> Any:  # the demo's MLP, its softmax kept in float32
        return float32_outputs(_build_model(features))

    previous_policy = keras.config.dtype_policy()
    print("\nMixed precision: the same MLP under mixed_float16")
    try:
        keras.config.set_dtype_policy("mixed_float16")
        guard = MixedPrecisionGuard(
            batch_size=BATCH_SIZE, log_dir=os.path.join(log_dir, "mixed_precision")
        )
        build().fit(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            epochs=2 if quick else 5,
            batch_size=BATCH_SIZE,
            verbose=0,
            callbacks=[guard],
        )
    finally:
        keras.config.set_dtype_policy(previous_policy)
    batch = (x_train[:BATCH_SIZE], y_train[:BATCH_SIZE])
    comparison = compare_precision(build, batch, steps=10 if quick else 50)
    print(comparison)
    print(
        f"Measured here: mixed_float16 trains at {comparison.speedup:.2f}x the "
        "speed of float32 (a GPU with Tensor Cores is where it pays; see "
        "docs/benchmarks.md)"
    )


TUNER_TRIALS = 4
QUICK_TUNER_TRIALS = 2
TUNER_EPOCHS = 20
QUICK_TUNER_EPOCHS = 5


def _tuner_demo(
    data: tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]],
    log_dir: str,
    quick: bool,
) -> None:
    """A few quick random-search trials, then the retrain on all the data."""
    import warnings

    import keras

    from keras_bettermodels.tuners import RandomSearch

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data

    def build(hp: Any) -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input(shape=(x_train.shape[1],)),
                keras.layers.Dense(
                    hp.Int("units", 32, 256, step=32), activation="relu"
                ),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 1e-3])),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    trials = QUICK_TUNER_TRIALS if quick else TUNER_TRIALS
    epochs = QUICK_TUNER_EPOCHS if quick else TUNER_EPOCHS
    keras.utils.set_random_seed(SEED)
    tuner = RandomSearch(
        build,
        objective="val_accuracy",
        max_trials=trials,
        seed=SEED,
        directory=os.path.join(log_dir, "tuner"),
        project_name="random_search",
        overwrite=True,
    )
    print(f"Random search: {trials} trials of {epochs} epochs")
    tuner.search(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        validation_data=(x_val, y_val),
        verbose=0,
    )
    best_trial = tuner.oracle.get_best_trials(1)[0]
    info = tuner.retrain_info
    if info is None:  # search() retrains unless the data could not be combined
        print("Retrain: skipped")
        return
    print(
        f"Best trial: val_accuracy {best_trial.score:.4f} with "
        f"{best_trial.hyperparameters.values}"
    )
    print(
        f"Retrained on {info.samples} samples ({info.train_samples} training + "
        f"{info.validation_samples} validation) for {info.epochs} epochs"
    )
    with warnings.catch_warnings():
        # keras-tuner loads the search model's weights before its optimizer
        # is built, and Keras says so.
        warnings.filterwarnings("ignore", message="Skipping variable loading")
        search_model = tuner.get_best_models(1)[0]
    accuracies = [
        float(model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"])
        for model in (search_model, tuner.get_retrained_model())
    ]
    print(
        f"Tuned test accuracy: search model {accuracies[0]:.4f}, "
        f"retrained model {accuracies[1]:.4f}"
    )


def run(
    log_dir: str = DEFAULT_LOG_DIR, epochs: int = DEFAULT_EPOCHS, quick: bool = False
) -> int:
    """Runs the demo and prints what happened.

    Args:
        log_dir: where to write the TensorBoard logs. Defaults to `"runs/demo"`.
        epochs: the most epochs to train. Defaults to `300`.
        quick: fewer epochs and trials for the extra parts (tests). Defaults to
            `False`.

    Returns:
        The exit status: 0 on success.
    """
    # Keep TensorFlow's C++ start-up chatter out of the demo, unless asked for.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from keras_bettermodels.callbacks import EarlyStopping, GradientCheckCallback
    from keras_bettermodels.criteria import GL, UP
    from keras_bettermodels.tensorboard import summary

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = _load_digits()
    keras.utils.set_random_seed(SEED)
    model = _build_model(x_train.shape[1])
    criterion = GL(5) | UP(3)
    stopper = EarlyStopping(
        criterion=criterion,
        restore_best_weights=True,
        verbose=1,
        log_dir=os.path.join(log_dir, "early_stopping"),
    )
    # Ng's advice: check the gradient at the start and again as the weights move.
    checker = GradientCheckCallback(
        x_train[:32],
        y_train[:32],
        every_n_epochs=GRADIENT_CHECK_EVERY,
        seed=SEED,
        verbose=0,
        log_dir=os.path.join(log_dir, "gradient_check"),
    )
    fit_log_dir = os.path.join(log_dir, "fit")
    fit_logger = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: _write_fit_scalars(fit_log_dir, epoch, logs)
    )

    print(f"Keras backend: {keras.backend.backend()}")
    print(
        f"Data: scikit-learn digits, {len(x_train)} training / {len(x_val)} "
        f"validation / {len(x_test)} test samples"
    )
    print(f"Training at most {epochs} epochs with EarlyStopping(criterion={criterion})")
    try:
        history = model.fit(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            epochs=epochs,
            batch_size=BATCH_SIZE,
            verbose=0,
            callbacks=[stopper, checker, fit_logger],
        )
        test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    finally:
        summary.close_all()

    epochs_run = len(history.history["loss"])
    print(f"Epochs run: {epochs_run}")
    if stopper.stopping_reason is not None:
        print(f"Stopping reason: {stopper.stopping_reason}")
    else:
        print(f"Stopping reason: no criterion fired within {epochs_run} epochs")
    best_val_loss = history.history["val_loss"][stopper.best_epoch]
    print(
        f"Best epoch: {stopper.best_epoch + 1} "
        f"(val_loss {best_val_loss:.4f}, weights restored)"
    )
    print(f"Test accuracy (best weights): {float(test['accuracy']):.4f}")
    codes = ", ".join(finding.code for finding in stopper.diagnosis) or "none"
    print(f"Diagnosis (keras_bettermodels.diagnose, Ng's recipe): {codes}")
    if stopper.criterion_history:
        last = stopper.criterion_history[-1]
        print(
            f"Last epoch ({last['epoch'] + 1}): GL={_format(last['GL'])} "
            f"P_k={_format(last['P_k'])} PQ={_format(last['PQ'])} "
            f"UP={_format(last['UP'])}  (P_k, PQ, UP: at strip ends only)"
        )
    verdicts = ", ".join(
        f"{step}: {report.relative_error:.1e} ({report.verdict})"
        for step, report in zip(checker.steps, checker.reports, strict=True)
    )
    print(f"Gradient checks (epochs done: relative error): {verdicts}")
    print(f"Last gradient check, in full:\n{checker.reports[-1]}")
    data = ((x_train, y_train), (x_val, y_val), (x_test, y_test))
    try:
        _mixed_precision_demo(data, log_dir, quick)
        _tuner_demo(data, log_dir, quick)
        _cache_timing_demo(x_train, y_train, 3 if quick else 5, log_dir)
    finally:
        summary.close_all()
    print(f"TensorBoard logs in {os.path.abspath(log_dir)}")
    print(f"View them with: {_tensorboard_command(log_dir)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Runs the demo with command-line options (those after `demo`).

    Args:
        argv: the options, such as `["--quick", "--log-dir", "/tmp/demo"]`;
            `None` reads `sys.argv[1:]`. Defaults to `None`.

    Returns:
        The exit status.
    """
    parser = add_arguments(
        argparse.ArgumentParser(
            prog="python -m keras_bettermodels demo",
            description=__doc__.splitlines()[0] if __doc__ else None,
        )
    )
    args = parser.parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    """Runs the demo with options parsed by a parser from `add_arguments`."""
    epochs = min(args.epochs, QUICK_EPOCHS) if args.quick else args.epochs
    return run(log_dir=args.log_dir, epochs=epochs, quick=args.quick)
