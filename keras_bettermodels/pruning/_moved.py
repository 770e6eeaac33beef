"""Names that moved out of a module: still found there for one release, with a warning.

The pruning package had extra import paths (`keras_bettermodels.layers.
prune_low_magnitude`, `keras_bettermodels.callbacks.pruning`, helpers of the
wrapper now in their own modules). Each old module sets its `__getattr__` to
`moved_names(...)`, which Python calls only for names the module does not
define.

The layer's registered name (`keras_bettermodels>PruneLowMagnitude`) is what
`.keras` files use to find it, not the module they record, so loading a file
saved by an earlier version never comes here and never warns.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["moved_names"]


def moved_names(old_module: str, new_homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that finds each moved name in its new home, and warns.

    Args:
        old_module: the module the names were imported from (its `__name__`).
        new_homes: each moved name -> the module to import it from now.

    Returns:
        A function for the old module's `__getattr__`: it raises
        `AttributeError` for any other name, as a module does.
    """

    def __getattr__(name: str) -> Any:
        home = new_homes.get(name)
        if home is None:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        warnings.warn(
            f"`{old_module}.{name}` is deprecated and will be removed in the "
            f"next release. Import it from `{home}`: "
            f"`from {home} import {name}`.",
            DeprecationWarning,
            stacklevel=2,  # the line that imports the name
        )
        return getattr(importlib.import_module(home), name)

    return __getattr__
