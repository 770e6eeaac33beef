"""Console output through Keras' own printer (checked: Keras 3.15.1)."""

from __future__ import annotations


def print_msg(message: str) -> None:
    """Print like Keras' own callbacks (honours `disable_interactive_logging`)."""
    from keras.src.utils import io_utils

    io_utils.print_msg(message)
