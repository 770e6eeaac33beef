"""The retrain's model and info as one unit: killed at each step, reloaded afresh.

The file-level tests kill a child process (`os._exit`) at each step of
`_artefacts.save` and read the files back in another fresh process: the old
pair or the new pair, never a mix. The child loads `_artefacts.py` by its
path, so it starts in milliseconds without Keras. The tuner tests plant the
issue's cases: a crash after the new model is in place but before its info,
and a model file of the same architecture with other weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from keras_bettermodels.tuners import _artefacts

ARTEFACTS = Path(_artefacts.__file__)
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
import importlib.util, json, os, sys

spec = importlib.util.spec_from_file_location("artefacts", sys.argv[1])
artefacts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(artefacts)
action, project, name, kill_at = sys.argv[2:6]
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

def after(step):
    if step == kill_at:
        os._exit(17)

artefacts.after_step = after
artefacts.save(model_path, info_path, write_model, {"name": name})
"""


def _child(action: str, project: Path, name: str = "-", kill_at: str = "-") -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(ARTEFACTS),
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
        _artefacts.read(
            str(tmp_path / "retrained.keras"), str(tmp_path / "retrained.json")
        )
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
    _artefacts.after_step = lambda step: _raise(step == "model_replaced")
    try:
        with pytest.raises(_Crash):
            tuner.retrain(data["x"][:16], data["y"][:16], epochs=1, verbose=0)
    finally:
        _artefacts.after_step = None
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
