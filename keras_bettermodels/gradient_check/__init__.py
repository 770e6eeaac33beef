"""Gradient checking for Keras models: backpropagation against finite differences.

```python
from keras_bettermodels.gradient_check import check_gradients

report = check_gradients(model, x, y)
print(report)
```

Names are re-exported lazily: `keras_bettermodels.gradient_check.report` (the
report dataclasses, which a TensorBoard plugin reads) and `_core` (the
arithmetic) import neither Keras nor a backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keras_bettermodels.gradient_check._clone import ModelNotRebuildableError
    from keras_bettermodels.gradient_check._core import (
        DEFAULT_EPSILON,
        DEFAULT_THRESHOLDS,
        VERDICTS,
        relative_error,
        verdict,
    )
    from keras_bettermodels.gradient_check.check import check_gradients
    from keras_bettermodels.gradient_check.report import (
        GradientCheckReport,
        VariableCheck,
    )

# public name -> module that defines it
_EXPORTS = {
    "check_gradients": "keras_bettermodels.gradient_check.check",
    "GradientCheckReport": "keras_bettermodels.gradient_check.report",
    "VariableCheck": "keras_bettermodels.gradient_check.report",
    "ModelNotRebuildableError": "keras_bettermodels.gradient_check._clone",
    "DEFAULT_EPSILON": "keras_bettermodels.gradient_check._core",
    "DEFAULT_THRESHOLDS": "keras_bettermodels.gradient_check._core",
    "VERDICTS": "keras_bettermodels.gradient_check._core",
    "relative_error": "keras_bettermodels.gradient_check._core",
    "verdict": "keras_bettermodels.gradient_check._core",
}

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_THRESHOLDS",
    "VERDICTS",
    "GradientCheckReport",
    "ModelNotRebuildableError",
    "VariableCheck",
    "check_gradients",
    "relative_error",
    "verdict",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
