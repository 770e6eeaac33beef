"""Command line: `python -m keras_bettermodels demo [--log-dir DIR] [--epochs N]`."""

from __future__ import annotations

import argparse
import sys

from keras_bettermodels import demo

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser of `python -m keras_bettermodels`."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_bettermodels",
        description="keras-bettermodels command-line tools.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    demo.add_arguments(
        commands.add_parser(
            "demo",
            help="train on the digits with Prechelt's early stopping, log to "
            "TensorBoard",
            description="Train a small MLP on scikit-learn's digits with "
            "EarlyStopping(criterion=GL(5) | UP(3)) and write TensorBoard logs.",
        )
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs a command; returns the exit status.

    Args:
        argv: the arguments, such as `["demo", "--quick"]`; `None` reads
            `sys.argv[1:]`. Defaults to `None`.

    Returns:
        The exit status. An unknown command exits with status 2 (argparse).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run_from_args(args)
    parser.error(f"unknown command {args.command!r}")  # unreachable: argparse checks
    return 2


if __name__ == "__main__":
    sys.exit(main())
