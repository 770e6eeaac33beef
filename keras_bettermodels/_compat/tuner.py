"""keras-tuner internals the tuners use (checked: keras-tuner 1.4.8, Keras 3.15.1).

One function per need. `tests/_compat/test_tuner.py` fails loudly when one of
them moves. Public keras-tuner names (`keras_tuner.engine.trial.TrialStatus`,
`keras_tuner.HyperParameters`, ...) are used directly, not through here.
"""

from __future__ import annotations

import inspect
import os
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
# The tuners override it to give our callbacks' `log_dir` one folder per trial.
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
    """Writes JSON the way keras-tuner writes its project files
    (`keras_tuner.src.utils.save_json`, keras-tuner 1.4.8)."""
    from keras_tuner.src import utils as kt_utils

    kt_utils.save_json(path, document)


def load_json(path: str) -> Any:
    """Reads a JSON file written by `save_json`
    (`keras_tuner.src.utils.load_json`, keras-tuner 1.4.8)."""
    from keras_tuner.src import utils as kt_utils

    return kt_utils.load_json(path)


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
