"""TensorFlow Model Optimization's module path to the pruning API.

`from keras_bettermodels.pruning import tfmot` stands for
`import tensorflow_model_optimization as tfmot` in a pruning script: every
`tfmot.sparsity.keras.<name>` then resolves to `keras_bettermodels.pruning`,
which holds all of `tfmot.sparsity.keras`'s names. Only pruning is mirrored;
`tfmot.quantization` and `tfmot.clustering` are not.
"""

from __future__ import annotations

import types
from typing import Any

from keras_bettermodels import pruning as _pruning

__all__ = ["sparsity"]

sparsity = types.SimpleNamespace(keras=_pruning)
"""`tfmot.sparsity`: its `keras` is `keras_bettermodels.pruning`."""


def __getattr__(name: str) -> Any:
    raise AttributeError(
        f"keras_bettermodels.pruning.tfmot mirrors tfmot.sparsity.keras only; "
        f"it has no {name!r} (tfmot's quantization and clustering are not "
        "ported)."
    )
