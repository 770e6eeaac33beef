"""Prechelt's early-stopping criteria, as pure functions over error histories.

Epochs are numbered t = 1, 2, ... as in the paper: `val_errors[t - 1]` is
E_va(t) and `train_errors[t - 1]` is E_tr(t). Both are "lower is better" and
positive (losses).

- GL(t) = 100 * (E_va(t) / E_opt(t) - 1), E_opt(t) = min of E_va up to t.
- P_k(t) = 1000 * (sum of E_tr over the strip / (k * min of E_tr over it) - 1),
  for the training strip t - k + 1 ... t that ends at a multiple of k.
- GL_alpha stops after the first epoch with GL(t) > alpha; PQ_alpha after the
  first strip end with GL(t) / P_k(t) > alpha; UP_s after the strip end where
  the validation error rose at s successive strip ends.
- `TimeLimit(seconds)` stops after the first epoch that ends once the time
  budget is spent; `Patience(n)` is Keras' own rule.

Criteria combine: `GL(5) | UP(3)` stops when either fires, `GL(2) & UP(2)` when
both fire at the same epoch. A criterion implements one method,
`evaluate_history(history)`, on an `ErrorHistory`.

References:
    Lutz Prechelt, "Early Stopping -- But When?", in Neural Networks: Tricks of
    the Trade, Springer, 1998 (2nd ed. 2012).
"""

from __future__ import annotations

from keras_bettermodels.criteria._base import AllOf, AnyOf, Criterion, Firing
from keras_bettermodels.criteria._history import ErrorHistory, measures
from keras_bettermodels.criteria._measures import (
    DEFAULT_STRIP_LENGTH as DEFAULT_STRIP_LENGTH,
)
from keras_bettermodels.criteria._measures import (
    generalization_loss,
    is_strip_end,
    training_progress,
    up_count,
)
from keras_bettermodels.criteria._parse import get
from keras_bettermodels.criteria._patience import Patience
from keras_bettermodels.criteria._prechelt import GL, PQ, UP
from keras_bettermodels.criteria._time import TimeLimit

__all__ = [
    "GL",
    "PQ",
    "UP",
    "AllOf",
    "AnyOf",
    "Criterion",
    "ErrorHistory",
    "Firing",
    "Patience",
    "TimeLimit",
    "generalization_loss",
    "get",
    "is_strip_end",
    "measures",
    "training_progress",
    "up_count",
]
