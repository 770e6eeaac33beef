"""`PruneLowMagnitude`, re-exported from `keras_bettermodels.pruning.wrapper`.

The wrapper lives with the rest of pruning; this module keeps the names it
had here importable (`.keras` files saved before name this module).
"""

from keras_bettermodels.pruning.masks import magnitude_mask
from keras_bettermodels.pruning.recovery import reattach_jax_state
from keras_bettermodels.pruning.wrapper import (
    MISSING_CALLBACK,
    PRUNABLE_WEIGHTS,
    PruneLowMagnitude,
    prunable_weight_name,
)

__all__ = [
    "MISSING_CALLBACK",
    "PRUNABLE_WEIGHTS",
    "PruneLowMagnitude",
    "magnitude_mask",
    "prunable_weight_name",
    "reattach_jax_state",
]
