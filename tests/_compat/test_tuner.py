"""The tuner seam: each keras-tuner internal is still where `_compat.tuner` looks."""

from __future__ import annotations

import copy
import inspect
import os

import keras
import keras_tuner
import pytest

from keras_bettermodels._compat import tuner as kt


def _build(hp):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.fixture
def tuner(tmp_path):
    return keras_tuner.RandomSearch(
        _build, objective="val_loss", max_trials=1, directory=str(tmp_path)
    )


def test_the_hypermodel_none_message_is_keras_tuners_own():
    with pytest.raises(ValueError) as theirs:
        keras_tuner.RandomSearch(hypermodel=None, objective="val_loss")
    assert str(theirs.value) == kt.HYPERMODEL_NONE_MESSAGE


def test_check_hypermodel_raises_where_keras_tuner_does():
    class Mixin:
        def run_trial(self, *args, **kwargs):
            return super().run_trial(*args, **kwargs)  # type: ignore[misc]

    class Plain(Mixin, keras_tuner.RandomSearch):
        pass

    class OwnTrial(Mixin, keras_tuner.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            return 1.0

    with pytest.raises(ValueError, match="Received `hypermodel=None`"):
        kt.check_hypermodel(Plain, Mixin, None)
    kt.check_hypermodel(OwnTrial, Mixin, None)
    kt.check_hypermodel(Plain, Mixin, _build)
    # keras-tuner's Hyperband overrides run_trial: keras-tuner accepts None there.
    kt.check_hypermodel(keras_tuner.Hyperband, Mixin, None)
    # A bad objective is keras-tuner's TypeError first: its oracle is built
    # before Tuner.__init__ looks at the hypermodel.
    with pytest.raises(TypeError, match="objective"):
        kt.check_hypermodel(Plain, Mixin, None, 5)
    with pytest.raises(ValueError, match="Received `hypermodel=None`"):
        kt.check_hypermodel(Plain, Mixin, None, "val_loss")
    with pytest.raises(TypeError, match="objective") as theirs:
        keras_tuner.RandomSearch(None, objective=5)
    with pytest.raises(TypeError, match="objective") as ours:
        kt.check_hypermodel(Plain, Mixin, None, 5)
    assert str(ours.value) == str(theirs.value)


def test_try_build_builds_and_applies_the_tuner_overrides(tmp_path):
    tuner = keras_tuner.RandomSearch(
        _build,
        objective="val_loss",
        max_trials=1,
        directory=str(tmp_path),
        loss="mae",
    )
    model = kt.try_build(tuner, keras_tuner.HyperParameters())
    assert isinstance(model, keras.Model)
    assert model.loss == "mae"


def test_deepcopy_callbacks_copies_and_raises_keras_tuners_error(tuner):
    callback = keras.callbacks.Callback()
    copied = kt.deepcopy_callbacks(tuner, [callback])
    assert len(copied) == 1 and copied[0] is not callback

    class Uncopyable(keras.callbacks.Callback):
        def __deepcopy__(self, memo):
            raise TypeError("cannot pickle 'Graph' object")

    with pytest.raises(keras_tuner.errors.FatalValueError, match="deep-copyable"):
        kt.deepcopy_callbacks(tuner, [Uncopyable()])


def test_is_chief_oracle_reads_keras_tuners_variables(monkeypatch):
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    assert kt.is_chief_oracle() is False
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert kt.is_chief_oracle() is True
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    assert kt.is_chief_oracle() is False


def test_json_and_exists_round_trip(tmp_path):
    path = os.path.join(tmp_path, "a.json")
    assert not kt.exists(path)
    kt.save_json(path, {"a": [1, 2]})
    assert kt.exists(path)
    assert kt.load_json(path) == {"a": [1, 2]}


def test_chief_may_exit_when_no_trial_runs_and_no_worker_waits(tuner):
    oracle = copy.copy(tuner.oracle)
    oracle.ongoing_trials, oracle.tuner_ids = {}, set()
    assert kt.chief_may_exit(oracle) is True
    oracle.tuner_ids = {"tuner0"}
    assert kt.chief_may_exit(oracle) is False


def test_the_oracle_server_starts_and_stops(tuner, monkeypatch):
    pytest.importorskip("grpc")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "0")
    server, servicer = kt.start_oracle_server(tuner.oracle)
    try:
        assert servicer.stop_triggered is False
    finally:
        server.stop(grace=0)


def test_the_tensorboard_hook_is_called_per_execution_with_these_arguments():
    assert kt.tensorboard_hook_parameters() == [
        "self",
        "callbacks",
        "trial",
        "execution",
    ]
    source = inspect.getsource(keras_tuner.Tuner.run_trial)
    assert f"self.{kt.TENSORBOARD_DIR_HOOK}(callbacks, trial, execution)" in source
    assert "self._deepcopy_callbacks(" in source


def test_is_worker_is_keras_tuners_own_test(tuner, monkeypatch):
    assert kt.is_worker(tuner) is False
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    assert kt.is_worker(tuner) is True
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert kt.is_worker(tuner) is False


def test_the_chief_loop_says_once_what_it_waits_for_and_stops_the_server(
    tuner, monkeypatch
):
    class Server:
        stopped_with = None

        def stop(self, grace):
            self.stopped_with = grace

    class Servicer:
        stop_triggered = True

    server = Server()
    monkeypatch.setattr(kt, "start_oracle_server", lambda oracle: (server, Servicer()))
    monkeypatch.setattr(kt, "CHIEF_POLL_SECONDS", 0)
    oracle = copy.copy(tuner.oracle)
    trial = keras_tuner.engine.trial.Trial(None, "3")
    oracle.ongoing_trials, oracle.tuner_ids = {"tuner1": trial}, {"tuner0", "tuner1"}
    polls = iter([False, False, True])
    monkeypatch.setattr(kt, "chief_may_exit", lambda oracle: next(polls))
    said: list[str] = []
    kt.serve_as_chief(oracle, said.append)
    assert len(said) == 1
    assert "trial 3 on worker 'tuner1'" in said[0]
    assert "worker 'tuner0' to ask for its next trial" in said[0]
    assert server.stopped_with == 1


def test_the_log_dir_hook_hands_keras_tuners_hook_on(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(
        keras_tuner.Tuner,
        kt.TENSORBOARD_DIR_HOOK,
        lambda self, callbacks, trial, execution: called.append((trial, execution)),
    )

    class Hooked(kt.TrialLogDirHook, keras_tuner.RandomSearch):
        def _trial_log_dirs(self, callbacks, trial, execution, keras_tuners):
            called.append(("ours", callbacks, trial, execution))
            keras_tuners("shown")

    tuner = Hooked(_build, objective="val_loss", max_trials=1, directory=str(tmp_path))
    getattr(tuner, kt.TENSORBOARD_DIR_HOOK)(["cb"], "trial", 2)
    assert called == [("ours", ["cb"], "trial", 2), ("shown", 2)]


def test_the_checkpoint_hook_lets_the_subclass_name_the_checkpoint(tmp_path):
    class Hooked(kt.CheckpointPathHook, keras_tuner.RandomSearch):
        def _checkpoint_path(self, trial_id, path):
            return f"{path}.{trial_id}"

    tuner = Hooked(_build, objective="val_loss", max_trials=1, directory=str(tmp_path))
    theirs = keras_tuner.RandomSearch._get_checkpoint_fname(tuner, "7")
    assert kt.checkpoint_path(tuner, "7") == f"{theirs}.7"
    assert theirs.startswith(tuner.get_trial_dir("7"))


def test_trial_metrics_are_keras_tuners_best_epoch_metrics_and_step():
    objective = keras_tuner.Objective("val_loss", "min")
    history = keras.callbacks.History()
    history.history = {"val_loss": [0.5, 0.2, 0.3], "loss": [1.0, 0.6, 0.4]}
    history.epoch = [0, 1, 2]
    assert kt.trial_metrics(history, objective) == ({"val_loss": 0.2, "loss": 0.6}, 1)
    other = keras.callbacks.History()
    other.history = {"val_loss": [0.4, 0.4, 0.1], "loss": [1.0, 1.0, 0.2]}
    other.epoch = [0, 1, 2]
    metrics, step = kt.trial_metrics([history, other], objective)
    assert metrics == pytest.approx({"val_loss": 0.15, "loss": 0.4}) and step == 1


def test_oracle_seed_is_the_oracles_and_a_clients_wrapped_oracles(tuner):
    seeded = keras_tuner.oracles.RandomSearchOracle("val_loss", max_trials=1, seed=9)
    assert kt.oracle_seed(seeded) == 9

    class Client:  # keras-tuner's OracleClient keeps the worker's oracle so
        def __init__(self, oracle):
            self._oracle = oracle

    assert kt.oracle_seed(Client(seeded)) == 9


def test_effective_run_trial_skips_the_given_class():
    class Mixin:
        def run_trial(self):
            pass

    class Tuner(Mixin, keras_tuner.RandomSearch):
        pass

    assert kt.effective_run_trial(Tuner, Mixin) is vars(keras_tuner.Tuner)["run_trial"]
    assert kt.effective_run_trial(Tuner, object) is vars(Mixin)["run_trial"]


def test_restore_trial_order_puts_trials_back_in_start_order(tmp_path):
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=4)
    trials = {tid: keras_tuner.engine.trial.Trial(None, tid) for tid in "2031"}
    oracle.trials = dict(trials)
    oracle.start_order = ["0", "1", "2", "3"]
    kt.restore_trial_order(oracle)
    assert list(oracle.trials) == ["0", "1", "2", "3"]
    assert all(oracle.trials[t] is trials[t] for t in trials)
    # A trial the start order does not know goes last; a client holds none.
    oracle.trials["9"] = keras_tuner.engine.trial.Trial(None, "9")
    oracle.start_order = ["3", "2", "1", "0"]
    kt.restore_trial_order(oracle)
    assert list(oracle.trials) == ["3", "2", "1", "0", "9"]
    kt.restore_trial_order(object())


# ------------------------------------------------------ project files, whole


def test_keras_tuner_writes_and_reads_every_project_file_through_utils():
    """What `write_project_files_whole` replaces is what keras-tuner calls."""
    from keras_tuner.src import utils as kt_utils
    from keras_tuner.src.engine import stateful, trial, tuner

    assert keras_tuner.__version__ in kt.PROJECT_FILES_CHECKED
    # Oracle, Trial and Tuner save through Stateful.save; build_config.json
    # through Tuner._build_and_fit_model: all look `save_json` up on `utils`.
    assert "utils.save_json(fname, self.get_state())" in inspect.getsource(
        stateful.Stateful.save
    )
    assert "utils.load_json(fname)" in inspect.getsource(stateful.Stateful.reload)
    assert "utils.load_json(fname)" in inspect.getsource(trial.Trial.load)
    assert "utils.save_json(" in inspect.getsource(tuner.Tuner._build_and_fit_model)
    assert stateful.utils is kt_utils and trial.utils is kt_utils
    source = inspect.getsource(kt_utils)  # the module's: save_json may be ours now
    assert "def save_json(path, obj):" in source
    assert 'with backend.io.File(path, "w") as f:' in source  # in place


def test_write_project_files_whole_replaces_keras_tuners_writer_and_reader():
    from keras_tuner.src import utils as kt_utils

    assert kt.write_project_files_whole() is True
    assert kt_utils.save_json is kt.write_json_whole
    assert kt_utils.load_json is kt.read_json_naming_the_file
    assert kt.write_project_files_whole() is True  # once is enough


def test_write_json_whole_replaces_the_file_and_leaves_nothing_beside_it(tmp_path):
    path = str(tmp_path / "oracle.json")
    assert kt.write_json_whole(path, {"a": 1}) == '{"a": 1}'
    kt.write_json_whole(path, {"a": 2})
    assert kt.load_json(path) == {"a": 2}
    assert os.listdir(tmp_path) == ["oracle.json"]


def test_a_write_that_fails_keeps_the_old_file_and_removes_its_partial(tmp_path):
    path = str(tmp_path / "trial.json")
    kt.write_json_whole(path, {"status": "RUNNING"})
    with pytest.raises(TypeError):
        kt.write_json_whole(path, {"status": object()})  # not JSON: before opening
    assert kt.load_json(path) == {"status": "RUNNING"}
    assert os.listdir(tmp_path) == ["trial.json"]


@pytest.mark.parametrize(("text", "state"), [("", "empty"), ('{"ongoing', "cut short")])
def test_a_damaged_project_file_is_an_error_naming_it(tmp_path, text, state):
    path = tmp_path / "oracle.json"
    path.write_text(text)
    with pytest.raises(kt.DamagedProjectFile, match=state) as caught:
        kt.load_json(str(path))
    assert str(path) in str(caught.value)
    assert "overwrite=True" in str(caught.value)


def _oracle_with(statuses, directory="."):
    from keras_tuner.engine.trial import Trial

    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=4)
    oracle._set_project_dir(str(directory), "p")
    oracle.trials = {
        tid: Trial(keras_tuner.HyperParameters(), tid, status)
        for tid, status in statuses
    }
    return oracle


def test_settle_keeps_a_trial_that_ended_though_the_oracle_had_it_running():
    # Killed between `end_trial`'s trial.json and its oracle.json: reload
    # sent the completed trial for retry (it would run again).
    oracle = _oracle_with([("0", "COMPLETED"), ("1", "COMPLETED"), ("2", "RUNNING")])
    oracle.start_order, oracle.end_order = ["0", "1", "2"], ["0"]
    oracle._retry_queue = ["1", "2"]
    kt.settle_trials_after_reload(oracle)
    assert oracle._retry_queue == ["2"]
    assert oracle.end_order == ["0", "1"]


def test_settle_retries_a_created_trial_the_oracle_never_saved(tmp_path):
    # Killed between `create_trial`'s trial.json and its oracle.json: the
    # trial counted towards max_trials and never ran.
    oracle = _oracle_with([("0", "COMPLETED"), ("1", "RUNNING")], tmp_path)
    oracle.start_order, oracle.end_order, oracle._retry_queue = ["0"], ["0"], []
    kt.settle_trials_after_reload(oracle)
    assert oracle._retry_queue == ["1"]
    assert oracle.start_order == ["0", "1"]
    trial = oracle.create_trial("tuner0")
    assert trial.trial_id == "1" and trial.status == "RUNNING"
    kt.settle_trials_after_reload(object())  # an oracle client: nothing to do
