"""The console seam: Keras' printer is still where `_compat.io` looks for it."""

from __future__ import annotations

import pytest

from keras_bettermodels._compat import io


def test_print_msg_goes_through_keras_printer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    io.print_msg("hello from the seam")
    assert "hello from the seam" in capsys.readouterr().out
