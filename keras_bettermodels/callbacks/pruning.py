"""The pruning callbacks, re-exported from `keras_bettermodels.pruning.callbacks`.

They live with the rest of pruning (so that `keras_bettermodels.pruning` holds
every name of `tfmot.sparsity.keras`); this module keeps the names it had here
importable.
"""

from keras_bettermodels.pruning.callbacks import (
    PruningSummaries,
    UpdatePruningMasks,
    UpdatePruningStep,
    pruning_wrappers,
    shortfall_message,
)

__all__ = [
    "PruningSummaries",
    "UpdatePruningMasks",
    "UpdatePruningStep",
    "pruning_wrappers",
    "shortfall_message",
]
