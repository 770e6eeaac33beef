"""A disk that fills up mid-run, planted under the package's event-file writer.

`FillingDisk` replaces the `open` that `keras_bettermodels.tensorboard.summary`
opens its event files with: the files are real, but once `fill()` is called
(for one directory or all) every write to them raises
`OSError(ENOSPC, "No space left on device")`, as a full disk's does. Nothing
else is patched: what the writer does with the error is its own.
"""

from __future__ import annotations

import builtins
import errno
import os
from collections import Counter
from typing import Any

import pytest

NO_SPACE = os.strerror(errno.ENOSPC)


class FillingDisk:
    """Event files on a disk that `fill()` fills.

    Attributes:
        attempts: the writes tried on the full disk, per event file.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from keras_bettermodels.tensorboard import summary

        self._full: list[str] = []
        self.attempts: Counter[str] = Counter()
        monkeypatch.setattr(summary, "open", self._open, raising=False)

    def fill(self, under: str | os.PathLike[str] = os.sep) -> None:
        """From now on, writes to files under `under` fail with ENOSPC."""
        self._full.append(os.path.abspath(os.fspath(under)))

    def is_full(self, path: str) -> bool:
        path = os.path.abspath(path)
        return any(os.path.commonpath([full, path]) == full for full in self._full)

    def _open(self, path: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        return _File(self, path, builtins.open(path, mode, *args, **kwargs))


class _File:
    def __init__(self, disk: FillingDisk, path: str, file: Any) -> None:
        self._disk, self._path, self._file = disk, path, file

    def write(self, data: bytes) -> int:
        if self._disk.is_full(self._path):
            self._disk.attempts[self._path] += 1
            raise OSError(errno.ENOSPC, NO_SPACE)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed
