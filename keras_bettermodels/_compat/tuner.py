"""keras-tuner internals the tuners use (checked: keras-tuner 1.4.8, Keras 3.15.1).

One function per need. `tests/_compat/test_tuner.py` fails loudly when one of
them moves. Public keras-tuner names (`keras_tuner.engine.trial.TrialStatus`,
`keras_tuner.HyperParameters`, ...) are used directly, not through here.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import uuid
import warnings
from collections.abc import Callable
from typing import Any

# keras-tuner 1.4.8, `Tuner.__init__`: the error for `hypermodel=None` when
# `run_trial` is not overridden. Our tuners override `run_trial` themselves, so
# keras-tuner's own check (`self.__class__.run_trial is Tuner.run_trial`) never
# fires for them; `check_hypermodel` repeats it with the same words.
HYPERMODEL_NONE_MESSAGE = (
    "Received `hypermodel=None`. We only allow not specifying "
    "`hypermodel` if the user defines the search space in "
    "`Tuner.run_trial()` by subclassing a `Tuner` class without "
    "using a `HyperModel` instance."
)

# keras-tuner 1.4.8: `Tuner.run_trial` calls this method on each execution's
# deep-copied callbacks, as `(callbacks, trial, execution)`, before the fit.
# `TrialLogDirHook` overrides it to give our callbacks' `log_dir` one folder
# per trial.
TENSORBOARD_DIR_HOOK = "_configure_tensorboard_dir"


def effective_run_trial(cls: type, skip: type) -> Callable[..., Any] | None:
    """The `run_trial` that `cls` runs, ignoring the one `skip` defines."""
    for klass in cls.__mro__:
        if klass is not skip and "run_trial" in vars(klass):
            return vars(klass)["run_trial"]
    return None


def restore_trial_order(oracle: Any) -> None:
    """Orders `oracle.trials` as the trials started, after a reload.

    keras-tuner 1.4.8's `Oracle.reload` fills `trials` in `glob` order, and
    `get_best_trials` sorts by score stably, so tied scores came back in
    another order than the search saw: another "best" trial after a reload.
    `start_order` (saved in `oracle.json`) is the order they were created in.
    An oracle client of a distributed search holds no trials: nothing to do.
    """
    trials = getattr(oracle, "trials", None)
    start_order = getattr(oracle, "start_order", None)
    if not isinstance(trials, dict) or not isinstance(start_order, list):
        return
    position = {trial_id: i for i, trial_id in enumerate(start_order)}
    ordered = sorted(
        trials.items(), key=lambda item: (position.get(item[0], len(position)), item[0])
    )
    trials.clear()
    trials.update(ordered)


_NO_OBJECTIVE = object()


def check_hypermodel(
    cls: type, skip: type, hypermodel: Any, objective: Any = _NO_OBJECTIVE
) -> None:
    """Raises keras-tuner's `ValueError` for `hypermodel=None` where it would.

    keras-tuner 1.4.8 raises it when `run_trial` is `Tuner.run_trial` itself;
    `skip` is our mixin, whose `run_trial` only wraps the parent's. A built-in
    tuner builds its oracle first, so a bad `objective` (passed here) raises
    keras-tuner's `TypeError` before that (1.4.8: `create_objective`).
    """
    import keras_tuner

    if hypermodel is None and effective_run_trial(cls, skip) is vars(
        keras_tuner.Tuner
    ).get("run_trial"):
        if objective is not _NO_OBJECTIVE:
            from keras_tuner.src.engine.objective import create_objective

            create_objective(objective)
        raise ValueError(HYPERMODEL_NONE_MESSAGE)


def try_build(tuner: Any, hp: Any) -> Any:
    """Builds a model as a trial does: clears the session, builds, applies
    the tuner-level `optimizer` / `loss` / `metrics`, checks the model size
    (`Tuner._try_build`, keras-tuner 1.4.8)."""
    return tuner._try_build(hp)


def deepcopy_callbacks(tuner: Any, callbacks: Any) -> list[Any]:
    """Deep-copies callbacks as a trial does, with keras-tuner's error
    (`Tuner._deepcopy_callbacks`, keras-tuner 1.4.8)."""
    return list(tuner._deepcopy_callbacks(callbacks))


def is_chief_oracle() -> bool:
    """Whether this process is the chief of a distributed search
    (`keras_tuner.src.distribute.utils.is_chief_oracle`, keras-tuner 1.4.8)."""
    from keras_tuner.src.distribute import utils as dist_utils

    return bool(dist_utils.is_chief_oracle())


def exists(path: str) -> bool:
    """Whether `path` exists, local or remote (`gs://...`), as keras-tuner
    checks its project files (`keras_tuner.src.backend.io.exists`)."""
    from keras_tuner.src.backend import io as kt_io

    return bool(kt_io.exists(path))


def save_json(path: str, document: Any) -> None:
    """Writes JSON as keras-tuner writes its project files, but whole: a kill
    leaves the old file or the new one (`write_json_whole`)."""
    write_json_whole(path, document)


def load_json(path: str) -> Any:
    """Reads a JSON file written by `save_json`; a damaged one is a
    `DamagedProjectFile` naming it (`read_json_naming_the_file`)."""
    return read_json_naming_the_file(path)


# ------------------------------------------------------ project files, whole

# keras-tuner 1.4.8 writes every project file (`oracle.json`, each
# `trial_*/trial.json`, `<tuner_id>.json`, each `build_config.json`) with
# `keras_tuner.src.utils.save_json`, which opens the file itself for writing
# (`backend.io.File(path, "w")`: truncated at once) and writes it in place. A
# process killed there leaves it empty or cut, and the project cannot reload
# (a bare `JSONDecodeError`, naming no file). Every caller looks the function
# up on the module at call time (`utils.save_json(...)`: `engine/stateful.py`,
# `engine/tuner.py`), so replacing it there covers them all; so does
# `utils.load_json` for the reads (`engine/stateful.py`, `engine/trial.py`,
# `engine/tuner.py`, `tuners/hyperband.py`). `tests/_compat/test_tuner.py`
# checks both for the version installed.
PROJECT_FILES_CHECKED = ("1.4.8",)

#: The suffix of the file `write_json_whole` writes before renaming it: a
#: process killed in between leaves `<name>.<token>.partial`, which nothing reads.
PARTIAL_SUFFIX = ".partial"


class DamagedProjectFile(ValueError):
    """A keras-tuner project file that is not whole JSON (cut by a crash)."""


def write_json_whole(path: str, document: Any) -> str:
    """Writes `document` as JSON to `path`: a kill leaves the old file or the new.

    The JSON goes to `<path>.<token>.partial` in the same folder, through
    keras-tuner's own opener (`keras_tuner.src.backend.io.File`, keras-tuner
    1.4.8), is flushed to the disk, and then replaces `path` (`os.replace`,
    atomic). A remote path (`gs://...`) is written as keras-tuner writes it:
    its object stores make an object visible only once it is whole.

    Returns:
        The JSON text, as keras-tuner's `save_json` returns it.
    """
    from keras_tuner.src.backend import io as kt_io

    text = json.dumps(document)
    if "://" in path:
        with kt_io.File(path, "w") as file:
            file.write(text)
        return text
    partial = f"{path}.{uuid.uuid4().hex[:12]}{PARTIAL_SUFFIX}"
    try:
        with kt_io.File(partial, "w") as file:
            file.write(text)
        descriptor = os.open(partial, os.O_RDONLY)
        try:  # the data before the rename: never an empty file after a power cut
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise
    return text


def read_json_naming_the_file(path: str) -> Any:
    """Reads a keras-tuner project file; a damaged one is an error that names it.

    keras-tuner 1.4.8's `utils.load_json`, whose `JSONDecodeError` names no
    file.

    Raises:
        DamagedProjectFile: for a file that is not whole JSON (empty, or cut
            by a process killed while a keras-tuner without whole writes
            rewrote it in place), naming the file and what to do.
    """
    from keras_tuner.src.backend import io as kt_io

    with kt_io.File(path, "r") as file:
        text = file.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        state = "empty" if not text.strip() else f"cut short: {error}"
        raise DamagedProjectFile(
            f"The keras-tuner project file {path} is damaged ({state}): a "
            "process was killed while it was rewritten in place, which "
            "keras-tuner does; keras-bettermodels' tuners write it whole. The "
            "project cannot be reloaded without it. Restore the file from a "
            "backup, or start the project anew with `overwrite=True` (or "
            "another `project_name`)."
        ) from None


def write_project_files_whole() -> bool:
    """Makes keras-tuner write its project files whole and name a damaged one.

    Replaces `keras_tuner.src.utils.save_json` with `write_json_whole` and
    `utils.load_json` with `read_json_naming_the_file`, for the whole process
    (keras-tuner's own tuners too: the files' contents do not change, only
    how they are written). Done once; the tuners call it before keras-tuner
    reloads or writes a project.

    Returns:
        Whether keras-tuner's writer is now whole; `False`, with a warning,
        for a keras-tuner whose `save_json` / `load_json` are not the 1.4.8
        ones this replaces.
    """
    import keras_tuner
    from keras_tuner.src import utils as kt_utils

    save = getattr(kt_utils, "save_json", None)
    load = getattr(kt_utils, "load_json", None)
    if save is write_json_whole and load is read_json_naming_the_file:
        return True
    if not _has_parameters(save, ["path", "obj"]) or not _has_parameters(
        load, ["path"]
    ):
        warnings.warn(
            "keras-bettermodels could not make keras-tuner "
            f"{keras_tuner.__version__} write its project files "
            "whole (checked: keras-tuner "
            f"{', '.join(PROJECT_FILES_CHECKED)}): a process killed while it "
            "writes `oracle.json` or `trial.json` can leave the file empty.",
            stacklevel=2,
        )
        return False
    kt_utils.save_json = write_json_whole
    kt_utils.load_json = read_json_naming_the_file
    return True


def _has_parameters(function: Any, names: list[str]) -> bool:
    try:
        return list(inspect.signature(function).parameters) == names
    except (TypeError, ValueError):
        return False


def settle_trials_after_reload(oracle: Any) -> None:
    """Makes a reloaded oracle agree with its trials' own files.

    keras-tuner 1.4.8 writes a trial's `trial.json`, then `oracle.json`
    (`Oracle.create_trial`, `Oracle.end_trial`); a process killed between
    the two (or while the second is written) leaves:

    - a trial that ended (`COMPLETED` in its `trial.json`) still among the
      oracle's ongoing trials: `Oracle.reload` sends it for retry, and it runs
      again. It is kept as it ended instead (`end_order`);
    - a trial just created (`RUNNING` in its `trial.json`) that `oracle.json`
      does not know: it counts towards `max_trials` but never runs. It is
      sent for retry, as the trials that were running are.

    An oracle client of a distributed search holds no trials: nothing to do.
    """
    trials = getattr(oracle, "trials", None)
    retry_queue = getattr(oracle, "_retry_queue", None)
    end_order = getattr(oracle, "end_order", None)
    start_order = getattr(oracle, "start_order", None)
    if not (
        isinstance(trials, dict)
        and isinstance(retry_queue, list)
        and isinstance(end_order, list)
        and isinstance(start_order, list)
    ):
        return
    from keras_tuner.engine.trial import TrialStatus

    for trial_id in list(retry_queue):
        trial = trials.get(trial_id)
        if trial is not None and trial.status == TrialStatus.COMPLETED:
            retry_queue.remove(trial_id)
            if trial_id not in end_order:
                end_order.append(trial_id)
    ongoing = {t.trial_id for t in getattr(oracle, "ongoing_trials", {}).values()}
    for trial_id, trial in trials.items():
        if (
            trial.status == TrialStatus.RUNNING
            and trial_id not in ongoing
            and trial_id not in retry_queue
        ):
            retry_queue.append(trial_id)
            if trial_id not in start_order:
                start_order.append(trial_id)


def start_oracle_server(oracle: Any) -> tuple[Any, Any]:
    """Serves `oracle` to the workers, as keras-tuner's chief does.

    keras-tuner 1.4.8's `oracle_chief.start_server` builds this server, then
    blocks polling every 20 seconds; the tuners poll themselves instead.

    Returns:
        `(server, servicer)`: stop the server with `server.stop(grace)`;
        `servicer.stop_triggered` says the oracle has no more trials.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    address = (
        f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(address)
    server.start()
    return server, servicer


def chief_may_exit(oracle: Any) -> bool:
    """Whether every trial has ended and every worker has checked out
    (`oracle_chief.exit_chief`, keras-tuner 1.4.8)."""
    from keras_tuner.src.distribute import oracle_chief

    return bool(oracle_chief.exit_chief(oracle))


def tensorboard_hook_parameters() -> list[str]:
    """The parameters of keras-tuner's per-execution log-dir hook."""
    import keras_tuner

    hook = getattr(keras_tuner.Tuner, TENSORBOARD_DIR_HOOK)
    return list(inspect.signature(hook).parameters)


def is_worker(tuner: Any) -> bool:
    """Whether `tuner` runs as a worker of a distributed search: only the chief
    retrains (`BaseTuner._is_worker`, keras-tuner 1.4.8)."""
    return bool(tuner._is_worker())


# ------------------------------------------------------------ the chief loop

#: How often the chief looks whether the search has ended.
CHIEF_POLL_SECONDS = 0.5


def serve_as_chief(oracle: Any, say: Callable[[str], None]) -> None:
    """Serves the oracle to the workers until every trial has ended.

    keras-tuner's own chief loop (`oracle_chief.start_server`, keras-tuner
    1.4.8), with the same servicer, but it notices the end within a second,
    where keras-tuner's sleeps 20 seconds at a time, and it says (through
    `say`) which workers it waits for.
    """
    import time

    server, servicer = start_oracle_server(oracle)
    waiting_for: list[str] | None = None
    try:
        while True:
            time.sleep(CHIEF_POLL_SECONDS)
            if not servicer.stop_triggered:
                continue
            if chief_may_exit(oracle):
                break
            waiting = _waiting_for(oracle)
            if waiting and waiting != waiting_for:
                say(
                    f"All trials are handed out; waiting for {', '.join(waiting)}. "
                    "If a worker has died, start it again with the same "
                    "KERASTUNER_TUNER_ID: it gets its trial back."
                )
            waiting_for = waiting
    finally:
        server.stop(grace=1)


def _waiting_for(oracle: Any) -> list[str]:
    """What the chief waits for: running trials, and workers yet to check out."""
    ongoing = dict(oracle.ongoing_trials)
    waiting = [
        f"trial {trial.trial_id} on worker {tuner_id!r}"
        for tuner_id, trial in sorted(ongoing.items())
    ]
    waiting += [
        f"worker {tuner_id!r} to ask for its next trial"
        for tuner_id in sorted(set(oracle.tuner_ids) - set(ongoing))
    ]
    return waiting


# ------------------------------------------------------- the log-dir hook


class TrialLogDirHook:
    """Mixin for a keras-tuner `Tuner`: hands its per-execution log-dir hook on.

    keras-tuner 1.4.8's `Tuner.run_trial` calls `TENSORBOARD_DIR_HOOK` on each
    execution's deep-copied callbacks before the fit. This override calls the
    subclass's `_trial_log_dirs(callbacks, trial, execution, keras_tuners)`,
    where `keras_tuners(trial)` runs keras-tuner's own hook for the trial it
    is given (a cross-validated fold passes one named after the fold).
    """

    # Defined by the subclass: points the trial's callbacks at their folders.
    _trial_log_dirs: Callable[[list[Any], Any, int, Callable[[Any], None]], None]

    def _configure_tensorboard_dir(
        self, callbacks: list[Any], trial: Any, execution: int = 0
    ) -> None:
        parent = getattr(super(), TENSORBOARD_DIR_HOOK)

        def keras_tuners(shown: Any) -> None:
            parent(callbacks, shown, execution)

        self._trial_log_dirs(callbacks, trial, execution, keras_tuners)


# keras-tuner 1.4.8, `Tuner._get_checkpoint_fname(trial_id)`: the path of a
# trial's best-epoch checkpoint, which `SaveBestEpoch` writes, `load_model`
# reads and `Hyperband` loads to resume a trial of the previous round.
CHECKPOINT_PATH_HOOK = "_get_checkpoint_fname"


class CheckpointPathHook:
    """Mixin for a keras-tuner `Tuner`: lets the subclass name trial checkpoints.

    keras-tuner 1.4.8's `Tuner` asks `CHECKPOINT_PATH_HOOK` for the path of a
    trial's checkpoint. This override returns the subclass's
    `_checkpoint_path(trial_id, path)`, where `path` is keras-tuner's.
    """

    # Defined by the subclass: the checkpoint path to use instead of `path`.
    _checkpoint_path: Callable[[Any, str], str]

    def _get_checkpoint_fname(self, trial_id: Any) -> str:
        path = getattr(super(), CHECKPOINT_PATH_HOOK)(trial_id)
        return self._checkpoint_path(trial_id, path)


def checkpoint_path(tuner: Any, trial_id: Any) -> str:
    """The path of a trial's best-epoch checkpoint (`CHECKPOINT_PATH_HOOK`)."""
    return str(getattr(tuner, CHECKPOINT_PATH_HOOK)(trial_id))


def trial_metrics(results: Any, objective: Any) -> tuple[dict[str, float], int]:
    """A run's metrics and best step, as keras-tuner reports a trial's.

    `results` is what `Tuner.run_trial` returns (a History, a dict, a number,
    or a list of them, one per execution); keras-tuner 1.4.8's
    `tuner_utils.convert_to_metrics_dict` and `get_best_step` turn it into the
    metrics at the best epoch (averaged over executions) and the best epoch.
    """
    from keras_tuner.src.engine import tuner_utils

    metrics = tuner_utils.convert_to_metrics_dict(results, objective)
    step = tuner_utils.get_best_step(results, objective)
    return {str(k): float(v) for k, v in metrics.items()}, int(step)


def oracle_seed(oracle: Any) -> int | None:
    """The oracle's seed; a distributed worker's `OracleClient` (keras-tuner
    1.4.8) hides it, and the worker's own oracle (`_oracle`) holds it."""
    local = getattr(oracle, "_oracle", oracle)
    seed = getattr(local, "seed", None)
    return None if seed is None else int(seed)
