"""The trials table (`results_table()`, `to_csv`) and the `select=` rules."""

from __future__ import annotations

import csv
import json

import pytest

from keras_bettermodels.tuners import RandomSearch, ResultsTable, one_standard_error
from tests.tuners._builders import build_tiny


def _row(trial_id, objective, folds, params, status="COMPLETED"):
    return {
        "trial_id": trial_id,
        "status": status,
        "objective": objective,
        "fold_values": folds,
        "params": params,
    }


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("direction", "rows", "expected"),
    [
        # best "1" (0.90, SE 0.05): "0" is within it and smaller.
        (
            "max",
            [
                _row("0", 0.86, [0.8, 0.9, 0.88], 100),
                _row("1", 0.90, [0.8, 0.95, 0.95], 1000),
            ],
            "0",
        ),
        # "0" is more than one SE (0.01) below: the best stays.
        (
            "max",
            [
                _row("0", 0.80, [0.8, 0.8, 0.8], 100),
                _row("1", 0.90, [0.89, 0.9, 0.91], 1000),
            ],
            "1",
        ),
        # losses: lower is better.
        (
            "min",
            [
                _row("0", 0.30, [0.2, 0.3, 0.4], 1000),
                _row("1", 0.35, [0.3, 0.35, 0.4], 10),
                _row("2", 0.10, [0.1, 0.1, 0.1], 5, status="FAILED"),
            ],
            "1",
        ),
    ],
)
def test_one_standard_error_takes_the_smallest_model_within_one_se_of_the_best(
    direction, rows, expected
):
    table = ResultsTable(rows, objective="x", direction=direction)
    assert one_standard_error(table)["trial_id"] == expected


@pytest.mark.backend_independent
def test_one_standard_error_needs_folds_and_a_direction():
    rows = [_row("0", 0.9, [], 10)]
    with pytest.raises(ValueError, match="Pass `cv=`"):
        one_standard_error(ResultsTable(rows, objective="x", direction="max"))
    with pytest.raises(ValueError, match=r"argument `direction`"):
        one_standard_error(rows)
    assert one_standard_error([_row("0", 0.9, [0.9, 0.9], 1)], "max")["trial_id"] == "0"


@pytest.mark.backend_independent
def test_to_csv_writes_a_column_per_key_and_lists_as_json(tmp_path):
    table = ResultsTable(
        [_row("0", 0.5, [0.4, 0.6], 10), {"trial_id": "1", "status": "FAILED"}],
        objective="val_accuracy",
        direction="max",
    )
    path = tmp_path / "trials.csv"
    table.to_csv(path)
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows[0]["trial_id"] == "0" and json.loads(rows[0]["fold_values"]) == [
        0.4,
        0.6,
    ]
    assert rows[1]["status"] == "FAILED" and rows[1]["objective"] == ""


@pytest.mark.backend_independent
def test_select_must_be_callable():
    with pytest.raises(TypeError, match=r"argument `select`"):
        RandomSearch(lambda hp: None, "val_loss", max_trials=1, select="best")


_build = build_tiny


@pytest.mark.any_backend
def test_a_search_without_cv_has_a_row_per_trial_and_select_picks_the_retrain(
    digits, tmp_path
):
    x, y = digits
    chosen = []

    def last_row(table):  # scikit-learn's refit=callable returns an index
        chosen.append(table)
        return len(table) - 1

    tuner = RandomSearch(
        _build,
        "val_accuracy",
        max_trials=2,
        seed=2,
        select=last_row,
        directory=tmp_path,
    )
    tuner.search(
        x[:80], y[:80], epochs=2, validation_data=(x[80:120], y[80:120]), verbose=0
    )

    table = tuner.results_table()
    assert [row["trial_id"] for row in table] == list(tuner.oracle.trials)
    for row, trial in zip(table, tuner.oracle.trials.values(), strict=True):
        assert row["status"] == "COMPLETED"
        assert row["units"] == trial.hyperparameters.get("units")
        assert row["objective"] == trial.score
        assert row["best_epoch"] == trial.best_step + 1
        assert row["epochs_run"] == 2 and row["seconds"] > 0
        assert (
            row["params"] == 64 * row["units"] + row["units"] + 10 * row["units"] + 10
        )
        assert "fold_values" not in row
    assert tuner.retrain_info.trial_id == table[-1]["trial_id"]
    assert chosen and chosen[0] == table

    import pandas  # a dev dependency: users build frames from the table

    frame = pandas.DataFrame(table)
    assert list(frame["trial_id"]) == [row["trial_id"] for row in table]
