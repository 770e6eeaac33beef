"""benchmarks/prechelt_study.py: quick mode, replay against real fits, measures."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "prechelt_study.py"
# The study runs on JAX (`make bench-prechelt`): its quick mode and the real fits
# behind it are tested there; the replay and the measures on every backend.
JAX = pytest.mark.jax_only


@pytest.fixture(scope="module")
def study():
    """The script, imported as a module (it is not in a package)."""
    spec = importlib.util.spec_from_file_location("prechelt_study", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def quick(study, tmp_path_factory):
    """Runs `--quick` in this process; returns the output folder and stdout."""
    out = tmp_path_factory.mktemp("prechelt")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert study.main(["--quick", "--out", str(out)]) == 0
    return out, printed.getvalue()


# ------------------------------------------------------------- quick mode


@JAX
def test_quick_mode_writes_a_summary_row_per_criterion(study, quick):
    out, printed = quick
    rows = _read(out / "prechelt.csv")
    assert [row["criterion"] for row in rows] == list(study.CRITERIA)
    assert len(study.CRITERIA) == 17
    for row in rows:
        assert int(row["runs"]) == study.QUICK.seeds
        assert 0 <= float(row["never_stops"]) <= 1
        assert 1 <= float(row["epochs_mean"]) <= study.QUICK.epochs
        # Test loss of the kept weights can't beat the run's best test loss.
        assert float(row["badness_mean"]) >= 1
        assert float(row["slowness_std"]) >= 0 and float(row["badness_std"]) >= 0
        if row["criterion"] in study.PRECHELT:
            assert float(row["slowness_mean"]) >= 1
    assert "| GL1 |" in printed and "| patience10 |" in printed
    assert "UP2 → UP8" in printed
    assert "Drew" not in printed  # no plot in quick mode unless asked


@JAX
def test_quick_mode_writes_every_run_and_criterion(study, quick):
    out, _ = quick
    rows = _read(out / "prechelt_runs.csv")
    assert len(rows) == study.QUICK.seeds * len(study.CRITERIA)
    for seed in range(study.QUICK.seeds):
        mine = [row for row in rows if row["seed"] == str(seed)]
        assert [row["criterion"] for row in mine] == list(study.CRITERIA)
        prechelt = [row for row in mine if row["criterion"] in study.PRECHELT]
        # Slowness is relative to the fastest of Prechelt's criteria in the run.
        assert min(float(row["slowness"]) for row in prechelt) == 1.0
        for row in mine:
            assert 1 <= int(row["kept_epoch"]) <= int(row["epochs"])
            assert int(row["epochs"]) <= study.QUICK.epochs
            assert row["stopped"] in ("True", "False")
            if row["stopped"] == "False":
                assert int(row["epochs"]) == study.QUICK.epochs
            assert float(row["excess_error_pp"]) >= 0  # noisy is classification


@JAX
def test_the_plot_is_a_png(study, quick, tmp_path):
    pytest.importorskip("matplotlib")
    out, _ = quick
    rows = _read(out / "prechelt.csv")
    summaries = [
        study.Summary(
            **{
                name: (
                    value
                    if name == "criterion"
                    else int(value)
                    if name == "runs"
                    else float(value or "nan")
                )
                for name, value in row.items()
            }
        )
        for row in rows
    ]
    path = tmp_path / "plot.png"
    study.plot(summaries, path, "quick")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------- replay equals a real fit


def _recorded_stops(out: Path, seed: int = 0) -> dict[str, dict[str, str]]:
    return {
        row["criterion"]: row
        for row in _read(out / "prechelt_runs.csv")
        if row["seed"] == str(seed)
    }


@JAX
def test_a_real_fit_with_every_callback_stops_where_the_replay_does(study, quick):
    # The same run as the quick study's seed 0, trained again with our
    # EarlyStopping for every criterion attached: the first to fire ends it.
    out, _ = quick
    recorded = _recorded_stops(out)
    callbacks = {name: study.make_callback(name) for name in study.CRITERIA}
    curves = study.train(
        "noisy", "medium", 0, study.QUICK.epochs, callbacks=list(callbacks.values())
    )
    last = curves.epochs
    assert last < study.QUICK.epochs, "no criterion fired: nothing is compared"
    fired = 0
    for name, callback in callbacks.items():
        row = recorded[name]
        if callback.stopping_reason is not None:
            fired += 1
            assert callback.stopped_epoch + 1 == last
            assert row["stopped"] == "True" and int(row["epochs"]) == last, name
            assert int(row["kept_epoch"]) == callback.best_epoch + 1, name
        else:
            assert row["stopped"] == "False" or int(row["epochs"]) > last, name
        # And the replay of this fit's own logs decides the same.
        replayed = study.replay(name, curves.loss, curves.val_loss)
        assert replayed.stopped == (callback.stopping_reason is not None), name
        assert replayed.epochs == last
        assert replayed.kept_epoch == callback.best_epoch + 1, name
    assert fired >= 1


@JAX
def test_a_real_fit_with_the_latest_stopping_criterion_stops_where_recorded(
    study, quick
):
    out, _ = quick
    recorded = _recorded_stops(out)
    stopped = [row for row in recorded.values() if row["stopped"] == "True"]
    latest = max(stopped, key=lambda row: int(row["epochs"]))
    assert int(latest["epochs"]) > min(int(row["epochs"]) for row in stopped)
    callback = study.make_callback(latest["criterion"])
    curves = study.train("noisy", "medium", 0, study.QUICK.epochs, callbacks=[callback])
    assert callback.stopping_reason is not None
    assert callback.stopped_epoch + 1 == curves.epochs == int(latest["epochs"])
    assert callback.best_epoch + 1 == int(latest["kept_epoch"])


# ------------------------------------------------ hand-made curves

# Epochs 1..10. Validation loss: best 0.5 at epoch 4, a new best 0.45 at 7.
VAL = [1.0, 0.8, 0.6, 0.5, 0.52, 0.55, 0.45, 0.47, 0.50, 0.56]
FALLING = [1.0 - 0.1 * i for i in range(10)]  # training still improving
FLAT = [0.1] * 10  # training has stopped improving: P_5 = 0


@pytest.mark.parametrize(
    ("criterion", "train", "expected"),
    [
        ("GL1", FALLING, (True, 5, 4)),  # GL(5) = 4 % > 1
        ("GL3", FALLING, (True, 5, 4)),
        ("GL5", FALLING, (True, 6, 4)),  # GL(6) = 10 % > 5
        ("PQ0.5", FLAT, (True, 5, 4)),  # GL / P_5 = 4 / 0 = inf
        ("PQ0.5", FALLING, (False, 10, 7)),  # PQ(5) = 4 / 333, PQ(10) = 24 / 2000
        ("UP2", FALLING, (False, 10, 7)),  # needs t - 2 * 5 >= 1
        ("patience3", FALLING, (True, 10, 7)),  # 3 epochs without a new best
        ("patience5", FALLING, (False, 10, 7)),
    ],
)
def test_replay_stops_where_the_criterion_says(study, criterion, train, expected):
    stop = study.replay(criterion, train, VAL)
    assert (stop.stopped, stop.epochs, stop.kept_epoch) == expected


def _curves(study, test_loss, test_error=None):
    return study.Curves(
        problem="made",
        size="up",
        seed=0,
        loss=FALLING,
        val_loss=VAL,
        test_loss=test_loss,
        test_error=test_error,
        seconds=0.0,
    )


TEST_LOSS = [1.0, 0.9, 0.8, 0.6, 0.55, 0.5, 0.48, 0.5, 0.6, 0.7]
TEST_ERROR = [0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.12, 0.15, 0.2, 0.3]


@pytest.mark.backend_independent
def test_slowness_and_badness_of_known_stops(study):
    stops = {
        "GL1": study.Stop("GL1", True, 5, 4),
        "GL5": study.Stop("GL5", True, 6, 4),
        "UP2": study.Stop("UP2", False, 10, 7),
        "patience3": study.Stop("patience3", True, 4, 3),
    }
    curves = _curves(study, TEST_LOSS, TEST_ERROR)
    outcomes = {o.criterion: o for o in study.measure(curves, stops)}
    # GL1 is the fastest of Prechelt's criteria here; patience3 is not one.
    assert outcomes["GL1"].slowness == 1.0
    assert outcomes["GL5"].slowness == pytest.approx(6 / 5)
    assert outcomes["UP2"].slowness == pytest.approx(10 / 5)
    assert outcomes["patience3"].slowness == pytest.approx(4 / 5)
    assert {o.fastest_epochs for o in outcomes.values()} == {5}
    # Badness: test loss of the kept epoch over the run's best (0.48, epoch 7).
    assert outcomes["GL1"].badness == pytest.approx(0.6 / 0.48)
    assert outcomes["UP2"].badness == pytest.approx(1.0)
    assert outcomes["patience3"].badness == pytest.approx(0.8 / 0.48)
    # Against the fastest criterion's kept weights (epoch 4, test loss 0.6).
    assert outcomes["GL5"].badness_vs_fastest == pytest.approx(1.0)
    assert outcomes["UP2"].badness_vs_fastest == pytest.approx(0.48 / 0.6)
    # Classification error of the kept epoch over the run's lowest (0.1).
    assert outcomes["GL1"].excess_error_pp == pytest.approx(10.0)
    assert outcomes["UP2"].excess_error_pp == pytest.approx(2.0)
    assert outcomes["UP2"].test_loss == 0.48 and not outcomes["UP2"].stopped


@pytest.mark.backend_independent
def test_regression_runs_have_no_classification_error(study):
    stops = {"GL1": study.Stop("GL1", True, 5, 4)}
    (outcome,) = study.measure(_curves(study, TEST_LOSS), stops)
    assert outcome.excess_error_pp is None


@pytest.mark.backend_independent
def test_summary_and_trade_off_over_two_runs(study):
    def outcome(seed, criterion, epochs, test_loss, stopped=True, relative=1.0):
        return study.Outcome(
            problem="made",
            size="up",
            seed=seed,
            criterion=criterion,
            stopped=stopped,
            epochs=epochs,
            kept_epoch=1,
            fastest_epochs=10,
            test_loss=test_loss,
            slowness=epochs / 10,
            badness=test_loss / 0.5,
            badness_vs_fastest=relative,
            excess_error_pp=None,
        )

    outcomes = [
        outcome(0, "UP2", 10, 0.6),
        outcome(0, "UP8", 40, 0.5, relative=0.9),
        outcome(1, "UP2", 10, 0.5),
        outcome(1, "UP8", 50, 0.55, stopped=False, relative=1.0),
    ]
    summaries = {s.criterion: s for s in study.summarize(outcomes)}
    assert list(summaries) == ["UP2", "UP8"]  # CRITERIA order, present ones only
    up8 = summaries["UP8"]
    assert up8.runs == 2 and up8.never_stops == 0.5
    assert up8.time_ratio == pytest.approx(90 / 20)
    assert up8.slowness_mean == pytest.approx(4.5)
    assert up8.slowness_std == pytest.approx(math.sqrt(0.5))  # sample std
    assert up8.badness_mean == pytest.approx(1.05)
    assert up8.badness_median == pytest.approx(1.05)
    assert up8.better_than_fastest == 0.5 and up8.worse_than_fastest == 0.0
    assert up8.badness_vs_fastest_mean == pytest.approx(0.95)
    assert math.isnan(up8.excess_error_pp_mean)

    (up,) = study.trade_offs(outcomes)
    assert (up.fast, up.slow) == ("UP2", "UP8")
    assert up.time_ratio == pytest.approx(90 / 20)
    assert up.test_change == pytest.approx((0.5 / 0.6 + 0.55 / 0.5) / 2 - 1)
    assert up.slow_better == 0.5 and up.slow_worse == 0.5


@pytest.mark.backend_independent
def test_an_unknown_problem_is_a_value_error(study):
    with pytest.raises(ValueError, match=r"Invalid value for argument `problem`"):
        study.load_problem("mnist", 0)
