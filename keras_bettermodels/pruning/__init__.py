"""Magnitude pruning for Keras 3: schedules, masks, the wrapper, stripping, reports.

Wrap a model's layers with `prune_low_magnitude`, train it with
`UpdatePruningMasks` (tfmot's `UpdatePruningStep`), check it with
`sparsity_report` and export it with `strip_pruning`. The wrapper is
`PruneLowMagnitude` (also importable from `keras_bettermodels.layers`).

This module holds every name of TensorFlow Model Optimization's
`tfmot.sparsity.keras`, so that a tfmot script ports with one import line:
`import keras_bettermodels.pruning as sparsity` for
`from tensorflow_model_optimization.sparsity import keras as sparsity`, or
`from keras_bettermodels.pruning import tfmot` for
`import tensorflow_model_optimization as tfmot` (then
`tfmot.sparsity.keras.prune_low_magnitude` resolves here).

One concept per module: `schedules` (when and how sparse), `masks` (which
weights: unstructured, blocks, M by N), `structure` (the block and M-by-N
arguments, checked), `wrapper` (`PruneLowMagnitude`), `constraint` (pruned
weights kept zero through the optimizer), `prunable_layer` (which weights of
a layer: built-in ones, custom layers naming theirs), `policy` (which layers
of a model), `prune` (wrap and strip a model), `callbacks` (drive the step,
log the sparsity), `report` (`sparsity_report`), `recovery` (the trainer left
fit to train after a refused step) and `tfmot` (tfmot's module path).
`shrink` rebuilds a stripped model without its all-zero units and filters.
"""

from keras_bettermodels.pruning.callbacks import (
    PruningSummaries,
    UpdatePruningMasks,
    UpdatePruningStep,
)
from keras_bettermodels.pruning.masks import block_mask, m_by_n_mask, magnitude_mask
from keras_bettermodels.pruning.policy import PruneForLatencyOnXNNPack, PruningPolicy
from keras_bettermodels.pruning.prunable_layer import PrunableLayer
from keras_bettermodels.pruning.prune import (
    prune_low_magnitude,
    prune_scope,
    strip_pruning,
)
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
from keras_bettermodels.pruning.sensitivity import SensitivityReport, sensitivity
from keras_bettermodels.pruning.shrink import shrink
from keras_bettermodels.pruning.wrapper import PruneLowMagnitude, pruning_wrappers

# Every name `tfmot.sparsity.keras` exports (tensorflow-model-optimization
# 0.8.1, `python/core/api/sparsity/keras/__init__.py`).
TFMOT_NAMES = (
    "ConstantSparsity",
    "PolynomialDecay",
    "PrunableLayer",
    "PruneForLatencyOnXNNPack",
    "PruningPolicy",
    "PruningSchedule",
    "PruningSummaries",
    "UpdatePruningStep",
    "prune_low_magnitude",
    "prune_scope",
    "strip_pruning",
)

__all__ = [
    "ConstantSparsity",
    "LayerSparsity",
    "PolynomialDecay",
    "PrunableLayer",
    "PruneForLatencyOnXNNPack",
    "PruneLowMagnitude",
    "PruningPolicy",
    "PruningSchedule",
    "PruningSummaries",
    "SensitivityReport",
    "SparsityReport",
    "UpdatePruningMasks",
    "UpdatePruningStep",
    "block_mask",
    "m_by_n_mask",
    "magnitude_mask",
    "prune_low_magnitude",
    "prune_scope",
    "pruning_wrappers",
    "sensitivity",
    "shrink",
    "sparsity_report",
    "strip_pruning",
]
