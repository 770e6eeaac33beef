"""The retrain's model and info as one unit: killed at each step, reloaded afresh.

The file-level tests kill a child process (`os._exit`) at each step of
`_store.save` and read the files back in another fresh process: the old
pair or the new pair, never a mix. Two children saving into one project at
once are paused at chosen steps, so that they interleave as the issue's race
did. The child loads `_store.py` by its path, so it starts in
milliseconds without Keras. The tuner tests plant the issue's cases: a crash
after the new model is in place but before its info, a model file of the
same architecture with other weights, and a pair whose checksum matches but
whose model is another hyperparameters' (what the race installed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from keras_bettermodels.tuners import _store

STORE = Path(_store.__file__)
KILLED = 17
# The save's steps, in order; "mid_model" kills while the model is written.
STEPS = [
    "mid_model",
    "model_written",
    "info_written",
    "model_replaced",
    "info_replaced",
]
NEW_FROM = {"model_replaced", "info_replaced"}

CHILD = r"""
import importlib.util, json, os, sys, time

if os.environ.get("NO_LOCK"):  # as where `fcntl` is missing (not POSIX)
    sys.modules["fcntl"] = None
spec = importlib.util.spec_from_file_location("artefacts", sys.argv[1])
artefacts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(artefacts)
action, project, name, kill_at = sys.argv[2:6]
# "pause:<step>": at that step, say so in the signals folder and wait for "go".
signals = sys.argv[6] if len(sys.argv) > 6 else None
model_path = os.path.join(project, "retrained.keras")
info_path = os.path.join(project, "retrained.json")
content = (name * 4096).encode()

if action == "read":
    try:
        document = artefacts.read(model_path, info_path)
    except artefacts.ArtefactError as error:
        print(json.dumps({"error": str(error)}))
    else:
        model = open(model_path, "rb").read() if document is not None else None
        print(json.dumps({"document": document, "model": model and model[:8].decode()}))
    sys.exit(0)

def write_model(path):
    with open(path, "wb") as file:
        if kill_at == "mid_model":
            file.write(content[: len(content) // 2])
            file.flush()
            os._exit(17)
        file.write(content)

def signal(what):
    with open(os.path.join(signals, f"{name}.{what}"), "w"):
        pass

def after(step):
    if step == kill_at:
        os._exit(17)
    if step == "lock_busy" and signals:
        signal("lock_busy")
    if kill_at == f"pause:{step}":
        signal(step)
        go = os.path.join(signals, f"{name}.go")
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.01)

artefacts.after_step = after
artefacts.save(model_path, info_path, write_model, {"name": name})
"""


def _child(action: str, project: Path, name: str = "-", kill_at: str = "-") -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(STORE),
            action,
            str(project),
            name,
            kill_at,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    expected = KILLED if kill_at != "-" else 0
    assert result.returncode == expected, result.stderr
    return result.stdout


def _start(
    project: Path, name: str, pause_at: str, signals: Path, lock: bool = True
) -> subprocess.Popen:
    """A child that saves pair `name`, pausing at step `pause_at`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(STORE),
            "save",
            str(project),
            name,
            f"pause:{pause_at}",
            str(signals),
        ],
        env={**os.environ, **({} if lock else {"NO_LOCK": "1"})},
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_any(*paths: Path) -> Path:
    deadline = time.monotonic() + 60  # a bound, never a wait
    while time.monotonic() < deadline:
        for path in paths:
            if path.exists():
                return path
        time.sleep(0.01)
    pytest.fail(f"none of {[p.name for p in paths]} appeared")


def _read_afresh(project: Path) -> dict:
    return json.loads(_child("read", project))


def _pair(project: Path) -> str | None:
    """The name of the pair a fresh process reads, checking the model matches."""
    found = _read_afresh(project)
    assert "error" not in found, found["error"]
    if found["document"] is None:
        return None
    name = found["document"]["name"]
    assert found["model"] == name * 8, "the model is not the info's"
    return name


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("before", [None, "A"], ids=["first_save", "over_a_pair"])
def test_a_kill_at_any_step_leaves_the_old_pair_or_the_new(tmp_path, step, before):
    if before is not None:
        _child("save", tmp_path, before)
        assert _pair(tmp_path) == before
    _child("save", tmp_path, "B", kill_at=step)
    assert _pair(tmp_path) == ("B" if step in NEW_FROM else before)
    # The next save completes, whatever the previous one left behind.
    _child("save", tmp_path, "C")
    assert _pair(tmp_path) == "C"
    assert sorted(os.listdir(tmp_path)) == ["retrained.json", "retrained.keras"]


@pytest.mark.parametrize("step", ["settled", "model_written", "model_replaced"])
def test_a_save_after_an_interrupted_one_completes_it_first(tmp_path, step):
    _child("save", tmp_path, "A")
    _child("save", tmp_path, "B", kill_at="model_replaced")  # new model, old info
    _child("save", tmp_path, "C", kill_at=step)
    assert _pair(tmp_path) == ("C" if step == "model_replaced" else "B")


@pytest.mark.parametrize("lock", [True, False], ids=["locked", "no_lock"])
@pytest.mark.parametrize(
    "pause_at", ["model_written", "info_written", "model_replaced"]
)
def test_two_saves_into_one_project_at_once_leave_one_whole_pair(
    tmp_path, pause_at, lock
):
    # Issue 26, row 2: two processes retrain one project at once. A pauses
    # inside its save; B starts its own. B used to delete A's staged model
    # and stage its own under the same name, so A checksummed B's model and
    # installed A's info with it: a pair that passed the checksum and did not
    # load. Now B waits for A's lock, or, where no lock can be taken, stages
    # under names of its own: either way each finishes with its own files.
    project, signals = tmp_path / "p", tmp_path / "signals"
    project.mkdir()
    signals.mkdir()
    _child("save", project, "O")  # an older pair in place
    first = _start(project, "A", pause_at, signals, lock)
    try:
        _wait_for_any(signals / f"A.{pause_at}")
        second = _start(project, "B", "model_written", signals, lock)
        try:
            _wait_for_any(signals / "B.lock_busy", signals / "B.model_written")
            (signals / "A.go").touch()
            assert first.wait(timeout=60) == 0, first.stderr.read()
            assert _pair(project) == "A"  # A's model with A's info, B still out
            (signals / "B.go").touch()
            assert second.wait(timeout=60) == 0, second.stderr.read()
        finally:
            second.kill()
            second.wait()
    finally:
        first.kill()
        first.wait()
    assert _pair(project) == "B"  # the last save's pair, model and info
    assert sorted(os.listdir(project)) == ["retrained.json", "retrained.keras"]


def test_the_issue_case_new_model_beside_old_info_reads_as_the_new_pair(tmp_path):
    _child("save", tmp_path, "A")
    _child("save", tmp_path, "B", kill_at="model_replaced")
    with open(tmp_path / "retrained.json") as file:
        assert json.load(file)["name"] == "A"  # the old info is still in place
    assert _pair(tmp_path) == "B"


@pytest.mark.parametrize("step", STEPS)
def test_a_kill_over_a_pair_without_checksum_leaves_the_old_pair_or_the_new(
    tmp_path, step
):
    # The first retrain after an upgrade: the pair on disk predates checksums.
    (tmp_path / "retrained.keras").write_bytes(("A" * 4096).encode())
    (tmp_path / "retrained.json").write_text(json.dumps({"name": "A"}))
    assert _pair(tmp_path) == "A"
    _child("save", tmp_path, "B", kill_at=step)
    # After "model_replaced" the old info sits beside the new model: the
    # journal's matching info must win, never the mix.
    assert _pair(tmp_path) == ("B" if step in NEW_FROM else "A")
    _child("save", tmp_path, "C")
    assert _pair(tmp_path) == "C"
    assert sorted(os.listdir(tmp_path)) == ["retrained.json", "retrained.keras"]


def test_a_replaced_model_file_is_reported_in_plain_words(tmp_path):
    _child("save", tmp_path, "A")
    (tmp_path / "retrained.keras").write_bytes(b"B" * 4096 * 8)
    error = _read_afresh(tmp_path)["error"]
    assert "is not the one that" in error and "checksum differs" in error
    assert "the next `search` retrains again" in error


def test_a_missing_model_or_unreadable_info_is_reported_in_plain_words(tmp_path):
    _child("save", tmp_path, "A")
    os.remove(tmp_path / "retrained.keras")
    assert "is missing" in _read_afresh(tmp_path)["error"]
    (tmp_path / "retrained.json").write_text("{cut")
    assert "is unreadable" in _read_afresh(tmp_path)["error"]


def test_an_info_without_a_checksum_is_read_as_before(tmp_path):
    legacy = {"format": 1, "info": {}}
    (tmp_path / "retrained.json").write_text(json.dumps(legacy))
    (tmp_path / "retrained.keras").write_bytes(b"anything")
    assert (
        _store.read(str(tmp_path / "retrained.keras"), str(tmp_path / "retrained.json"))
        == legacy
    )


# ------------------------------------------------------------- the tuner


class _Crash(BaseException):
    """Stands for the process dying: no `except Exception` catches it."""


def _build(hp):
    import keras

    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(hp.Choice("units", [3, 5]))]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def _tuner(directory: Path, overwrite: bool):
    from keras_bettermodels.tuners import RandomSearch

    return RandomSearch(
        _build,
        objective="val_loss",
        max_trials=1,
        seed=0,
        directory=str(directory),
        project_name="p",
        overwrite=overwrite,
    )


@pytest.fixture
def data():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = rng.normal(size=(48, 1)).astype("float32")
    return {"x": x[:32], "y": y[:32], "validation_data": (x[32:], y[32:])}


def _search(directory: Path, data, overwrite: bool = True):
    tuner = _tuner(directory, overwrite)
    tuner.search(
        data["x"],
        data["y"],
        epochs=1,
        verbose=0,
        validation_data=data["validation_data"],
    )
    return tuner


def _weights_of_file(path: Path):
    import keras

    return [w.tolist() for w in keras.saving.load_model(path).get_weights()]


def test_a_crash_between_the_tuners_model_and_info_reloads_the_new_pair(tmp_path, data):
    tuner = _search(tmp_path, data)
    assert tuner.retrain_info.samples == 48  # training + validation
    _store.after_step = lambda step: _raise(step == "model_replaced")
    try:
        with pytest.raises(_Crash):
            tuner.retrain(data["x"][:16], data["y"][:16], epochs=1, verbose=0)
    finally:
        _store.after_step = None
    project = tmp_path / "p"
    old = json.loads((project / "retrained.json").read_text())["info"]
    assert old["samples"] == 48  # the old info beside the new model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reloaded = _tuner(tmp_path, overwrite=False)
        assert reloaded.retrain_info.samples == 16
        model = reloaded.get_retrained_model()
    assert _about_the_retrain(caught) == []  # the pair is whole
    saved = _weights_of_file(project / "retrained.keras")
    assert [w.tolist() for w in model.get_weights()] == saved


def _about_the_retrain(caught: list) -> list[str]:
    return [str(w.message) for w in caught if "retrain" in str(w.message)]


def _raise(crash: bool) -> None:
    if crash:
        raise _Crash


def test_a_model_file_with_other_weights_is_refused_and_retrained(tmp_path, data):
    import keras_tuner

    tuner = _search(tmp_path, data)
    project = tmp_path / "p"
    other = _build(
        keras_tuner.HyperParameters.from_config(
            tuner.oracle.get_best_trials(1)[0].hyperparameters.get_config()
        )
    )
    other.save(project / "retrained.keras")  # same architecture, other weights
    with pytest.warns(UserWarning, match="is not the one that"):
        reloaded = _tuner(tmp_path, overwrite=False)
    assert reloaded.retrain_info is None
    # Not "there is no retrained model": what is wrong, and what to do.
    with pytest.raises(RuntimeError, match=r"is not the one that.*Run `search`"):
        reloaded.get_retrained_model()
    with pytest.warns(UserWarning, match="is not the one that"):
        again = _search(tmp_path, data, overwrite=False)  # retrains
    assert again.retrain_info is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _tuner(tmp_path, overwrite=False).get_retrained_model()
    assert _about_the_retrain(caught) == []
    assert [w.tolist() for w in model.get_weights()] == _weights_of_file(
        project / "retrained.keras"
    )


def _hp(units: int):
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [3, 5])
    hp.values["units"] = units
    return hp


def test_a_pair_that_passes_the_checksum_but_does_not_load_is_retrained(tmp_path, data):
    # Issue 26, row 2: what the race installed: the info of one retrain with
    # the model of another (other units), checksummed together. Keras' "could
    # not be loaded" used to come out of `get_retrained_model()` and `search`.
    tuner = _search(tmp_path, data)
    units = tuner.get_retrained_model().layers[0].units
    project = tmp_path / "p"
    document = json.loads((project / "retrained.json").read_text())
    del document[_store.ARTEFACT]
    other = _build(_hp(8 - units))
    _store.save(
        str(project / "retrained.keras"),
        str(project / "retrained.json"),
        other.save,
        document,
    )
    reloaded = _tuner(tmp_path, overwrite=False)
    with pytest.raises(RuntimeError, match=r"does not load.*Run `search` again"):
        reloaded.get_retrained_model()
    with pytest.warns(UserWarning, match=r"does not load.*Retraining it now"):
        again = _search(tmp_path, data, overwrite=False)
    assert again.retrain_info.skipped is None
    assert again.get_retrained_model().layers[0].units == units
    model = _tuner(tmp_path, overwrite=False).get_retrained_model()
    assert model.layers[0].units == units
    assert [w.tolist() for w in model.get_weights()] == _weights_of_file(
        project / "retrained.keras"
    )


class _LaterIsBetter:
    """A HyperModel whose every trial scores better than the one before."""

    def __new__(cls):
        import keras_tuner

        class Scripted(keras_tuner.HyperModel):
            trials = 0

            def build(self, hp):
                return _build(hp)

            def fit(self, hp, model, *args, **kwargs):
                history = model.fit(*args, **kwargs)
                if "val_loss" in history.history:
                    Scripted.trials += 1
                    history.history["val_loss"] = [1.0 / Scripted.trials]
                return history

        return Scripted()


def test_a_retrain_of_a_trial_that_is_no_longer_the_best_is_refused(tmp_path, data):
    # Issue 26, row 4, in one process: a later search (more trials, its
    # retrain not run: killed, or `retrain_on_full_data=False`) found a
    # better trial; the earlier search's retrained model is not the best's.
    from keras_bettermodels.tuners import RandomSearch

    hypermodel = _LaterIsBetter()

    def tuner(max_trials, retrain):
        return RandomSearch(
            hypermodel,
            objective="val_loss",
            max_trials=max_trials,
            seed=0,
            directory=str(tmp_path),
            project_name="p",
            retrain_on_full_data=retrain,
        )

    fit = {"x": data["x"], "y": data["y"], "epochs": 1, "verbose": 0}
    searching = tuner(1, True)
    searching.search(**fit, validation_data=data["validation_data"])
    assert searching.retrain_info.trial_id == "0"
    searching.oracle.max_trials = 2  # the same tuner searches on
    searching.retrain_on_full_data = False
    searching.search(**fit, validation_data=data["validation_data"])
    assert searching.oracle.get_best_trials(1)[0].trial_id == "1"
    message = r"is of trial 0 \(units=\d, val_loss=1\), but the best trial is trial 1"
    # Neither from memory nor reloaded afresh: the error says what to do.
    for serving in (searching, tuner(2, False)):
        with pytest.raises(RuntimeError, match=message + r".*Run `search` again"):
            serving.get_retrained_model()
    model = tuner(2, True).retrain(**fit, validation_data=data["validation_data"])
    served = tuner(2, False).get_retrained_model()
    assert served.layers[0].units == model.layers[0].units
