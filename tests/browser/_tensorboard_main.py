"""`tensorboard` with the package's plugins, for a checkout whose entry points are
not installed yet (`pip install -e .` installs them).

Usage: `python tests/browser/_tensorboard_main.py --logdir DIR --port N ...`.
With the entry points installed, TensorBoard finds the plugins itself and this
adds nothing.
"""

from __future__ import annotations

import sys

from tensorboard import default, program

from keras_bettermodels.tensorboard.gradient_check_plugin import GradientCheckPlugin
from keras_bettermodels.tensorboard.input_timing_plugin import InputTimingPlugin
from keras_bettermodels.tensorboard.training_health_plugin import (
    TrainingHealthPlugin,
)


def main() -> int:
    plugins = default.get_plugins()
    names = {getattr(plugin, "plugin_name", None) for plugin in plugins}
    plugins += [
        p
        for p in (GradientCheckPlugin, InputTimingPlugin, TrainingHealthPlugin)
        if p.plugin_name not in names
    ]
    board = program.TensorBoard(plugins=plugins)
    board.configure(argv=[sys.argv[0], *sys.argv[1:]])
    return board.main()


if __name__ == "__main__":
    sys.exit(main())
