"""Deprecated module: import `PruneLowMagnitude` from `keras_bettermodels.layers`.

The wrapper lives in `keras_bettermodels.pruning.wrapper`. The names this module
re-exported are still found here until the next release, with a
`DeprecationWarning`. `.keras` files saved by earlier versions record this
module, but Keras finds the layer by its registered name
(`keras_bettermodels>PruneLowMagnitude`), so they load without a warning.
"""

from keras_bettermodels.pruning._moved import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "PruneLowMagnitude": "keras_bettermodels.layers",
        "MISSING_CALLBACK": "keras_bettermodels.pruning.wrapper",
        "PRUNABLE_WEIGHTS": "keras_bettermodels.pruning.prunable_layer",
        "prunable_weight_name": "keras_bettermodels.pruning.prunable_layer",
        "magnitude_mask": "keras_bettermodels.pruning",
        "reattach_jax_state": "keras_bettermodels.pruning.recovery",
    },
)
