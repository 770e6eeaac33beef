"""Retraining on the full data vs `get_best_models()`, and distributed throughput.

Part 1, accuracy. For each tuner (`RandomSearch`, `Hyperband`,
`BayesianOptimization`, `GridSearch` from `keras_bettermodels.tuners`), each of
5 seeds, and scikit-learn's digits (10 classes, 1797 images) and breast cancer
(2 classes, 569 samples) data sets, both shipped with scikit-learn: split 60 %
training / 20 % validation / 20 % test, run the tuner on the training and
validation splits, and measure on the test split, which neither the search nor
the retrain saw,

    (a) `tuner.get_best_models()[0]`: the search's best model, trained on the
        training split only (keras-tuner's shortcut);
    (b) `tuner.get_retrained_model()`: the best hyperparameters retrained on
        training + validation data for the best trial's best epoch count.

It prints both accuracies per seed, their difference (b) - (a), and the mean
and standard deviation over the seeds.

Part 1b, cross-validated (`--part cv`): the same comparison for `RandomSearch`
with `cv=5` (`--cv K` to change it): the search sees the training and
validation splits as one data set (80 %) and scores each trial by 5-fold
cross-validation; the retrain trains on all of it for the median of the
folds' best epoch counts. Same test split, seeds and budget.

Part 2, throughput. The same search on the digits, distributed the way
keras-tuner distributes it: a chief and one, then two, workers, each a process,
on 127.0.0.1. Trials per minute are counted from the first trial's start to
the last trial's end (imports excluded), and the two runs are compared side by
side. With fewer free cores than workers, two workers cannot be twice as fast.

Run from the repository root, on any Keras backend:

    python benchmarks/random_search.py
    KERAS_BACKEND=jax python benchmarks/random_search.py

`--quick` (or `KBM_QUICK=1`) runs 2 seeds and fewer trials and epochs (a smoke
test); `--tuner NAME` and `--data digits|breast_cancer` (repeatable) pick
tuners and data sets; `--part accuracy|cv|throughput` runs one part.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

QUICK = os.environ.get("KBM_QUICK") == "1" or "--quick" in sys.argv
TUNERS = ("RandomSearch", "Hyperband", "BayesianOptimization", "GridSearch")
DATA_SETS = ["digits", "breast_cancer"]
SEEDS = (0, 1) if QUICK else (0, 1, 2, 3, 4)
MAX_TRIALS = 2 if QUICK else 6
EPOCHS = 3 if QUICK else 20
DISTRIBUTED_TRIALS = 4 if QUICK else 8
DISTRIBUTED_EPOCHS = 2 if QUICK else 5
BATCH_SIZE = 32
DEADLINE = 1800.0  # seconds, for one distributed run


def load(name: str, seed: int) -> dict[str, Any]:
    """Returns train / validation / test splits of a scikit-learn data set."""
    import numpy as np
    from sklearn import datasets

    if name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
        x = x / 16.0
    else:
        x, y = datasets.load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order].astype("float32"), y[order].astype("int32")
    train_end, val_end = int(0.6 * len(x)), int(0.8 * len(x))
    if name != "digits":  # standardize with the training split's statistics
        mean, std = x[:train_end].mean(0), x[:train_end].std(0) + 1e-8
        x = ((x - mean) / std).astype("float32")
    return {
        "train": (x[:train_end], y[:train_end]),
        "validation": (x[train_end:val_end], y[train_end:val_end]),
        "test": (x[val_end:], y[val_end:]),
        "classes": int(y.max()) + 1,
    }


def make_builder(features: int, classes: int):
    import keras

    def build(hp: Any) -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input((features,)),
                keras.layers.Dense(
                    hp.Int("units", 16, 256, step=16), activation="relu"
                ),
                keras.layers.Dropout(hp.Choice("dropout", [0.0, 0.2])),
                keras.layers.Dense(classes),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Choice("lr", [1e-2, 3e-3, 1e-3])),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model

    return build


def tuner_arguments(tuner: str) -> dict[str, Any]:
    """Each tuner's budget: about `MAX_TRIALS` trials of up to `EPOCHS` epochs."""
    if tuner == "Hyperband":
        return {"max_epochs": EPOCHS, "factor": 3}
    if tuner == "BayesianOptimization":
        return {"max_trials": MAX_TRIALS, "num_initial_points": 2}
    return {"max_trials": MAX_TRIALS}


def accuracy_run(
    name: str,
    seed: int,
    directory: str,
    tuner_name: str = "RandomSearch",
    cv: int | None = None,
) -> tuple[float, float, Any]:
    import keras
    import numpy as np

    from keras_bettermodels import tuners

    data = load(name, seed)
    (x, y), (x_val, y_val), (x_test, y_test) = (
        data["train"],
        data["validation"],
        data["test"],
    )
    keras.utils.set_random_seed(seed)
    tuner = getattr(tuners, tuner_name)(
        make_builder(x.shape[1], data["classes"]),
        objective="val_accuracy",
        seed=seed + 1,
        directory=directory,
        project_name=f"{tuner_name}-{name}-{seed}-cv{cv}",
        overwrite=True,
        cv=cv,
        **tuner_arguments(tuner_name),
    )
    if cv is None:
        data_kwargs: dict[str, Any] = {"validation_data": (x_val, y_val)}
    else:  # the folds hold out: the search sees training + validation as one
        x, y = np.concatenate([x, x_val]), np.concatenate([y, y_val])
        data_kwargs = {}
    tuner.search(x, y, epochs=EPOCHS, batch_size=BATCH_SIZE, verbose=0, **data_kwargs)
    best = tuner.get_best_models(1)[0]
    retrained = tuner.get_retrained_model()
    scores = [
        float(m.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"])
        for m in (best, retrained)
    ]
    return scores[0], scores[1], tuner.retrain_info


def part_accuracy(directory: str, tuner_names: tuple[str, ...] = TUNERS) -> None:
    print(
        f"Part 1: test accuracy, get_best_models()[0] vs get_retrained_model(); "
        f"{len(SEEDS)} seeds, {MAX_TRIALS} trials x {EPOCHS} epochs "
        f"(Hyperband: max_epochs={EPOCHS}, factor=3), 60/20/20 split"
    )
    for tuner_name in tuner_names:
        print(f"\n{tuner_name}")
        _accuracy_table(directory, tuner_name)


def part_cv(directory: str, cv: int) -> None:
    print(
        f"\nPart 1b: the same with cv={cv} (RandomSearch): the search sees "
        f"training + validation (80 %) and scores trials by {cv}-fold "
        "cross-validation; test split as above"
    )
    print("\nRandomSearch")
    _accuracy_table(directory, "RandomSearch", cv)


def _accuracy_table(directory: str, tuner_name: str, cv: int | None = None) -> None:
    header = (
        f"{'data set':<14}{'seed':>5}{'best model':>12}{'retrained':>11}"
        f"{'difference':>12}  retrain"
    )
    print(header)
    for name in DATA_SETS:
        differences, bests, retraineds = [], [], []
        for seed in SEEDS:
            best, retrained, info = accuracy_run(name, seed, directory, tuner_name, cv)
            bests.append(best)
            retraineds.append(retrained)
            differences.append(retrained - best)
            print(
                f"{name:<14}{seed:>5}{best:>12.4f}{retrained:>11.4f}"
                f"{retrained - best:>+12.4f}  {info.samples} samples "
                f"({info.train_samples}+{info.validation_samples}), "
                f"epochs={info.epochs}",
                flush=True,
            )
        spread = statistics.stdev(differences) if len(differences) > 1 else 0.0
        print(
            f"{name:<14}{'mean':>5}{statistics.mean(bests):>12.4f}"
            f"{statistics.mean(retraineds):>11.4f}"
            f"{statistics.mean(differences):>+12.4f}  (difference sd {spread:.4f}; "
            f"retrained better in {sum(d > 0 for d in differences)}/"
            f"{len(differences)}, equal in {sum(d == 0 for d in differences)})"
        )


# -------------------------------------------------------------- distributed


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child(directory: str, records: str) -> int:
    """One process of a distributed search (chief or worker)."""
    import keras
    import keras_tuner

    from keras_bettermodels.tuners import RandomSearch

    data = load("digits", 0)
    (x, y), (x_val, y_val) = data["train"], data["validation"]
    build = make_builder(x.shape[1], data["classes"])
    out = Path(records)

    class Timed(keras_tuner.HyperModel):
        def build(self, hp: Any) -> keras.Model:
            return build(hp)

        def fit(self, hp: Any, model: keras.Model, *args: Any, **kwargs: Any):
            start = time.time()
            history = model.fit(*args, **kwargs)
            kind = "trial" if "validation_data" in kwargs else "retrain"
            name = f"{kind}-{os.getpid()}-{start:.6f}.json"
            (out / name).write_text(json.dumps({"start": start, "end": time.time()}))
            return history

    tuner = RandomSearch(
        Timed(),
        objective="val_accuracy",
        max_trials=DISTRIBUTED_TRIALS,
        seed=1,
        directory=directory,
        project_name="distributed",
        overwrite=False,
    )
    tuner.search(
        x,
        y,
        epochs=DISTRIBUTED_EPOCHS,
        batch_size=BATCH_SIZE,
        validation_data=(x_val, y_val),
        verbose=0,
    )
    return 0


def distributed_run(workers: int, root: str) -> dict[str, float]:
    directory = os.path.join(root, f"workers{workers}")
    records = os.path.join(root, f"records{workers}")
    os.makedirs(records)
    port = str(_free_port())
    processes = []
    try:
        for tuner_id in ["chief", *(f"tuner{i}" for i in range(workers))]:
            env = {
                **os.environ,
                "KERASTUNER_TUNER_ID": tuner_id,
                "KERASTUNER_ORACLE_IP": "127.0.0.1",
                "KERASTUNER_ORACLE_PORT": port,
            }
            processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--child", directory, records],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + DEADLINE
        for process in processes:
            _, stderr = process.communicate(
                timeout=max(1.0, deadline - time.monotonic())
            )
            if process.returncode != 0:
                raise RuntimeError(f"a search process failed:\n{stderr[-3000:]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    trials = [json.loads(p.read_text()) for p in Path(records).glob("trial-*.json")]
    seconds = max(t["end"] for t in trials) - min(t["start"] for t in trials)
    retrains = len(list(Path(records).glob("retrain-*.json")))
    return {
        "trials": len(trials),
        "seconds": seconds,
        "per_minute": 60.0 * len(trials) / seconds,
        "retrains": retrains,
    }


def part_throughput(root: str) -> None:
    print()
    print(
        f"Part 2: distributed throughput on the digits, {DISTRIBUTED_TRIALS} "
        f"trials x {DISTRIBUTED_EPOCHS} epochs, chief + N workers on 127.0.0.1 "
        f"({os.cpu_count()} CPU cores)"
    )
    print(
        f"{'workers':>7}{'trials':>8}{'seconds':>9}{'trials/min':>12}{'retrains':>10}"
    )
    results = {}
    for workers in (1, 2):
        result = distributed_run(workers, root)
        results[workers] = result
        print(
            f"{workers:>7}{result['trials']:>8}{result['seconds']:>9.1f}"
            f"{result['per_minute']:>12.1f}{result['retrains']:>10}",
            flush=True,
        )
    ratio = results[2]["per_minute"] / results[1]["per_minute"]
    print(f"two workers / one worker: {ratio:.2f}x trials per minute")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("DIRECTORY", "RECORDS"))
    parser.add_argument("--quick", action="store_true", help="a smoke test")
    parser.add_argument("--tuner", action="append", choices=TUNERS)
    parser.add_argument("--part", choices=("accuracy", "cv", "throughput"))
    parser.add_argument("--cv", type=int, default=5, help="folds of part 1b")
    parser.add_argument("--data", action="append", choices=DATA_SETS)
    args = parser.parse_args()
    if args.data:
        DATA_SETS[:] = args.data
    if args.child:
        return child(*args.child)
    import warnings

    import keras

    # keras-tuner's get_best_models() loads weights into a model whose
    # optimizer is not built yet, and Keras says so; it is not our concern here.
    warnings.filterwarnings("ignore", message="Skipping variable loading")
    print(f"Keras backend: {keras.backend.backend()}")
    with tempfile.TemporaryDirectory() as root:
        if args.part in (None, "accuracy"):
            part_accuracy(root, tuple(args.tuner or TUNERS))
        if args.part in (None, "cv"):
            part_cv(root, args.cv)
        if args.part in (None, "throughput"):
            part_throughput(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
