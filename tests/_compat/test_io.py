"""The console seam: Keras' printer is still where `_compat.io` looks for it."""

from __future__ import annotations

import pytest

from keras_bettermodels._compat import io


def test_print_msg_goes_through_keras_printer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    io.print_msg("hello from the seam")
    assert "hello from the seam" in capsys.readouterr().out


class _Printer:
    """A callback printing through the seam at the hooks our callbacks print at."""

    def __new__(cls) -> object:
        import keras

        class Printer(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                io.print_msg(f"MARK epoch {epoch + 1}")

            def on_train_end(self, logs=None):
                io.print_msg("MARK train end")

        return Printer()


def _fit(verbose: int, progbar_first: bool = False) -> None:
    import keras
    import numpy as np

    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    callbacks = [_Printer()]
    if progbar_first:
        callbacks.insert(0, keras.callbacks.ProgbarLogger())
    model.fit(
        x, x[:, :1], batch_size=16, epochs=2, verbose=verbose, callbacks=callbacks
    )


def _lines_with_mark(out: str) -> list[str]:
    return [line for line in out.split("\n") if "MARK" in line]


def test_a_message_during_an_epoch_starts_after_the_progress_bar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _fit(verbose=1)
    out = capsys.readouterr().out
    lines = _lines_with_mark(out)
    assert len(lines) == 3, out
    # Keras' bar is open (`…loss: 0.18`) when on_epoch_end runs: the message
    # must start a line of its own, not follow the bar on the same line.
    assert all(line.startswith("MARK") for line in lines), lines
    assert "\n\nMARK" not in out, out


@pytest.mark.parametrize("verbose", [0, 2])
def test_no_blank_line_without_an_open_progress_bar(
    capsys: pytest.CaptureFixture[str], verbose: int
) -> None:
    _fit(verbose=verbose)
    out = capsys.readouterr().out
    assert len(_lines_with_mark(out)) == 3, out
    assert all(line.startswith("MARK") for line in _lines_with_mark(out)), out
    assert "\n\nMARK" not in out and not out.startswith("\nMARK"), out


def test_no_blank_line_after_a_progress_bar_that_already_ended_its_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _fit(verbose=1, progbar_first=True)  # the bar ends its line before ours runs
    out = capsys.readouterr().out
    assert all(line.startswith("MARK") for line in _lines_with_mark(out)), out
    assert "\n\nMARK" not in out, out
