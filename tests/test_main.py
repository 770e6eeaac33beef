"""`python -m keras_bettermodels` (`__main__.py`): its parser, called in-process.

The demo itself, run the way users run it, and the exit status of a missing or
unknown command are in `tests/test_demo.py`; these need no training.
"""

from __future__ import annotations

import pytest

from keras_bettermodels import __main__ as cli
from keras_bettermodels import demo

pytestmark = pytest.mark.backend_independent  # parses arguments only


def test_help_names_the_program_and_the_demo_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m keras_bettermodels")
    assert "demo" in out and "TensorBoard" in out


def test_the_demo_command_takes_its_options_with_their_defaults():
    parser = cli.build_parser()
    args = parser.parse_args(["demo"])
    assert (args.command, args.log_dir, args.epochs, args.quick) == (
        "demo",
        demo.DEFAULT_LOG_DIR,
        demo.DEFAULT_EPOCHS,
        False,
    )
    args = parser.parse_args(["demo", "--quick", "--epochs", "3", "--log-dir", "d"])
    assert (args.quick, args.epochs, args.log_dir) == (True, 3, "d")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--epochs", "0"], "--epochs"),
        (["demo", "--epochs", "many"], "--epochs"),
        (["demo", "--no-such-option"], "unrecognized arguments"),
    ],
    ids=["zero_epochs", "epochs_not_a_number", "unknown_option"],
)
def test_bad_demo_arguments_exit_with_status_2_before_any_training(
    argv, message, capsys, monkeypatch
):
    def no_training(args):
        raise AssertionError("the demo ran")

    monkeypatch.setattr(demo, "run_from_args", no_training)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_main_returns_the_demo_s_exit_status(monkeypatch):
    seen = []

    def run_from_args(args):
        seen.append(args)
        return 7

    monkeypatch.setattr(demo, "run_from_args", run_from_args)
    assert cli.main(["demo", "--quick"]) == 7
    assert [args.quick for args in seen] == [True]
