"""Magnitude pruning for Keras 3: schedules, wrapping, stripping and reporting.

Wrap a model's layers with `prune_low_magnitude`, train it with
`keras_bettermodels.callbacks.UpdatePruningMasks`, check it with
`sparsity_report` and export it with `strip_pruning`. The wrapper itself is
`keras_bettermodels.layers.PruneLowMagnitude`.
"""

from keras_bettermodels.pruning.prune import prune_low_magnitude, strip_pruning
from keras_bettermodels.pruning.report import (
    LayerSparsity,
    SparsityReport,
    sparsity_report,
)
from keras_bettermodels.pruning.schedules import (
    ConstantSparsity,
    PolynomialDecay,
    PruningSchedule,
)

__all__ = [
    "ConstantSparsity",
    "LayerSparsity",
    "PolynomialDecay",
    "PruningSchedule",
    "SparsityReport",
    "prune_low_magnitude",
    "sparsity_report",
    "strip_pruning",
]
