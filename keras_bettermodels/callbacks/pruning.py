"""Deprecated module: import the pruning callbacks from `keras_bettermodels.callbacks`.

They live in `keras_bettermodels.pruning.callbacks` (so that
`keras_bettermodels.pruning` holds every name of `tfmot.sparsity.keras`). The
names this module re-exported are still found here until the next release,
with a `DeprecationWarning`.
"""

from keras_bettermodels.pruning._moved import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "PruningSummaries": "keras_bettermodels.callbacks",
        "UpdatePruningMasks": "keras_bettermodels.callbacks",
        "UpdatePruningStep": "keras_bettermodels.callbacks",
        "pruning_wrappers": "keras_bettermodels.pruning",
        "shortfall_message": "keras_bettermodels.pruning.callbacks",
    },
)
