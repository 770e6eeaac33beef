"""Real processes: a search killed mid-trial and resumed; distributed tuning.

Each test starts `tests/integration/_search_process.py` in fresh interpreters
(a search of a tiny MLP on the digits, 500 training + 150 validation samples),
kills some of them with SIGKILL while a trial or a retrain is under way, or
has them die in the middle of writing a project file (`--die-writing`), and
reads what happened from the project directory (`trial.json` files) and from
the records the processes wrote for every `fit` call.

They run once (`backend_independent`): they test processes, files and gRPC,
which no backend changes, and each starts two to four interpreters (about 9 s
of CPU apiece to import TensorFlow and Keras), which three passes cannot afford.
The interpreters run on TensorFlow, whatever the pass's backend: it is the
cheapest here (JAX recompiles every trial: twice the CPU).
The two distributed tests start three and four interpreters at once, and
the second chain of kills inside writes six in turn: they are marked `slow`
(about 35, 45 and 70 s of CPU): run them with
`KERAS_BACKEND=tensorflow pytest -m slow tests/integration/test_tuner_processes.py`.
The retrain itself is tested on every backend in `tests/tuners/test_retrain.py`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TRAIN, VALIDATION = 500, 150
DEADLINE = 240.0  # seconds: a bound, never a wait
PROCESS_BACKEND = "tensorflow"

pytestmark = [pytest.mark.backend_independent, pytest.mark.processes]


class Processes:
    """Starts search processes and kills every one still alive at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.directory = tmp_path / "tuning"
        self.records = tmp_path / "records"
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.started: list[subprocess.Popen[str]] = []
        self._log_files: list[Any] = []

    def start(
        self, *extra: str, env: dict[str, str] | None = None, name: str = "search"
    ) -> subprocess.Popen[str]:
        log = open(self.logs / f"{name}-{len(self.started)}.log", "w")  # noqa: SIM115
        self._log_files.append(log)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration._search_process",
                "--directory",
                str(self.directory),
                "--records",
                str(self.records),
                *extra,
            ],
            cwd=REPO,
            env={
                **os.environ,
                "KERAS_BACKEND": PROCESS_BACKEND,
                "TF_CPP_MIN_LOG_LEVEL": "2",
                **(env or {}),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.started.append(process)
        return process

    def output(self, process: subprocess.Popen[str]) -> str:
        index = self.started.index(process)
        return next(self.logs.glob(f"*-{index}.log")).read_text()

    def wait(
        self, process: subprocess.Popen[str], deadline: float, returncode: int = 0
    ) -> str:
        """Waits for `process` to exit with `returncode`; returns its output."""
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running at the deadline:\n{self.output(process)}")
        output = self.output(process)
        assert process.returncode == returncode, output
        return output

    def wait_for_file(
        self, path: Path, deadline: float, *watched: subprocess.Popen[str]
    ) -> dict[str, Any]:
        """Polls for `path` until `deadline`; fails early if a watched process ends."""
        while time.monotonic() < deadline:
            if path.exists():
                return json.loads(path.read_text())
            for process in watched:
                if process.poll() is not None:
                    pytest.fail(
                        f"process exited ({process.returncode}) before writing "
                        f"{path.name}:\n{self.output(process)}"
                    )
            time.sleep(0.1)
        pytest.fail(f"{path} did not appear before the deadline")

    def kill(self, process: subprocess.Popen[str]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        for log in self._log_files:
            log.close()

    # What the processes left behind.

    def project_files_are_whole(self) -> None:
        """Every JSON file of the project parses: none was left cut or empty."""
        for path in sorted((self.directory / "search").rglob("*.json")):
            text = path.read_text()
            try:
                json.loads(text)
            except json.JSONDecodeError:
                pytest.fail(f"{path} is damaged: {text[:80]!r}")

    def trials(self) -> dict[str, dict[str, Any]]:
        project = self.directory / "search"
        return {
            path.parent.name: json.loads(path.read_text())
            for path in project.glob("trial_*/trial.json")
        }

    def fits(self, kind: str) -> list[dict[str, Any]]:
        return [
            json.loads(path.read_text())
            for path in sorted(self.records.glob(f"{kind}-*.json"))
        ]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _values_key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


def _completed_values(trials: dict[str, dict[str, Any]]) -> set[str]:
    return {
        _values_key(t["hyperparameters"]["values"])
        for t in trials.values()
        if t["status"] == "COMPLETED"
    }


def _best_trials(trials: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The completed trials with the best score (several, on a tie)."""
    completed = [t for t in trials.values() if t["status"] == "COMPLETED"]
    best = max(t["score"] for t in completed)
    return [t for t in completed if t["score"] == best]


def _assert_one_retrain_of_the_best(
    processes: Processes, trials: dict[str, dict[str, Any]], pid: int
) -> dict[str, Any]:
    retrains = processes.fits("retrain")
    assert len(retrains) == 1, retrains
    (retrain,) = retrains
    (best,) = [
        t
        for t in _best_trials(trials)
        if t["hyperparameters"]["values"] == retrain["values"]
    ]
    assert retrain["pid"] == pid
    assert retrain["samples"] == TRAIN + VALIDATION
    assert retrain["epochs"] == best["best_step"] + 1
    assert (processes.directory / "search" / "retrained.keras").is_file()
    return retrain


def test_a_search_killed_mid_trial_resumes_keeps_completed_trials_and_retrains(
    processes: Processes,
) -> None:
    deadline = time.monotonic() + DEADLINE
    first = processes.start("--max-trials", "3", "--block-at-fit", "2")
    blocked = processes.wait_for_file(
        processes.records / "blocked-tuner0.json", deadline, first
    )
    processes.kill(first)

    before = processes.trials()
    statuses = sorted(t["status"] for t in before.values())
    assert statuses == ["COMPLETED", "RUNNING"]
    completed_before = _completed_values(before)
    assert not processes.fits("retrain")

    second = processes.start("--max-trials", "3")
    output = processes.wait(second, deadline)

    after = processes.trials()
    assert len(after) == 3
    assert all(t["status"] == "COMPLETED" for t in after.values())
    # Every trial completed before the kill kept its result ...
    for trial_id, trial in before.items():
        if trial["status"] == "COMPLETED":
            assert after[trial_id]["score"] == trial["score"]
    # ... and was not run again: the second process ran the killed trial and
    # the one never started, nothing else.
    second_fits = [f for f in processes.fits("trial") if f["pid"] == second.pid]
    refit = {_values_key(f["values"]) for f in second_fits}
    assert len(second_fits) == 2
    assert not refit & completed_before
    assert _values_key(blocked["values"]) in refit
    retrain = _assert_one_retrain_of_the_best(processes, after, second.pid)
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["retrain_info"]["samples"] == retrain["samples"]
    assert summary["retrain_info"]["epochs"] == retrain["epochs"]


def _distributed_env(port: int, tuner_id: str) -> dict[str, str]:
    return {
        "KERASTUNER_TUNER_ID": tuner_id,
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
    }


@pytest.mark.slow
def test_distributed_chief_and_two_workers_complete_every_trial_and_retrain_once(
    processes: Processes,
) -> None:
    deadline = time.monotonic() + DEADLINE
    port = _free_port()
    chief = processes.start(
        "--max-trials", "4", env=_distributed_env(port, "chief"), name="chief"
    )
    workers = [
        processes.start(
            "--max-trials", "4", env=_distributed_env(port, tuner_id), name=tuner_id
        )
        for tuner_id in ("tuner0", "tuner1")
    ]
    for worker in workers:
        processes.wait(worker, deadline)
    processes.wait(chief, deadline)

    trials = processes.trials()
    assert len(trials) == 4
    assert all(t["status"] == "COMPLETED" for t in trials.values())
    fits = processes.fits("trial")
    worker_pids = {w.pid for w in workers}
    assert len(fits) == 4 and {f["pid"] for f in fits} <= worker_pids
    assert {_values_key(f["values"]) for f in fits} == _completed_values(trials)
    retrain = _assert_one_retrain_of_the_best(processes, trials, chief.pid)
    # The chief retrained after the workers' last trial had ended.
    assert retrain["start"] >= max(f["end"] for f in fits)


@pytest.mark.slow
def test_a_killed_worker_restarted_with_its_id_gets_its_trial_back(
    processes: Processes,
) -> None:
    deadline = time.monotonic() + DEADLINE
    port = _free_port()
    chief = processes.start(
        "--max-trials",
        "4",
        "--verbose",
        "1",
        env=_distributed_env(port, "chief"),
        name="chief",
    )
    doomed = processes.start(
        "--max-trials",
        "4",
        "--block-at-fit",
        "1",
        env=_distributed_env(port, "tuner0"),
        name="tuner0",
    )
    blocked = processes.wait_for_file(
        processes.records / "blocked-tuner0.json", deadline, chief, doomed
    )
    processes.kill(doomed)
    other = processes.start(
        "--max-trials", "4", env=_distributed_env(port, "tuner1"), name="tuner1"
    )

    # The other worker runs out of trials; the chief waits for the dead one's.
    processes.wait(other, deadline)
    assert chief.poll() is None, processes.output(chief)
    assert not processes.fits("retrain")
    running = [t for t in processes.trials().values() if t["status"] == "RUNNING"]
    assert [t["hyperparameters"]["values"] for t in running] == [blocked["values"]]

    restarted = processes.start(
        "--max-trials", "4", env=_distributed_env(port, "tuner0"), name="tuner0"
    )
    processes.wait(restarted, deadline)
    chief_output = processes.wait(chief, deadline)
    (trial_id,) = [t["trial_id"] for t in running]
    assert f"waiting for trial {trial_id} on worker 'tuner0'" in chief_output

    trials = processes.trials()
    assert len(trials) == 4
    assert all(t["status"] == "COMPLETED" for t in trials.values())
    fits = processes.fits("trial")
    restarted_fits = [f for f in fits if f["pid"] == restarted.pid]
    assert [f["values"] for f in restarted_fits] == [blocked["values"]]
    assert {_values_key(f["values"]) for f in fits} == _completed_values(trials)
    retrain = _assert_one_retrain_of_the_best(processes, trials, chief.pid)
    assert retrain["start"] >= max(f["end"] for f in fits)


def _summary(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


def test_a_retrain_of_an_earlier_best_is_refused_once_a_later_search_found_a_better(
    processes: Processes,
) -> None:
    # Issue 26, row 4: a later search finds a better trial and is killed in
    # its retrain's fit; a serving script that reloads the project used to get
    # the earlier search's retrained model, silently.
    deadline = time.monotonic() + DEADLINE
    first = processes.start("--max-trials", "1")
    processes.wait(first, deadline)
    (earlier,) = processes.fits("retrain")
    earlier_trial = _summary(processes.output(first))["retrain_info"]["trial_id"]

    # Fit 1 is the new trial (the best, by construction), fit 2 its retrain.
    second = processes.start(
        "--max-trials", "2", "--boost-fit", "1", "--block-at-fit", "2"
    )
    blocked = processes.wait_for_file(
        processes.records / "blocked-tuner0.json", deadline, second
    )
    processes.kill(second)
    (best,) = _best_trials(processes.trials())
    assert best["hyperparameters"]["values"] == blocked["values"]
    assert blocked["values"] != earlier["values"]
    assert [f["values"] for f in processes.fits("retrain")] == [earlier["values"]]

    # A fresh process serves from the project, then searches again.
    third = processes.start("--max-trials", "2", "--serve-first")
    summary = _summary(processes.wait(third, deadline))
    assert "units" not in summary["served"], "the earlier retrain was served"
    error = summary["served"]["error"]
    assert f"is of trial {earlier_trial} " in error
    assert f"the best trial is trial {best['trial_id']} " in error
    assert "Run `search` again (it retrains)" in error
    # ... which retrains the best trial, once, and it is served from then on.
    third_retrains = [f for f in processes.fits("retrain") if f["pid"] == third.pid]
    assert [f["values"] for f in third_retrains] == [best["hyperparameters"]["values"]]
    assert summary["retrain_info"]["trial_id"] == best["trial_id"]
    assert not [f for f in processes.fits("trial") if f["pid"] == third.pid]


def _resume_through_kills(
    processes: Processes, kills: list[str], max_trials: int = 3
) -> dict[str, Any]:
    """Runs one search process per kill point (`--die-writing`), each resuming
    the project the last one left, then one that finishes it.

    After each death, every project file must be whole; the trials completed
    before a process started must keep their scores and never be fit again.
    Returns the last process's summary.
    """
    deadline = time.monotonic() + DEADLINE * 2
    completed: dict[str, dict[str, Any]] = {}
    for kill in [*kills, None]:
        extra = ["--die-writing", kill] if kill else ["--load-best"]
        process = processes.start("--max-trials", str(max_trials), *extra)
        output = processes.wait(process, deadline, returncode=17 if kill else 0)
        processes.project_files_are_whole()
        trials = processes.trials()
        for trial_id, trial in completed.items():
            assert trials[trial_id]["status"] == "COMPLETED", (kill, trial_id)
            assert trials[trial_id]["score"] == trial["score"], (kill, trial_id)
        refit = {
            _values_key(f["values"])
            for f in processes.fits("trial")
            if f["pid"] == process.pid
        }
        assert not refit & _completed_values(completed), f"refit after {kill}"
        completed = {
            trial_id: trial
            for trial_id, trial in trials.items()
            if trial["status"] == "COMPLETED"
        }
    assert len(trials) == max_trials
    assert all(t["status"] == "COMPLETED" for t in trials.values())
    assert {_values_key(f["values"]) for f in processes.fits("trial")} == (
        _completed_values(trials)
    )
    _assert_one_retrain_of_the_best(processes, trials, process.pid)
    return _summary(output)


def test_a_search_killed_while_keras_tuner_writes_its_files_resumes_with_all_trials(
    processes: Processes,
) -> None:
    # Issue 26, row 6: keras-tuner rewrites oracle.json, trial.json and
    # tuner0.json in place; a kill there left an empty file and a project
    # that could not resume (a bare JSONDecodeError). Each kill here is half
    # way through the write named; each next process resumes the project.
    _resume_through_kills(
        processes,
        [
            # Counted from the process's F-th fit (`@F`): trial 1's end (its
            # trial.json: after the update, the end) ...
            "trial.json:2@2",
            # ... trial 1 run again, ending: oracle.json after its trial.json ...
            "oracle.json:1@1",
            # ... and tuner0.json, after trial 2 ended.
            "tuner0.json:1@1",
        ],
    )


@pytest.mark.slow
def test_a_search_killed_while_it_writes_any_other_file_resumes_with_all_trials(
    processes: Processes,
) -> None:
    summary = _resume_through_kills(
        processes,
        [
            # A fresh project, after trial 0: keras-tuner's first tuner0.json,
            # by which a project is reloaded at all.
            "tuner0.json:1@1",
            # Trial 1 created: its trial.json is written, oracle.json not (the
            # search's first write of oracle.json is at its start).
            "oracle.json:2",
            "checkpoint.weights.h5:1",  # trial 1's checkpoint, half written
            "fit_result.json:1",  # trial 1's fit result (this package's)
            "build_config.json:1",  # trial 1's build config
        ],
    )
    # The best trial's checkpoint loads: the one cut in half was written anew.
    best = _best_trials(processes.trials())
    assert summary["best_units"] in {
        t["hyperparameters"]["values"]["units"] for t in best
    }
