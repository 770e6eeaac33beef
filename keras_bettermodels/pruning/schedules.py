"""Pruning schedules: how sparse each layer should be, and when to update its mask.

A schedule is a pure function of the training step. It answers two questions
for step `s` (the 0-based index of the training batch, counted over every `fit`
the model has had): should the masks be updated at `s`, and to which sparsity.
The arithmetic uses `keras.ops`, so the same schedule runs inside the compiled
training step on every backend and, given a Python `int`, eagerly.

The semantics are those of TensorFlow Model Optimization's `ConstantSparsity`
and `PolynomialDecay`: masks are updated at steps `begin_step`,
`begin_step + frequency`, ... up to and including `end_step` (`-1`: forever).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_bettermodels import _validation

__all__ = [
    "SHORTFALL_TOLERANCE",
    "ConstantSparsity",
    "PolynomialDecay",
    "PruningSchedule",
    "default_schedule",
    "resolve_schedule",
]

logger = logging.getLogger(__name__)

_SPARSITY = "a number in [0, 1)"
# A shortfall of less than this (half a point of sparsity) is not worth a warning.
SHORTFALL_TOLERANCE = 0.005
_HOST_TABLE_STEPS = 4096


def _check_sparsity(name: str, value: Any) -> float:
    value = _validation.check_number(name, value)
    if not 0 <= value < 1:
        raise ValueError(
            _validation.invalid_value(
                name,
                _SPARSITY,
                value,
                "A sparsity is the fraction of weights set to zero; 1 would "
                "remove them all.",
            )
        )
    return value


def _check_steps(
    begin_step: Any, end_step: Any, frequency: Any, *, forever_allowed: bool
) -> tuple[int, int, int]:
    begin_step = _validation.check_int("begin_step", begin_step)
    frequency = _validation.check_int("frequency", frequency, minimum=1)
    if forever_allowed and end_step == -1 and not isinstance(end_step, bool):
        return begin_step, -1, frequency
    expected = (
        f"-1 (prune forever) or an integer >= begin_step={begin_step}"
        if forever_allowed
        else f"an integer > begin_step={begin_step}"
    )
    if not _validation._is_int(end_step):
        raise TypeError(_validation.invalid_type("end_step", expected, end_step))
    too_early = end_step < begin_step if forever_allowed else end_step <= begin_step
    if too_early:
        raise ValueError(
            _validation.invalid_value(
                "end_step",
                expected,
                end_step,
                "Pruning starts at `begin_step` and ends at `end_step`.",
            )
        )
    return begin_step, int(end_step), frequency


class PruningSchedule:
    """Base class of pruning schedules.

    Subclasses implement `__call__(step)`, returning `(should_prune, sparsity)`
    as backend tensors computed element-wise with `keras.ops` (no Python
    control flow on `step`, which is a tensor inside the training step), and
    `get_config()`.
    Register them with
    `keras.saving.register_keras_serializable()` so that a model using them can
    be saved and loaded.

    Example:

    ```python
    import keras
    from keras import ops
    from keras_bettermodels.pruning import PruningSchedule


    @keras.saving.register_keras_serializable(package="my_project")
    class Steps(PruningSchedule):
        '''50% from step 0, 80% from step 1000; masks updated every 100 steps.'''

        def __call__(self, step):
            sparsity = ops.where(ops.greater_equal(step, 1000), 0.8, 0.5)
            return self._should_prune(step, 0, 2000, 100), sparsity

        def get_config(self):
            return {}
    ```
    """

    def __call__(self, step: Any) -> tuple[Any, Any]:
        """Returns `(should_prune, sparsity)` at `step`.

        Write it element-wise with `keras.ops`: `step` is a scalar tensor
        inside the training step, and on PyTorch a vector of steps, for which
        the schedule is tabulated once on the CPU.

        Args:
            step: the 0-based training step: a Python `int` or an integer
                tensor.

        Returns:
            A boolean tensor, true when the masks are updated at `step`, and a
            `float32` tensor, the sparsity they are updated to (both of
            `step`'s shape; the sparsity may also be a scalar).
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Returns the arguments that rebuild this schedule."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PruningSchedule:
        """Rebuilds a schedule from `get_config()`'s output."""
        return cls(**config)

    def sparsity_at(self, step: int) -> float:
        """The sparsity the schedule asks for at `step`.

        Args:
            step: the 0-based training step.

        Returns:
            The sparsity, as a Python float.
        """
        return float(ops.convert_to_numpy(self(step)[1]))

    def prunes_at(self, step: int) -> bool:
        """Whether the masks are updated at `step`.

        Args:
            step: the 0-based training step.

        Returns:
            A Python bool.
        """
        return bool(ops.convert_to_numpy(self(step)[0]))

    def _on_host(self, step: int) -> tuple[bool, float]:
        """`self(step)` as Python values, from a table computed on the CPU.

        For eager backends (PyTorch), which would otherwise run a dozen tiny
        operations and a device-to-host copy per layer and step. The table
        covers `_HOST_TABLE_STEPS` steps from the first one asked for; a
        schedule whose `__call__` does not work on a vector of steps is read
        one step at a time.
        """
        table = self.__dict__.get("_host_table")
        if table is None or not 0 <= step - table[0] < len(table[1]):
            steps = np.arange(step, step + _HOST_TABLE_STEPS, dtype="int32")
            with keras.device("cpu"):
                try:
                    should, sparsity = self(ops.convert_to_tensor(steps))
                    should = np.asarray(ops.convert_to_numpy(should), bool)
                    sparsity = np.asarray(ops.convert_to_numpy(sparsity), "float32")
                    if should.shape != steps.shape:
                        raise ValueError("not element-wise")
                    sparsity = np.broadcast_to(sparsity, steps.shape)
                except Exception as error:  # any error: read one step at a time
                    # A custom schedule may branch on the step (`ops.cond`, an
                    # `if`), which fails on a vector in a backend's own way. Say
                    # so, and read the schedule one step at a time, which
                    # raises again if the schedule itself is broken.
                    logger.debug(
                        "%r does not work on a vector of steps (%s: %s); reading "
                        "it one step at a time.",
                        self,
                        type(error).__name__,
                        error,
                    )
                    should, sparsity = self(step)
                    return (
                        bool(ops.convert_to_numpy(should)),
                        float(ops.convert_to_numpy(sparsity)),
                    )
            table = (step, should, sparsity)
            self.__dict__["_host_table"] = table
        index = step - table[0]
        return bool(table[1][index]), float(table[2][index])

    @staticmethod
    def _should_prune(step: Any, begin_step: int, end_step: int, frequency: int) -> Any:
        """True at `begin_step`, every `frequency` steps after, to `end_step`."""
        in_range = ops.greater_equal(step, begin_step)
        if end_step >= 0:
            in_range = ops.logical_and(in_range, ops.less_equal(step, end_step))
        turn = ops.equal(ops.mod(ops.subtract(step, begin_step), frequency), 0)
        return ops.logical_and(in_range, turn)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@keras.saving.register_keras_serializable(package="keras_bettermodels")
class ConstantSparsity(PruningSchedule):
    """Prunes to a constant sparsity, updating the masks every `frequency` steps.

    At steps `begin_step`, `begin_step + frequency`, ... (up to `end_step`) each
    layer's mask is recomputed so that the `target_sparsity` fraction of its
    weights with the smallest magnitudes is zero.

    Args:
        target_sparsity: the fraction of weights to zero, in [0, 1).
        begin_step: the first step at which the masks are updated.
        end_step: the last step at which the masks may be updated; `-1`
            updates them for as long as training goes on. Defaults to `-1`.
        frequency: the number of steps between mask updates. Defaults to
            `100`.

    Raises:
        ValueError: if `target_sparsity` is outside [0, 1), `begin_step` is
            negative, `end_step` is before `begin_step` (other than `-1`), or
            `frequency` is not positive.
        TypeError: if a step or the frequency is not an integer.

    Example:

    ```python
    from keras_bettermodels.pruning import ConstantSparsity

    schedule = ConstantSparsity(0.8, begin_step=0, frequency=100)
    schedule.sparsity_at(500)   # 0.8
    schedule.prunes_at(500)     # True
    schedule.prunes_at(550)     # False
    ```

    References:
        Michael Zhu and Suyog Gupta, "To prune, or not to prune: exploring the
        efficacy of pruning for model compression", ICLR Workshop, 2018.
    """

    def __init__(
        self,
        target_sparsity: float,
        begin_step: int,
        end_step: int = -1,
        frequency: int = 100,
    ) -> None:
        self.target_sparsity = _check_sparsity("target_sparsity", target_sparsity)
        self.begin_step, self.end_step, self.frequency = _check_steps(
            begin_step, end_step, frequency, forever_allowed=True
        )

    def __call__(self, step: Any) -> tuple[Any, Any]:
        should_prune = self._should_prune(
            step, self.begin_step, self.end_step, self.frequency
        )
        return should_prune, ops.convert_to_tensor(self.target_sparsity, "float32")

    def get_config(self) -> dict[str, Any]:
        return {
            "target_sparsity": self.target_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
        }


@keras.saving.register_keras_serializable(package="keras_bettermodels")
class PolynomialDecay(PruningSchedule):
    """Raises sparsity from `initial_sparsity` to `final_sparsity` along a polynomial.

    Zhu and Gupta's gradual pruning: at step `s` the sparsity is

        final + (initial - final) * (1 - p) ** power,
        p = clip((s - begin_step) / (end_step - begin_step), 0, 1)

    fast at first, while the network can recover, then more and more slowly.
    The masks are updated at steps `begin_step`, `begin_step + frequency`, ...,
    up to `end_step`; `final_sparsity` is reached at `end_step` when
    `end_step - begin_step` is a multiple of `frequency`. Otherwise the last
    update comes before `end_step`, short of `final_sparsity`: usually by a
    hair, as the curve is flat there; a warning at construction says so when
    the shortfall is over half a point of sparsity.

    Args:
        initial_sparsity: the sparsity at `begin_step`, in [0, 1).
        final_sparsity: the sparsity at and after `end_step`, in [0, 1), at
            least `initial_sparsity`.
        begin_step: the first step at which the masks are updated.
        end_step: the step at which `final_sparsity` is reached; after it the
            masks no longer change.
        power: the exponent of the curve; 1 is linear. Defaults to `3`.
        frequency: the number of steps between mask updates. Defaults to
            `100`.

    Raises:
        ValueError: if a sparsity is outside [0, 1), `final_sparsity` is below
            `initial_sparsity`, `begin_step` is negative, `end_step` is not
            after `begin_step`, or `power` or `frequency` is not positive.
        TypeError: if a step or the frequency is not an integer.

    Example:

    ```python
    from keras_bettermodels.pruning import PolynomialDecay

    schedule = PolynomialDecay(
        initial_sparsity=0.5, final_sparsity=0.8, begin_step=0, end_step=1000
    )
    schedule.sparsity_at(0)     # 0.5
    schedule.sparsity_at(1000)  # 0.8
    ```

    References:
        Michael Zhu and Suyog Gupta, "To prune, or not to prune: exploring the
        efficacy of pruning for model compression", ICLR Workshop, 2018.
    """

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        power: float = 3,
        frequency: int = 100,
    ) -> None:
        self.initial_sparsity = _check_sparsity("initial_sparsity", initial_sparsity)
        self.final_sparsity = _check_sparsity("final_sparsity", final_sparsity)
        if self.final_sparsity < self.initial_sparsity:
            raise ValueError(
                _validation.invalid_value(
                    "final_sparsity",
                    f"a number >= initial_sparsity={self.initial_sparsity!r}",
                    final_sparsity,
                    "Pruned weights stay pruned: sparsity can only grow.",
                )
            )
        self.begin_step, self.end_step, self.frequency = _check_steps(
            begin_step, end_step, frequency, forever_allowed=False
        )
        self.power = _validation.check_number("power", power, strictly_positive=True)
        last = self.end_step - (self.end_step - self.begin_step) % self.frequency
        reached = self._sparsity_on_host(last)
        if self.final_sparsity - reached > SHORTFALL_TOLERANCE:
            warnings.warn(
                f"PolynomialDecay: end_step - begin_step = "
                f"{self.end_step - self.begin_step} is not a multiple of "
                f"frequency={self.frequency}, so the masks are last updated at step "
                f"{last}, to sparsity {reached:.3f}, short of "
                f"final_sparsity={self.final_sparsity}. Make end_step - begin_step "
                "a multiple of frequency to reach it.",
                stacklevel=2,
            )

    def _sparsity_on_host(self, step: int) -> float:
        """`sparsity_at(step)` in plain Python (no backend), for `__init__`."""
        progress = (step - self.begin_step) / (self.end_step - self.begin_step)
        progress = min(max(progress, 0.0), 1.0)
        remaining = (1.0 - progress) ** self.power
        return (
            self.final_sparsity
            + (self.initial_sparsity - self.final_sparsity) * remaining
        )

    def __call__(self, step: Any) -> tuple[Any, Any]:
        should_prune = self._should_prune(
            step, self.begin_step, self.end_step, self.frequency
        )
        progress = ops.divide(
            ops.subtract(ops.cast(step, "float32"), float(self.begin_step)),
            float(self.end_step - self.begin_step),
        )
        progress = ops.clip(progress, 0.0, 1.0)
        remaining = ops.power(ops.subtract(1.0, progress), self.power)
        sparsity = ops.add(
            self.final_sparsity,
            ops.multiply(self.initial_sparsity - self.final_sparsity, remaining),
        )
        return should_prune, ops.cast(sparsity, "float32")

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self.final_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "power": self.power,
            "frequency": self.frequency,
        }


def default_schedule() -> PruningSchedule:
    """TensorFlow Model Optimization's default: `ConstantSparsity(0.5, 0)`.

    Half of each pruned weight is zero from the first training step on, the
    masks updated every 100 steps for as long as training goes on.
    """
    return ConstantSparsity(0.5, begin_step=0)


def resolve_schedule(schedule: Any, pruning_schedule: Any) -> PruningSchedule:
    """The one schedule given as `schedule` or as tfmot's `pruning_schedule`.

    Args:
        schedule: this package's name for the argument.
        pruning_schedule: TensorFlow Model Optimization's name for it.

    Returns:
        The `PruningSchedule` given, or `default_schedule()` when neither is.

    Raises:
        ValueError: if both are given.
        TypeError: if the one given is not a `PruningSchedule`.
    """
    if schedule is not None and pruning_schedule is not None:
        raise ValueError(
            _validation.invalid_value(
                "pruning_schedule",
                "None when `schedule` is given (they are two names for one argument)",
                pruning_schedule,
                "Pass the schedule once, as `schedule=` or `pruning_schedule=`.",
            )
        )
    name = "schedule" if pruning_schedule is None else "pruning_schedule"
    value = schedule if pruning_schedule is None else pruning_schedule
    if value is None:
        return default_schedule()
    if not isinstance(value, PruningSchedule):
        raise TypeError(
            _validation.invalid_type(
                name,
                "a keras_bettermodels.pruning.PruningSchedule, such as "
                "ConstantSparsity(0.8, begin_step=0)",
                value,
            )
        )
    return value
