"""Mixed precision: audit a model, give it float32 outputs, compare policies.

Importing this package imports neither Keras nor a backend; the functions do,
when called.
"""

from keras_bettermodels.precision.audit import audit
from keras_bettermodels.precision.compare import PrecisionComparison, compare_precision
from keras_bettermodels.precision.findings import CODES, LEVELS, Finding
from keras_bettermodels.precision.outputs import float32_outputs

__all__ = [
    "CODES",
    "LEVELS",
    "Finding",
    "PrecisionComparison",
    "audit",
    "compare_precision",
    "float32_outputs",
]
