"""Magnitude pruning for Keras 3: schedules, masks, the wrapper, stripping, reports.

Wrap a model's layers with `prune_low_magnitude`, train it with
`keras_bettermodels.callbacks.UpdatePruningMasks`, check it with
`sparsity_report` and export it with `strip_pruning`. The wrapper is
`PruneLowMagnitude` (also importable from `keras_bettermodels.layers`).

One concept per module: `schedules` (when and how sparse), `masks` (which
weights: unstructured, blocks, M by N), `wrapper` (`PruneLowMagnitude`),
`prune` (wrap and strip a model), `report` (`sparsity_report`) and
`recovery` (the trainer left fit to train after a refused step).
"""

from keras_bettermodels.pruning.masks import block_mask, m_by_n_mask, magnitude_mask
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
from keras_bettermodels.pruning.wrapper import PruneLowMagnitude, pruning_wrappers

__all__ = [
    "ConstantSparsity",
    "LayerSparsity",
    "PolynomialDecay",
    "PruneLowMagnitude",
    "PruningSchedule",
    "SparsityReport",
    "block_mask",
    "m_by_n_mask",
    "magnitude_mask",
    "prune_low_magnitude",
    "pruning_wrappers",
    "sparsity_report",
    "strip_pruning",
]
