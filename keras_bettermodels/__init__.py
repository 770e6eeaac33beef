"""keras-bettermodels: tools that plug into `model.fit` for better models.

Names are re-exported lazily, so that importing a submodule such as
`keras_bettermodels.tensorboard` (TensorBoard does, to load the plugins) or
`keras_bettermodels.criteria` never imports Keras or a backend.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_EXPORTS = {
    "CacheTimingCallback": "keras_bettermodels.callbacks",
    "EarlyStopping": "keras_bettermodels.callbacks",
    "measure_pipeline": "keras_bettermodels.timing",
    "compare_cache": "keras_bettermodels.timing",
    "PruneLowMagnitude": "keras_bettermodels.layers",
    "UpdatePruningMasks": "keras_bettermodels.callbacks",
    "UpdatePruningStep": "keras_bettermodels.callbacks",
    "PruningSummaries": "keras_bettermodels.callbacks",
    "prune_low_magnitude": "keras_bettermodels.pruning",
    "strip_pruning": "keras_bettermodels.pruning",
    "sparsity_report": "keras_bettermodels.pruning",
    "ConstantSparsity": "keras_bettermodels.pruning",
    "PolynomialDecay": "keras_bettermodels.pruning",
    "RandomSearch": "keras_bettermodels.tuners",
    "Hyperband": "keras_bettermodels.tuners",
    "BayesianOptimization": "keras_bettermodels.tuners",
    "GridSearch": "keras_bettermodels.tuners",
    "RetrainOnFullData": "keras_bettermodels.tuners",
    "check_gradients": "keras_bettermodels.gradient_check",
    "GradientCheckReport": "keras_bettermodels.gradient_check",
    "VariableCheck": "keras_bettermodels.gradient_check",
    "GradientCheckCallback": "keras_bettermodels.callbacks",
    "MixedPrecisionGuard": "keras_bettermodels.callbacks",
    "TrainingHealth": "keras_bettermodels.callbacks",
    "GL": "keras_bettermodels.criteria",
    "PQ": "keras_bettermodels.criteria",
    "UP": "keras_bettermodels.criteria",
    "Patience": "keras_bettermodels.criteria",
    "diagnose": "keras_bettermodels.curves",
}
_SUBMODULES = (
    "callbacks",
    "criteria",
    "gradient_check",
    "health",
    "layers",
    "precision",
    "pruning",
    "tensorboard",
    "timing",
    "tuners",
)

__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
