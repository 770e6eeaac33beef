"""Prechelt's comparison of early-stopping criteria, redone with our EarlyStopping.

Prechelt (1998) compared 14 stopping criteria (GL1, 2, 3, 5; PQ0.5, 0.75, 1, 2,
3; UP2, 3, 4, 6, 8) over 1296 training runs and found that slower criteria buy
about 4 % better generalization for about 4x the training time. This script
measures the same on problems that run offline here, with Keras' `patience`
3 / 5 / 10 for comparison:

- problems: scikit-learn's shipped `digits`, `breast_cancer`, `wine` and
  `diabetes` (regression), plus two synthetic ones: `noisy` (150 training
  samples, 60 features of which 6 informative, 30 % of the labels flipped:
  overfits strongly) and `friedman` (Friedman #1 regression, 200 training
  samples, noise 1: overfits mildly). Real data sets are split 50 / 25 / 25 %
  into training, validation and test sets as in the paper; the synthetic ones
  get 150 / 150 / 2000 and 200 / 300 / 2000 samples. Inputs (and regression
  targets) are standardized with the training set's statistics;
- MLPs of three sizes (`small`: 8 hidden units, `medium`: 32, `large`:
  128 + 128; ReLU), full-batch Adam (learning rate 0.01), several seeds (the
  seed draws the split, the synthetic data and the initial weights);
- each (problem, size, seed) is trained ONCE to a fixed horizon, recording
  per epoch the training loss and the validation loss that Keras logs, and the
  test loss (cross-entropy or MSE, the same error as the validation loss) and,
  for classification, the test classification error;
- every criterion is then evaluated on the same recorded curves by replaying
  the logs, epoch by epoch, through
  `keras_bettermodels.callbacks.early_stopping.EarlyStopping` itself (a real,
  tiny model receives `stop_training`), so the stop is the one the callback
  would decide in a real fit of that run. The kept weights are those of the
  epoch with the lowest validation loss up to the stop (`best_epoch`, what
  `restore_best_weights=True` restores).

Measures, per run and criterion C (Prechelt's, as this study defines them):

- epochs(C): epochs trained, the stop epoch t, or the horizon when C never stops;
- slowness(C) = epochs(C) / epochs of the fastest of Prechelt's 14 criteria in
  that run (the patience rows are on the same scale and can fall below 1);
- badness(C) = test loss of the kept weights / the lowest test loss of the whole
  run (1 is the best any stopping rule could do);
- badness_vs_fastest(C) = test loss of C's kept weights / test loss of the
  fastest criterion's kept weights (below 1: C generalizes better than it);
- excess_error_pp(C), classification only: test classification error of the
  kept weights minus the run's lowest, in percentage points.

Over all runs, per criterion: the fraction of runs in which it never stops;
means, standard deviations and medians of the measures; `time_ratio`, its total
epochs over the fastest criterion's; how often it ends with a lower (higher)
test loss than the fastest criterion. And, for each family, its slowest setting
against its fastest (GL5 against GL1, ...) on the same runs.

Outputs: `prechelt.csv` (one row per criterion), `prechelt_runs.csv` (one row
per run and criterion), the tables printed as Markdown, and a plot of each
criterion's test loss against its training time, both relative to the fastest
criterion (`docs/img/prechelt-study.png`).

Run from the repository root:

    python benchmarks/prechelt_study.py            # the full study, ~10 min
    python benchmarks/prechelt_study.py --quick    # 1 problem, 1 size, 1 seed

Run as a script it uses the JAX backend unless `KERAS_BACKEND` is set: on this
project's 2-core machine a Keras epoch of these tiny models costs ~10 ms with JAX
and ~200 ms with TensorFlow or PyTorch, mostly per-epoch overhead. Another
backend runs the same study (its curves differ only in rounding), 10-20x slower.

References:
    Lutz Prechelt, "Early Stopping -- But When?", in Neural Networks: Tricks of
    the Trade, Springer, 1998 (2nd ed. 2012).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

from keras_bettermodels import _validation
from keras_bettermodels.callbacks.early_stopping import EarlyStopping

REPO = Path(__file__).resolve().parents[1]

PRECHELT = (
    "GL1",
    "GL2",
    "GL3",
    "GL5",
    "PQ0.5",
    "PQ0.75",
    "PQ1",
    "PQ2",
    "PQ3",
    "UP2",
    "UP3",
    "UP4",
    "UP6",
    "UP8",
)
PATIENCE = ("patience3", "patience5", "patience10")
CRITERIA = PRECHELT + PATIENCE
# The fastest and the slowest setting of each family, for the trade-off.
PAIRS = (
    ("GL1", "GL5"),
    ("PQ0.5", "PQ3"),
    ("UP2", "UP8"),
    ("patience3", "patience10"),
)

PROBLEMS = ("digits", "breast_cancer", "wine", "diabetes", "noisy", "friedman")
SIZES: dict[str, tuple[int, ...]] = {
    "small": (8,),
    "medium": (32,),
    "large": (128, 128),
}
LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Config:
    """What a study trains: every (problem, size, seed), `epochs` epochs each."""

    problems: tuple[str, ...]
    sizes: tuple[str, ...]
    seeds: int
    epochs: int


FULL = Config(PROBLEMS, tuple(SIZES), seeds=7, epochs=400)
QUICK = Config(("noisy",), ("medium",), seeds=1, epochs=30)
RESULTS = REPO / "benchmarks" / "results"
PLOT = REPO / "docs" / "img" / "prechelt-study.png"


# --------------------------------------------------------------------- data


@dataclass(frozen=True)
class Split:
    """A problem's training, validation and test sets, standardized."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int  # 0 for regression

    @property
    def is_classification(self) -> bool:
        return self.classes > 0


def load_problem(name: str, seed: int) -> Split:
    """Returns problem `name`'s data, split and drawn with `seed`."""
    from sklearn import datasets

    rng = np.random.default_rng(seed)
    sizes: tuple[int, int] | None = None  # None: 50 / 25 / 25 %
    if name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
    elif name == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
    elif name == "wine":
        x, y = datasets.load_wine(return_X_y=True)
    elif name == "diabetes":
        x, y = datasets.load_diabetes(return_X_y=True)
    elif name == "noisy":
        x, y = datasets.make_classification(
            n_samples=2300,
            n_features=60,
            n_informative=6,
            n_redundant=0,
            flip_y=0.3,
            random_state=seed,
        )
        sizes = (150, 150)
    elif name == "friedman":
        x, y = datasets.make_friedman1(
            n_samples=2500, n_features=10, noise=1.0, random_state=seed
        )
        sizes = (200, 300)
    else:
        raise ValueError(
            _validation.invalid_value("problem", f"one of {PROBLEMS}", name)
        )
    classification = name not in ("diabetes", "friedman")
    order = rng.permutation(len(x))
    x, y = x[order].astype("float64"), y[order]
    n_train, n_val = sizes or (len(x) // 2, len(x) // 4)
    parts = np.split(np.arange(len(x)), [n_train, n_train + n_val])
    mean, std = x[parts[0]].mean(axis=0), x[parts[0]].std(axis=0) + 1e-8
    xs = [((x[p] - mean) / std).astype("float32") for p in parts]
    if classification:
        ys = [y[p].astype("int32") for p in parts]
        classes = int(y.max()) + 1
    else:
        y_mean, y_std = y[parts[0]].mean(), y[parts[0]].std()
        ys = [((y[p] - y_mean) / y_std).astype("float32") for p in parts]
        classes = 0
    return Split(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], classes)


# ----------------------------------------------------------------- training


@dataclass(frozen=True)
class Curves:
    """What one training run recorded, epoch by epoch (index 0 is epoch 1)."""

    problem: str
    size: str
    seed: int
    loss: list[float]
    val_loss: list[float]
    test_loss: list[float]
    test_error: list[float] | None  # classification error; None for regression
    seconds: float

    @property
    def epochs(self) -> int:
        return len(self.val_loss)


def build_model(split: Split, size: str) -> keras.Model:
    """Returns the compiled MLP of `size` for `split`."""
    layers: list[keras.layers.Layer] = [keras.Input((split.x_train.shape[1],))]
    layers += [keras.layers.Dense(units, activation="relu") for units in SIZES[size]]
    if split.is_classification:
        layers.append(keras.layers.Dense(split.classes, activation="softmax"))
        loss = "sparse_categorical_crossentropy"
    else:
        layers.append(keras.layers.Dense(1))
        loss = "mse"
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=loss)
    return model


class _TestRecorder(keras.callbacks.Callback):
    """Records the test loss (and classification error) after every epoch."""

    def __init__(self, split: Split) -> None:
        super().__init__()
        self.split = split
        self.test_loss: list[float] = []
        self.test_error: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        predicted = np.asarray(self.model.predict_on_batch(self.split.x_test))
        y = self.split.y_test
        if self.split.is_classification:
            p_true = predicted[np.arange(len(y)), y].astype("float64")
            self.test_loss.append(float(-np.mean(np.log(np.clip(p_true, 1e-7, 1)))))
            self.test_error.append(float(np.mean(predicted.argmax(axis=1) != y)))
        else:
            self.test_loss.append(float(np.mean((predicted[:, 0] - y) ** 2)))


def train(
    problem: str,
    size: str,
    seed: int,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Curves:
    """Trains one run for `epochs` epochs (fewer if a callback stops it).

    Full batch, no shuffling: the same (problem, size, seed) gives the same
    curves on the same backend and machine, which is what lets every criterion
    be evaluated on one recorded run.
    """
    split = load_problem(problem, seed)
    keras.utils.set_random_seed(seed)
    model = build_model(split, size)
    recorder = _TestRecorder(split)
    start = time.perf_counter()
    history = model.fit(
        split.x_train,
        split.y_train,
        validation_data=(split.x_val, split.y_val),
        epochs=epochs,
        batch_size=len(split.x_train),
        validation_batch_size=len(split.x_val),
        shuffle=False,
        verbose=0,
        callbacks=[recorder, *callbacks],
    )
    seconds = time.perf_counter() - start
    return Curves(
        problem=problem,
        size=size,
        seed=seed,
        loss=[float(v) for v in history.history["loss"]],
        val_loss=[float(v) for v in history.history["val_loss"]],
        test_loss=recorder.test_loss,
        test_error=recorder.test_error if split.is_classification else None,
        seconds=seconds,
    )


# ------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Stop:
    """Where a criterion stops one run.

    Attributes:
        criterion: its name, as in `CRITERIA`.
        stopped: whether it fired within the horizon.
        epochs: epochs trained: the 1-based stop epoch, or the horizon.
        kept_epoch: the 1-based epoch whose weights are kept: the lowest
            validation loss up to the stop (the callback's `best_epoch` + 1).
    """

    criterion: str
    stopped: bool
    epochs: int
    kept_epoch: int


def make_callback(criterion: str) -> EarlyStopping:
    """Returns our `EarlyStopping` for a name in `CRITERIA` ("GL5", "patience3")."""
    if criterion.startswith("patience"):
        return EarlyStopping(patience=int(criterion.removeprefix("patience")))
    return EarlyStopping(criterion=criterion)


_replay_model: keras.Model | None = None


def _tiny_model() -> keras.Model:
    global _replay_model
    if _replay_model is None:
        _replay_model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    return _replay_model


def replay(criterion: str, loss: Sequence[float], val_loss: Sequence[float]) -> Stop:
    """Plays recorded logs through `EarlyStopping` and returns where it stops.

    The callback gets `on_train_begin`, then `on_epoch_end(epoch, logs)` with
    the `loss` and `val_loss` Keras logged for each epoch, until it sets the
    model's `stop_training`, as in `model.fit`.
    """
    callback = make_callback(criterion)
    model = _tiny_model()
    model.stop_training = False
    callback.set_model(model)
    callback.on_train_begin()
    epochs = 0
    for epoch, (train_value, val_value) in enumerate(zip(loss, val_loss, strict=True)):
        callback.on_epoch_end(epoch, {"loss": train_value, "val_loss": val_value})
        epochs = epoch + 1
        if model.stop_training:
            break
    callback.on_train_end()
    return Stop(
        criterion=criterion,
        stopped=callback.stopping_reason is not None,
        epochs=epochs,
        kept_epoch=callback.best_epoch + 1,
    )


# ----------------------------------------------------------------- measures


@dataclass(frozen=True)
class Outcome:
    """One criterion on one run, with Prechelt's measures."""

    problem: str
    size: str
    seed: int
    criterion: str
    stopped: bool
    epochs: int
    kept_epoch: int
    fastest_epochs: int
    test_loss: float
    slowness: float
    badness: float
    badness_vs_fastest: float
    excess_error_pp: float | None


def measure(
    curves: Curves, stops: dict[str, Stop], reference: Sequence[str] = PRECHELT
) -> list[Outcome]:
    """Returns slowness, badness and the rest for each criterion's stop.

    Args:
        curves: the run's recorded curves (for the test loss and error).
        stops: where each criterion stops the run.
        reference: the criteria among which the fastest sets slowness 1 and
            the denominator of `badness_vs_fastest`. Defaults to Prechelt's 14.

    Returns:
        One `Outcome` per entry of `stops`, in its order.
    """
    fastest = min(
        (stops[name] for name in reference if name in stops),
        key=lambda stop: stop.epochs,
    )
    best_test = min(curves.test_loss)
    fastest_test = curves.test_loss[fastest.kept_epoch - 1]
    outcomes = []
    for stop in stops.values():
        test = curves.test_loss[stop.kept_epoch - 1]
        excess = None
        if curves.test_error is not None:
            kept_error = curves.test_error[stop.kept_epoch - 1]
            excess = 100.0 * (kept_error - min(curves.test_error))
        outcomes.append(
            Outcome(
                problem=curves.problem,
                size=curves.size,
                seed=curves.seed,
                criterion=stop.criterion,
                stopped=stop.stopped,
                epochs=stop.epochs,
                kept_epoch=stop.kept_epoch,
                fastest_epochs=fastest.epochs,
                test_loss=test,
                slowness=stop.epochs / fastest.epochs,
                badness=test / best_test,
                badness_vs_fastest=test / fastest_test,
                excess_error_pp=excess,
            )
        )
    return outcomes


def evaluate(curves: Curves, criteria: Sequence[str] = CRITERIA) -> list[Outcome]:
    """Replays every criterion on one run and measures where each stops."""
    stops = {name: replay(name, curves.loss, curves.val_loss) for name in criteria}
    return measure(curves, stops)


@dataclass(frozen=True)
class Summary:
    """One criterion over all runs.

    Attributes:
        criterion: its name, as in `CRITERIA`.
        runs: the number of runs.
        never_stops: the fraction of runs in which it never fired.
        epochs_mean: mean epochs trained (the horizon when it never fired).
        time_ratio: its total epochs over all runs / the fastest criterion's.
        slowness_mean, slowness_std, slowness_median: of per-run slowness.
        badness_mean, badness_std, badness_median: of per-run badness.
        badness_vs_fastest_mean, badness_vs_fastest_std: of the per-run test
            loss relative to the fastest criterion's.
        better_than_fastest, worse_than_fastest: the fraction of runs in which
            its test loss is lower (higher) than the fastest criterion's.
        excess_error_pp_mean: mean excess classification error over the
            classification runs, in percentage points (NaN without any).
    """

    criterion: str
    runs: int
    never_stops: float
    epochs_mean: float
    time_ratio: float
    slowness_mean: float
    slowness_std: float
    slowness_median: float
    badness_mean: float
    badness_std: float
    badness_median: float
    badness_vs_fastest_mean: float
    badness_vs_fastest_std: float
    better_than_fastest: float
    worse_than_fastest: float
    excess_error_pp_mean: float


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation; 0 for a single value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarize(outcomes: Sequence[Outcome]) -> list[Summary]:
    """Returns one `Summary` per criterion, in `CRITERIA` order."""
    rows = []
    names = [name for name in CRITERIA if any(o.criterion == name for o in outcomes)]
    for name in names:
        mine = [o for o in outcomes if o.criterion == name]
        slowness = [o.slowness for o in mine]
        badness = [o.badness for o in mine]
        relative = [o.badness_vs_fastest for o in mine]
        excess = [o.excess_error_pp for o in mine if o.excess_error_pp is not None]
        rows.append(
            Summary(
                criterion=name,
                runs=len(mine),
                never_stops=float(np.mean([not o.stopped for o in mine])),
                epochs_mean=float(np.mean([o.epochs for o in mine])),
                time_ratio=sum(o.epochs for o in mine)
                / sum(o.fastest_epochs for o in mine),
                slowness_mean=float(np.mean(slowness)),
                slowness_std=_std(slowness),
                slowness_median=float(np.median(slowness)),
                badness_mean=float(np.mean(badness)),
                badness_std=_std(badness),
                badness_median=float(np.median(badness)),
                badness_vs_fastest_mean=float(np.mean(relative)),
                badness_vs_fastest_std=_std(relative),
                better_than_fastest=float(np.mean([r < 1 for r in relative])),
                worse_than_fastest=float(np.mean([r > 1 for r in relative])),
                excess_error_pp_mean=float(np.mean(excess)) if excess else math.nan,
            )
        )
    return rows


@dataclass(frozen=True)
class TradeOff:
    """A family's slowest setting against its fastest, on the same runs."""

    fast: str
    slow: str
    time_ratio: float  # total epochs of `slow` / total epochs of `fast`
    test_change: float  # mean of test(slow) / test(fast) - 1; < 0: slow is better
    slow_better: float  # fraction of runs where slow's test loss is lower
    slow_worse: float  # ... higher


def trade_offs(
    outcomes: Sequence[Outcome], pairs: Sequence[tuple[str, str]] = PAIRS
) -> list[TradeOff]:
    """Returns, for each (fast, slow) pair, what the slower criterion buys."""
    by_key = {(o.problem, o.size, o.seed, o.criterion): o for o in outcomes}
    runs = sorted({(o.problem, o.size, o.seed) for o in outcomes})
    result = []
    for fast, slow in pairs:
        matched = [
            (by_key[(*run, fast)], by_key[(*run, slow)])
            for run in runs
            if (*run, fast) in by_key and (*run, slow) in by_key
        ]
        if not matched:
            continue
        ratios = [s.test_loss / f.test_loss for f, s in matched]
        result.append(
            TradeOff(
                fast=fast,
                slow=slow,
                time_ratio=sum(s.epochs for _, s in matched)
                / sum(f.epochs for f, _ in matched),
                test_change=float(np.mean(ratios)) - 1.0,
                slow_better=float(np.mean([r < 1 for r in ratios])),
                slow_worse=float(np.mean([r > 1 for r in ratios])),
            )
        )
    return result


# ------------------------------------------------------------------- output


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    if value is None:
        return ""
    return value


def write_csv(path: Path, rows: Sequence[Any]) -> None:
    """Writes dataclass `rows` to `path`, one column per field."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([f.name for f in fields(rows[0])])
        for row in rows:
            writer.writerow([_format(v) for v in asdict(row).values()])


def table(summaries: Sequence[Summary]) -> str:
    """Returns the per-criterion summary as a Markdown table."""
    lines = [
        "| criterion | never stops | epochs | time vs fastest "
        "| slowness: mean ± std (median) | badness: mean ± std (median) "
        "| test loss vs fastest | better / worse than fastest "
        "| excess error (pp) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        excess = s.excess_error_pp_mean
        lines.append(
            f"| {s.criterion} | {s.never_stops:.0%} | {s.epochs_mean:.0f} "
            f"| {s.time_ratio:.2f}× "
            f"| {s.slowness_mean:.2f} ± {s.slowness_std:.2f} "
            f"({s.slowness_median:.2f}) "
            f"| {s.badness_mean:.3f} ± {s.badness_std:.3f} ({s.badness_median:.3f}) "
            f"| {s.badness_vs_fastest_mean - 1:+.1%} "
            f"| {s.better_than_fastest:.0%} / {s.worse_than_fastest:.0%} "
            f"| {'' if math.isnan(excess) else f'{excess:.2f}'} |"
        )
    return "\n".join(lines)


def trade_off_table(rows: Sequence[TradeOff]) -> str:
    """Returns the fast-against-slow comparison as a Markdown table."""
    lines = [
        "| fast → slow | training time | test loss | slow better | slow worse |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.fast} → {r.slow} | {r.time_ratio:.2f}× | {r.test_change:+.1%} "
            f"| {r.slow_better:.0%} | {r.slow_worse:.0%} |"
        )
    return "\n".join(lines)


def by_problem_table(outcomes: Sequence[Outcome]) -> str:
    """Returns mean badness per criterion (rows) and problem (columns)."""
    problems = [p for p in PROBLEMS if any(o.problem == p for o in outcomes)]
    lines = [
        "| criterion | " + " | ".join(problems) + " |",
        "|---|" + "---:|" * len(problems),
    ]
    for name in CRITERIA:
        cells = []
        for problem in problems:
            values = [
                o.badness
                for o in outcomes
                if o.criterion == name and o.problem == problem
            ]
            cells.append(f"{np.mean(values):.3f}" if values else "")
        if any(cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summaries: Sequence[Summary], path: Path, title: str) -> None:
    """Draws each criterion's test loss against its training time.

    Both relative to the fastest of Prechelt's criteria in the same run: x is
    `time_ratio`, y the mean of `badness_vs_fastest` with its standard error.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"GL": "tab:blue", "PQ": "tab:orange", "UP": "tab:green"}
    figure, axes = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    counts: dict[str, int] = {}
    for s in sorted(summaries, key=lambda s: s.time_ratio):
        family = s.criterion[:2]
        color = colors.get(family, "tab:gray")
        y = 100 * (s.badness_vs_fastest_mean - 1)
        error = 100 * s.badness_vs_fastest_std / math.sqrt(s.runs)
        axes.errorbar(
            s.time_ratio,
            y,
            yerr=error,
            fmt="o" if family in colors else "s",
            color=color,
            capsize=2,
            markersize=5,
        )
        # Alternate the labels above and below within a family.
        counts[family] = counts.get(family, 0) + 1
        above = counts[family] % 2 == 1
        axes.annotate(
            s.criterion.replace("patience", "patience "),
            (s.time_ratio, y),
            textcoords="offset points",
            xytext=(3, 5 if above else -11),
            fontsize=7,
            color=color,
        )
    for family, color in colors.items():
        axes.plot([], [], "o", color=color, label=family)
    axes.plot([], [], "s", color="tab:gray", label="Keras patience")
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_xlabel("training time: total epochs / those of the fastest criterion")
    axes.set_ylabel("test loss vs the fastest criterion (%), mean ± s.e.")
    axes.set_title(title, fontsize=9)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


# --------------------------------------------------------------------- main


def run_study(
    problems: Sequence[str],
    sizes: Sequence[str],
    seeds: int,
    epochs: int,
    verbose: bool = True,
) -> tuple[list[Curves], list[Outcome]]:
    """Trains every (problem, size, seed) once and evaluates every criterion."""
    all_curves, outcomes = [], []
    for problem in problems:
        for size in sizes:
            start = time.perf_counter()
            for seed in range(seeds):
                curves = train(problem, size, seed, epochs)
                all_curves.append(curves)
                outcomes += evaluate(curves)
            if verbose:
                print(
                    f"  {problem:<13} {size:<6} {seeds} seeds x {epochs} epochs: "
                    f"{time.perf_counter() - start:6.1f} s",
                    flush=True,
                )
    return all_curves, outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 problem, 1 size, 1 seed, 30 epochs"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help=f"folder for the CSV files; default {RESULTS.relative_to(REPO)}",
    )
    parser.add_argument("--seeds", type=int, help="seeds per (problem, size)")
    parser.add_argument("--epochs", type=int, help="the fixed horizon")
    parser.add_argument(
        "--plot",
        type=Path,
        help=f"where to draw the plot; default {PLOT.relative_to(REPO)}, or "
        "prechelt-study.png in --out when that is not the default; none with "
        "--quick",
    )
    parser.add_argument("--no-plot", action="store_true", help="draw no plot")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    for name in ("seeds", "epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, not {value}")
        if value is not None:
            config = dataclasses.replace(config, **{name: value})
    if args.plot is not None or args.quick:
        plot_path = args.plot
    else:
        plot_path = (
            PLOT if args.out.resolve() == RESULTS else args.out / "prechelt-study.png"
        )

    start = time.perf_counter()
    print(
        f"Prechelt's stopping criteria on Keras {keras.__version__}, "
        f"backend {keras.backend.backend()}: {len(config.problems)} problems x "
        f"{len(config.sizes)} sizes x {config.seeds} seeds, "
        f"{config.epochs} epochs each",
        flush=True,
    )
    curves, outcomes = run_study(
        config.problems, config.sizes, config.seeds, config.epochs
    )
    summaries = summarize(outcomes)
    pairs = trade_offs(outcomes)
    write_csv(args.out / "prechelt.csv", summaries)
    write_csv(args.out / "prechelt_runs.csv", outcomes)
    elapsed = time.perf_counter() - start
    training = sum(c.seconds for c in curves)
    title = (
        f"{len(curves)} runs ({len(config.problems)} problems x "
        f"{len(config.sizes)} MLP sizes x {config.seeds} seeds, "
        f"{config.epochs} epochs each), backend {keras.backend.backend()}"
    )
    if plot_path is not None and not args.no_plot:
        plot(summaries, plot_path, title)
    print()
    print(table(summaries))
    print()
    print(trade_off_table(pairs))
    print()
    print("Mean badness by problem:")
    print(by_problem_table(outcomes))
    print()
    print(f"Wrote {args.out / 'prechelt.csv'} and {args.out / 'prechelt_runs.csv'}")
    if plot_path is not None and not args.no_plot:
        print(f"Drew {plot_path}")
    print(
        f"{len(curves)} runs, {sum(c.epochs for c in curves)} epochs: "
        f"{training:.0f} s training, {elapsed:.0f} s in all"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
