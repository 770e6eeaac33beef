"""Cross-validated trials: the folds, each fold's record, the trial's metrics (private).

With `cv=`, a trial trains once per fold of the data given to `search`, on
the other folds, and is scored on the fold it held out. Its objective is the
mean of the folds' values; the fold values and their standard deviation go
into the trial's metrics too (`<objective>_fold<k>`, `<objective>_std`). Each
finished fold is recorded in the trial's directory (`folds.json`), so that a
trial run again after a kill does not train its finished folds again.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from keras_bettermodels import _validation
from keras_bettermodels._compat import tuner as _kt
from keras_bettermodels.tuners import _combine, _data, _trials
from keras_bettermodels.tuners._store import RetrainStore

__all__ = [
    "FOLDS_FILE",
    "FoldRecord",
    "Folds",
    "check_cv",
    "fold_checkpoint",
    "make_folds",
    "median_epochs",
    "read_records",
    "run_folds",
]

FOLDS_FILE = "folds.json"
_EXPECTED = "an integer >= 2 or an object with scikit-learn's `split(x, y)`"
# `fit` arguments a cross-validated search cannot take: the folds hold out.
_HELD_OUT = ("validation_data", "validation_split")


def check_cv(cv: Any) -> Any:
    """Checks the `cv` argument: `None`, an int >= 2, or a splitter."""
    if cv is None or (hasattr(cv, "split") and not isinstance(cv, str)):
        return cv
    if isinstance(cv, bool) or not isinstance(cv, int):
        raise TypeError(_validation.invalid_type("cv", _EXPECTED, cv))
    if cv < 2:
        raise ValueError(_validation.invalid_value("cv", _EXPECTED, cv))
    return cv


@dataclass(frozen=True)
class Folds:
    """A search's folds: `(train, validation)` index arrays, and their fingerprint."""

    splits: tuple[tuple[np.ndarray, np.ndarray], ...]
    fingerprint: str

    def __len__(self) -> int:
        return len(self.splits)


def make_folds(cv: Any, named: dict[str, Any], seed: int | None) -> Folds:
    """Splits the samples of a `search` call's `x` / `y` into folds.

    An int `k` is scikit-learn's `StratifiedKFold` for classification targets
    (binary, multiclass, or one-hot rows) and `KFold` otherwise, both shuffled
    with `seed`; any other `cv` is asked for `cv.split(x, y)`.

    Raises:
        ValueError: for validation data given with `cv`.
        TypeError: for data that cannot be indexed by sample (a dataset, a
            generator, a `PyDataset`).
    """
    for name in _HELD_OUT:
        if named.get(name):
            raise ValueError(
                f"Invalid value for argument `{name}`. Expected no validation "
                f"data with `cv`. Received: {name}="
                f"{_validation.short_repr(named[name])}. With `cv=`, each trial "
                "is scored on the folds it holds out: pass the whole data set "
                "as `x`, `y`."
            )
    x, y = named.get("x"), named.get("y")
    if not _combine.is_array_structure(x) or _combine.is_dataset(x):
        raise TypeError(
            _validation.invalid_type(
                "x",
                "arrays or tensors (or a dict / list of them) with `cv`",
                x,
                "Cross-validation indexes the data by sample.",
            )
        )
    count = _combine.samples(x)
    features = np.zeros((count or 0, 1))
    target = None if y is None else _labels(y)
    splitter = _splitter(cv, target, seed)
    splits = tuple(
        (np.asarray(train, dtype=np.int64), np.asarray(val, dtype=np.int64))
        for train, val in splitter.split(features, target)
    )
    digest = hashlib.sha256()
    for _, val in splits:
        digest.update(np.sort(val).tobytes())
        digest.update(b"|")
    return Folds(splits, digest.hexdigest()[:16])


def _labels(y: Any) -> np.ndarray | None:
    leaves = keras.tree.flatten(y)
    if len(leaves) != 1:
        return None
    target = np.asarray(_to_numpy(leaves[0]))
    if target.ndim == 2 and target.shape[1] > 1 and np.allclose(target.sum(1), 1):
        return np.argmax(target, axis=1)  # one-hot rows
    return target.reshape(len(target), -1)[:, 0] if target.ndim > 1 else target


def _splitter(cv: Any, target: np.ndarray | None, seed: int | None) -> Any:
    if not isinstance(cv, int):
        return cv
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.utils.multiclass import type_of_target

    if target is not None and type_of_target(target) in {"binary", "multiclass"}:
        return StratifiedKFold(cv, shuffle=True, random_state=seed)
    return KFold(cv, shuffle=True, random_state=seed)


def _to_numpy(array: Any) -> Any:
    if isinstance(array, np.ndarray) or hasattr(array, "iloc"):
        return array
    if type(array).__module__.startswith("scipy.sparse"):
        return array
    return keras.ops.convert_to_numpy(array)


def _take(data: Any, indices: np.ndarray) -> Any:
    def take(array: Any) -> Any:
        if array is None:
            return None
        if hasattr(array, "iloc"):
            return array.iloc[indices]
        return _to_numpy(array)[indices]

    return keras.tree.map_structure(take, data)


@dataclass(frozen=True)
class FoldRecord:
    """What a finished fold left: its objective value, metrics and epochs."""

    fold: int
    value: float
    metrics: dict[str, float]
    best_step: int
    epochs_run: int
    returned_history: bool
    seconds: float
    params: int | None
    fingerprint: str


def read_records(trial_dir: str, folds: Folds | None = None) -> list[FoldRecord]:
    """The trial's recorded folds (those of `folds`, if given), in order."""
    path = os.path.join(trial_dir, FOLDS_FILE)
    if not _kt.exists(path):
        return []
    document = _kt.load_json(path)
    records = [FoldRecord(**entry) for entry in document.get("folds", [])]
    if folds is not None:
        records = [
            r
            for r in records
            if r.fingerprint == folds.fingerprint and document.get("k") == len(folds)
        ]
    return sorted(records, key=lambda r: r.fold)


def fold_checkpoint(path: str, fold: int) -> str:
    """The checkpoint of one fold, beside the trial's: `checkpoint.fold<k>...`."""
    folder, name = os.path.split(path)
    stem, dot, rest = name.partition(".")
    return os.path.join(folder, f"{stem}.fold{fold}{dot}{rest}")


def median_epochs(counts: list[int]) -> int:
    """The median of epoch counts, halves rounded up."""
    return max(1, math.floor(statistics.median(counts) + 0.5))


def run_folds(
    tuner: Any,
    trial: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run: Callable[..., Any],
) -> dict[str, float]:
    """Runs a trial's unfinished folds through `run` and returns its metrics.

    Args:
        tuner: the tuner, with `cv` set.
        trial: the trial.
        args: the positional `fit` arguments the trial received.
        kwargs: its keyword arguments.
        run: keras-tuner's `run_trial(trial, *args, **kwargs)` for one fold.

    Returns:
        The trial's metrics: the mean over folds of each metric, and for the
        objective the fold values and their standard deviation.
    """
    named = _data.fit_arguments(args, kwargs)
    folds = tuner._cv_folds(named)
    trial_dir = tuner.get_trial_dir(trial.trial_id)
    records = {r.fold: r for r in read_records(trial_dir, folds)}
    x, y = named.pop("x"), named.pop("y", None)
    weights = named.pop("sample_weight", None)
    for fold, (train, val) in enumerate(folds.splits):
        if fold in records:
            continue
        start = time.monotonic()
        fold_kwargs = dict(named)
        if weights is not None:
            fold_kwargs["sample_weight"] = _take(weights, train)
        validation: tuple[Any, ...] = (_take(x, val), _take(y, val))
        if weights is not None:
            validation += (_take(weights, val),)
        fold_kwargs["validation_data"] = validation
        tuner._current_fold = fold
        try:
            results = run(trial, _take(x, train), _take(y, train), **fold_kwargs)
        finally:
            tuner._current_fold = None
        items = results if isinstance(results, list) else [results]
        histories = [r for r in items if isinstance(r, keras.callbacks.History)]
        _trials.check_objective_logged(tuner.oracle.objective, histories)
        metrics, best_step = _kt.trial_metrics(results, tuner.oracle.objective)
        records[fold] = FoldRecord(
            fold=fold,
            value=float(tuner.oracle.objective.get_value(metrics)),
            metrics=metrics,
            best_step=best_step,
            epochs_run=sum(len(h.epoch) for h in histories),
            returned_history=bool(items) and len(histories) == len(items),
            seconds=time.monotonic() - start,
            params=tuner._trial_params.get(str(trial.trial_id)),
            fingerprint=folds.fingerprint,
        )
        _kt.save_json(
            os.path.join(trial_dir, FOLDS_FILE),
            {"k": len(folds), "folds": [asdict(r) for r in records.values()]},
        )
    done = [records[k] for k in sorted(records)]
    _keep_best_checkpoint(tuner, trial, done)
    RetrainStore.write_fit_record(
        trial_dir,
        returned_history=all(r.returned_history for r in done),
        epochs_run=[r.epochs_run for r in done],
        seconds=sum(r.seconds for r in done),
        params=next((r.params for r in done if r.params is not None), None),
    )
    return trial_metrics(done, tuner.oracle.objective)


def trial_metrics(records: list[FoldRecord], objective: Any) -> dict[str, float]:
    """The mean of every metric over the folds, plus the objective's fold values
    (`<name>_fold<k>`) and their standard deviation (`<name>_std`, NumPy's,
    as scikit-learn's `std_test_score`)."""
    names = set.intersection(*(set(r.metrics) for r in records))
    metrics = {
        name: float(np.mean([r.metrics[name] for r in records])) for name in names
    }
    values = [r.value for r in records]
    metrics[objective.name] = float(np.mean(values))
    for record in records:
        metrics[f"{objective.name}_fold{record.fold}"] = record.value
    metrics[f"{objective.name}_std"] = float(np.std(values))
    return metrics


def _keep_best_checkpoint(tuner: Any, trial: Any, records: list[FoldRecord]) -> None:
    """Copies the best fold's checkpoint to the trial's, for `get_best_models()`."""
    objective = tuner.oracle.objective
    best = records[0]
    for record in records[1:]:
        if objective.better_than(record.value, best.value):
            best = record
    tuner._current_fold = None
    path = _kt.checkpoint_path(tuner, trial.trial_id)
    source = fold_checkpoint(path, best.fold)
    if os.path.exists(source):
        shutil.copyfile(source, path)
