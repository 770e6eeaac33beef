"""Training health: per-layer statistics on a sample batch, and what they mean.

- `report`: `LayerStats` (one row of the table), `Finding`, `HealthReport`,
  all round-tripping through dicts (pure Python).
- `findings`: the decisions and their thresholds (pure Python).
- `spikes`: each step's loss from Keras' running mean, and the spike window.
- `probe`: `HealthProbe`, the one on-device program per sample, per backend.

`keras_bettermodels.callbacks.TrainingHealth` feeds these during `fit`.
"""

from keras_bettermodels.health.findings import diagnose
from keras_bettermodels.health.report import (
    CODES,
    STATISTICS,
    Finding,
    HealthReport,
    LayerStats,
)
from keras_bettermodels.health.spikes import BatchLosses, SpikeDetector

__all__ = [
    "CODES",
    "STATISTICS",
    "BatchLosses",
    "Finding",
    "HealthReport",
    "LayerStats",
    "SpikeDetector",
    "diagnose",
]
