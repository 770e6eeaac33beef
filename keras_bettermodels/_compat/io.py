"""Console output through Keras' own printer (checked: Keras 3.15.1)."""

from __future__ import annotations

import sys
from typing import Any

# Hooks after which Keras' progress bar line is closed (or not yet open).
_CLOSED_HOOKS = frozenset({"on_train_begin", "on_epoch_begin", "on_train_end"})


def print_msg(message: str) -> None:
    """Print like Keras' own callbacks (honours `disable_interactive_logging`).

    Called from a callback hook while Keras' `verbose=1` progress bar has a
    line open (any hook inside an epoch, before `ProgbarLogger` ends the
    epoch's line), the message starts on a new line instead of being glued to
    the bar. With `verbose=2` or `0`, or outside `fit`, nothing is added.
    """
    import keras
    from keras.src.utils import io_utils

    if keras.config.is_interactive_logging_enabled() and progress_line_open():
        message = "\n" + message
    io_utils.print_msg(message)


def progress_line_open() -> bool:
    """Whether a `verbose=1` `ProgbarLogger` of the running hook has a line open.

    Walks up the stack to the `keras.callbacks.CallbackList` method that
    dispatches the current hook (Keras 3.15.1: `CallbackList.on_epoch_end`
    loops `for callback in self.callbacks`), finds its `ProgbarLogger` and
    reads its public state: `verbose`, `progbar`, `seen` (steps shown this
    epoch, reset at epoch begin). In `on_epoch_end`, the logger ends the line
    when its turn comes: callbacks before it in the list see the line open.
    """
    import keras

    frame: Any = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList):
            break
        frame = frame.f_back
    if frame is None:
        return False
    hook = frame.f_code.co_name
    callbacks = list(getattr(owner, "callbacks", ()))
    loggers = [
        (index, cb)
        for index, cb in enumerate(callbacks)
        if isinstance(cb, keras.callbacks.ProgbarLogger)
    ]
    if not loggers or hook in _CLOSED_HOOKS:
        return False
    index, logger = loggers[0]
    if logger.verbose != 1 or logger.progbar is None or not logger.seen:
        return False
    if hook == "on_epoch_end":
        current = frame.f_locals.get("callback")
        position = next(
            (i for i, cb in enumerate(callbacks) if cb is current), len(callbacks)
        )
        return position < index
    return True
