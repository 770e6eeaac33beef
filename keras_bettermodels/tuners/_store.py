"""The retrain's files in a project: its model and info as one unit, each
trial's fit result (private).

`RetrainStore` is what the tuners use. Below it, the pair of files:

The model (`retrained.keras`) and its info (`retrained.json`) must always
belong together: a crash at any moment leaves the old pair or the new pair,
never the new model beside the old info, and a pair that does not belong
together (a file replaced or edited by hand) is detected, not loaded.

The info records the model file's SHA-256 and size. A save goes through a
journal beside the pair, each step atomic (`os.replace`), under staging
names of its own (`<token>`: the process id and a random part):

1. the model is written to `retrained.next-<token>.keras`;
2. the info, with that file's checksum, to `retrained.next-<token>.json`;
3. the staged model replaces `retrained.keras`;
4. the staged info replaces `retrained.json`.

A crash before step 3 leaves the old pair as it was. A crash between steps 3
and 4 leaves the new model beside the old info; the new info waits in its
staged file, whose checksum matches the model, so `read` returns the new
pair (and the next `save` completes step 4 first). After step 4 the new pair
is in place.

Two saves into one project at once (two processes retraining it) take turns:
each holds an exclusive lock (`flock`) on `retrained.lock` from its first
step to its last, so they never mix their files, and the staged files a save
finds are those of a save that died (the kernel releases a dead process's
lock), which it completes or removes. The lock file is removed by the save
that holds it. Where no lock can be taken (no `fcntl`, or a file system
without locks), the saves still stage under their own names and remove only
their own files: the last to finish leaves its pair, and `read` pairs each
model with the info that describes it.

`save` and `read` are pure file I/O, importing nothing beyond the standard
library at load time (tests load this file by its path in a fresh process):
the caller passes the function that writes the model (`model.save`). Local
paths only; `RetrainStore` saves remote ones (`gs://...`) without a journal.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import secrets
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keras_bettermodels.tuners._info import RetrainInfo

__all__ = [
    "FIT_RESULT",
    "RETRAINED_INFO",
    "RETRAINED_MODEL",
    "ArtefactError",
    "RetrainStore",
    "checksum",
    "read",
    "save",
]

RETRAINED_MODEL = "retrained.keras"
RETRAINED_INFO = "retrained.json"
FIT_RESULT = "fit_result.json"  # in each trial's directory
_FORMAT = 1

#: The member of the info document that ties it to the model file.
ARTEFACT = "artefact"
_CHUNK = 1 << 20

#: Test seam: called with each step's name as the save completes it. Tests set
#: it to kill the process (`os._exit`) at that moment. `"lock_busy"` is
#: called before a save waits for another save's lock.
after_step: Callable[[str], None] | None = None

# (path, size, mtime_ns, inode) -> SHA-256: a model file is hashed once per
# version, not at every read.
_checksums: dict[tuple[str, int, int, int], str] = {}


class ArtefactError(ValueError):
    """The retrain's files do not belong together or cannot be read."""


def _next(path: str, token: str) -> str:
    """The staged file of one save: `retrained.next-<token>.keras`."""
    base, extension = os.path.splitext(path)
    return f"{base}.next-{token}{extension}"


def _staged(path: str) -> list[str]:
    """Every staged file of `path` on disk, of any save (older versions
    staged as `retrained.next.keras`), `.partial` ones included."""
    base, _ = os.path.splitext(path)
    return sorted(glob.glob(f"{glob.escape(base)}.next*"))


def _step(name: str) -> None:
    if after_step is not None:
        after_step(name)


def _sync_file(path: str) -> None:
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _sync_dir(path: str) -> None:
    """Makes a rename in the folder of `path` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    descriptor = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def checksum(path: str) -> str:
    """Returns the SHA-256 of the file at `path`, as hex."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _checksums:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(_CHUNK), b""):
                digest.update(chunk)
        _checksums[key] = digest.hexdigest()
    return _checksums[key]


def _load(path: str) -> dict[str, Any] | None:
    """The JSON object at `path`; `None` if there is no such file."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtefactError(
            f"The retrain's info {path} is unreadable ({error}). It is ignored; "
            "the next `search` retrains again."
        ) from None
    if not isinstance(document, dict):
        raise ArtefactError(
            f"The retrain's info {path} is not a JSON object. It is ignored; the "
            "next `search` retrains again."
        )
    return document


def _matches(document: dict[str, Any], model_path: str) -> bool:
    recorded = document.get(ARTEFACT)
    if not isinstance(recorded, dict) or not os.path.isfile(model_path):
        return False
    return bool(
        recorded.get("bytes") == os.path.getsize(model_path)
        and recorded.get("sha256") == checksum(model_path)
    )


def _unchecked(document: dict[str, Any]) -> bool:
    """Whether the info predates checksums (older versions wrote none)."""
    return ARTEFACT not in document


def _pending(info_path: str, model_path: str) -> tuple[str, dict[str, Any]] | None:
    """A staged info (its path and document) whose checksum matches the model
    on disk: a save stopped between its last two steps. `None` if none."""
    _, extension = os.path.splitext(info_path)
    for path in _staged(info_path):
        if not path.endswith(extension):
            continue  # a `.partial`: never a complete journal
        try:
            document = _load(path)
        except ArtefactError:
            continue  # an unreadable journal is no evidence either way
        if document is not None and _matches(document, model_path):
            return path, document
    return None


def _write_json(path: str, document: dict[str, Any]) -> None:
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(document, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


def _settle(model_path: str, info_path: str) -> None:
    """Completes a save that died between steps 3 and 4, drops the rest.

    Only under the lock: every staged file is then a dead save's.
    """
    pending = _pending(info_path, model_path)
    if pending is not None:
        os.replace(pending[0], info_path)
        _sync_dir(info_path)
        _step("settled")
    for leftover in set(_staged(model_path) + _staged(info_path)):
        _remove(leftover)


@contextlib.contextmanager
def _lock(model_path: str) -> Iterator[bool]:
    """Holds the project's save lock, `<model>.lock`; yields whether it is held.

    The file is removed by its holder before the lock is released, so a save
    that waited on a removed file tries again on the current one.
    """
    descriptor = _acquire(f"{os.path.splitext(model_path)[0]}.lock")
    if descriptor is None:
        yield False
        return
    try:
        yield True
    finally:
        _remove(f"{os.path.splitext(model_path)[0]}.lock")
        os.close(descriptor)


def _acquire(path: str) -> int | None:
    """Locks the file at `path` (created if need be); `None` where no lock can be."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _step("lock_busy")
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            held = os.path.samestat(os.fstat(descriptor), os.stat(path))
        except FileNotFoundError:  # its holder removed it meanwhile
            held = False
        except OSError:  # a file system without locks (ENOLCK, EOPNOTSUPP)
            os.close(descriptor)
            return None
        if held:
            return descriptor
        os.close(descriptor)


def save(
    model_path: str,
    info_path: str,
    write_model: Callable[[str], None],
    document: dict[str, Any],
) -> None:
    """Saves the model and its info so that a crash leaves the old or the new pair.

    Args:
        model_path: the model's file, e.g. `<project>/retrained.keras`.
        info_path: the info's file, e.g. `<project>/retrained.json`.
        write_model: writes the model to the path it is given (`model.save`);
            the path ends with the extension of `model_path`.
        document: the info, a JSON object; saved with an `"artefact"` member
            holding the model file's SHA-256 and size.
    """
    with _lock(model_path) as locked:
        if locked:
            _settle(model_path, info_path)
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        staged_model, staged_info = _next(model_path, token), _next(info_path, token)
        leftovers = [staged_model, staged_info, f"{staged_info}.partial"]
        try:
            write_model(staged_model)
            _sync_file(staged_model)
            _step("model_written")
            recorded = {
                "sha256": checksum(staged_model),
                "bytes": os.path.getsize(staged_model),
            }
            _write_json(staged_info, {**document, ARTEFACT: recorded})
            _sync_dir(staged_info)
            _step("info_written")
            os.replace(staged_model, model_path)
            leftovers = []  # the staged info is now the model's only info
            _sync_dir(model_path)
            _step("model_replaced")
            os.replace(staged_info, info_path)
            _sync_dir(info_path)
            _step("info_replaced")
        except Exception:  # this save's own files only: never another's
            for leftover in leftovers:
                _remove(leftover)
            raise


def read(model_path: str, info_path: str) -> dict[str, Any] | None:
    """Returns the info of the saved pair, checked against the model file.

    Args:
        model_path: the model's file.
        info_path: the info's file.

    Returns:
        The info document (with its `"artefact"` member), or `None` when no
        pair was ever completed. An info written before checksums were
        recorded (no `"artefact"` member) is returned as it is, unless a
        staged `retrained.next-*.json` matches the model on disk: then that
        one is.

    Raises:
        ArtefactError: when the files do not belong together (the model is
            missing or is not the file the info describes) or the info is
            unreadable; the message says so in plain words.
    """
    document = _load(info_path)
    if document is not None and _matches(document, model_path):
        return document
    pending = _pending(info_path, model_path)
    if pending is not None:
        # A save stopped between its last two steps. This wins over an info
        # without a checksum too: that info cannot be checked, the journal can.
        return pending[1]
    if document is not None and _unchecked(document):
        return document  # written before checksums; no journal contradicts it
    if document is None:
        return None  # the first save has not completed
    if not os.path.isfile(model_path):
        raise ArtefactError(
            f"The retrained model {model_path} is missing, though {info_path} "
            "describes one. The info is ignored; the next `search` retrains "
            "again."
        )
    raise ArtefactError(
        f"The retrained model {model_path} is not the one that {info_path} "
        "describes (its checksum differs: the file was replaced or edited, or "
        "a save was interrupted). Neither is used; the next `search` retrains "
        "again."
    )


# ------------------------------------------------------------------ the store


class RetrainStore:
    """The retrain's files in one project directory.

    Args:
        project_dir: the tuner's `project_dir`.
    """

    def __init__(self, project_dir: str) -> None:
        self.model_path = os.path.join(project_dir, RETRAINED_MODEL)
        self.info_path = os.path.join(project_dir, RETRAINED_INFO)

    def has_model(self) -> bool:
        """Whether the model file exists, local or remote."""
        from keras_bettermodels._compat import tuner as _kt

        return _kt.exists(self.model_path)

    def save(self, model: Any, hp: Any, info: RetrainInfo) -> RetrainInfo:
        """Saves the model and its info as one unit; a failure is a warning.

        Returns:
            `info`, or without `model_path` when the model could not be saved
            (the model in memory is kept).
        """
        from keras_bettermodels._compat import tuner as _kt
        from keras_bettermodels.tuners._info import RetrainInfo

        path = self.model_path
        build_config = model.get_build_config() if model.built else None
        document = {
            "format": _FORMAT,
            # Relative to the project: a moved or copied project still finds it.
            "info": {**asdict(info), "model_path": RETRAINED_MODEL},
            "hyperparameters": hp.get_config(),
            "build_config": build_config,
        }
        try:
            if _is_local(path):
                save(path, self.info_path, model.save, document)
            else:
                model.save(path)
        except Exception as error:  # the model in memory is kept
            warnings.warn(
                f"The retrained model could not be saved to {path}: {error!r}. "
                "`get_retrained_model()` returns it in this process only.",
                stacklevel=4,
            )
            return RetrainInfo.from_dict({**asdict(info), "model_path": None})
        if not _is_local(path):
            _kt.save_json(self.info_path, document)
        return info

    def read(
        self, mismatch: str = "warn"
    ) -> tuple[RetrainInfo, dict[str, Any], Any] | None:
        """The saved retrain's info, hyperparameters and build config.

        A model that does not match its info is a warning and `None` (a
        search then retrains), or with `mismatch="raise"` a `RuntimeError`
        that says so (`get_retrained_model`: not "no retrained model").
        """
        from keras_bettermodels._compat import tuner as _kt
        from keras_bettermodels.tuners._info import RetrainInfo

        path = self.info_path
        try:
            if _is_local(path):
                document = read(self.model_path, path)
                if document is None:
                    return None
            elif _kt.exists(path):
                document = _kt.load_json(path)
            else:
                return None
            info = RetrainInfo.from_dict(document["info"])
            if info.model_path is not None:  # where this project keeps it now
                info = RetrainInfo.from_dict(
                    {**asdict(info), "model_path": self.model_path}
                )
            return info, document["hyperparameters"], document.get("build_config")
        except ArtefactError as error:
            if mismatch == "raise":
                raise RuntimeError(
                    f"{error} Run `search` again (it retrains), or call "
                    "`retrain(...)`, before `get_retrained_model()`."
                ) from error
            warnings.warn(str(error), stacklevel=3)
            return None
        except (KeyError, TypeError, ValueError) as error:
            warnings.warn(f"Ignoring an unreadable {path}: {error!r}", stacklevel=3)
            return None

    @staticmethod
    def write_fit_result(
        trial_dir: str,
        results: list[Any],
        histories: list[Any],
        seconds: float | None = None,
        params: int | None = None,
    ) -> None:
        """Notes in `fit_result.json` whether the trial's fit returned a History,
        which tells the retrain whether the trial's `best_step` is an epoch count."""
        RetrainStore.write_fit_record(
            trial_dir,
            returned_history=bool(results) and len(histories) == len(results),
            epochs_run=[len(h.epoch) for h in histories],
            seconds=seconds,
            params=params,
        )

    @staticmethod
    def write_fit_record(
        trial_dir: str,
        *,
        returned_history: bool,
        epochs_run: list[int],
        seconds: float | None = None,
        params: int | None = None,
    ) -> None:
        """Writes `fit_result.json`: the fit's result type, epochs run per fit
        (execution or fold), and the trial's seconds and parameter count."""
        from keras_bettermodels._compat import tuner as _kt

        _kt.save_json(
            os.path.join(trial_dir, FIT_RESULT),
            {
                "returned_history": returned_history,
                "epochs_run": epochs_run,
                "seconds": seconds,
                "params": params,
            },
        )

    @staticmethod
    def read_fit_record(trial_dir: str) -> dict[str, Any]:
        """`fit_result.json`'s contents; `{}` when it is missing or damaged."""
        from keras_bettermodels._compat import tuner as _kt

        path = os.path.join(trial_dir, FIT_RESULT)
        if not _kt.exists(path):
            return {}
        try:
            document = _kt.load_json(path)
        except _kt.DamagedProjectFile:
            return {}
        return document if isinstance(document, dict) else {}

    @staticmethod
    def returned_history(trial_dir: str) -> bool | None:
        """Whether the trial's fit returned a History; `None` if not recorded."""
        from keras_bettermodels._compat import tuner as _kt

        path = os.path.join(trial_dir, FIT_RESULT)
        if not _kt.exists(path):
            return None
        try:
            return bool(_kt.load_json(path).get("returned_history"))
        except _kt.DamagedProjectFile as error:  # cut by an older version
            warnings.warn(f"{error} Read as not recorded.", stacklevel=3)
            return None


def _is_local(path: str) -> bool:
    return "://" not in path
