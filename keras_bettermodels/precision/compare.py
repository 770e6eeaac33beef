"""`compare_precision`: time a model's training steps under several dtype policies.

Whether mixed precision pays depends on the model, the batch and the device;
the way to know is to measure. This builds the model once per policy, gives
every copy the same initial weights, warms each up (compilation and first
steps are not timed), then times training steps in alternating rounds, so
that a machine that slows down or speeds up during the run affects every
policy alike.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keras_bettermodels import _validation

__all__ = ["DEFAULT_POLICIES", "PrecisionComparison", "compare_precision"]

DEFAULT_POLICIES = ("float32", "mixed_float16")
#: Untimed steps per policy before timing: compilation, tracing, caches.
WARMUP_STEPS = 5
#: The timed steps are split into this many alternating rounds (fewer if
#: there are fewer steps); each policy's step time is the median of its rounds.
ROUNDS = 5


@dataclass(frozen=True)
class PrecisionComparison:
    """Training step times and losses of one model under several dtype policies.

    Attributes:
        policies: the policies compared, the baseline first.
        step_time: policy -> median seconds per training step over the rounds.
        final_loss: policy -> the mean training loss of the last timed round.
        steps: the timed training steps per policy.
        batch_size: the samples in each step.
        backend: the Keras backend that ran them.
        devices: the devices the backend computed on, as text.
        round_times: policy -> seconds per step in each round, in order.
    """

    policies: tuple[str, ...]
    step_time: dict[str, float]
    final_loss: dict[str, float]
    steps: int
    batch_size: int
    backend: str
    devices: tuple[str, ...] = ()
    round_times: dict[str, list[float]] = field(default_factory=dict)

    @property
    def speedups(self) -> dict[str, float]:
        """Policy -> the baseline's step time divided by the policy's (>1: faster)."""
        baseline = self.step_time[self.policies[0]]
        return {policy: baseline / self.step_time[policy] for policy in self.policies}

    @property
    def speedup(self) -> float:
        """The second policy's speedup over the first (mixed over float32 by default).

        Below 1 means slower: on a CPU, mixed precision usually is.
        """
        return self.speedups[self.policies[1]]

    def summary(self) -> str:
        """Returns a table of step times, speedups and final losses."""
        lines = [
            f"Backend: {self.backend}; devices: {', '.join(self.devices) or 'n/a'}",
            f"{self.steps} timed steps per policy, batch size {self.batch_size}, "
            "median of alternating rounds",
            f"{'policy':<16} {'ms/step':>10} {'speedup':>8} {'final loss':>11}",
        ]
        for policy in self.policies:
            lines.append(
                f"{policy:<16} {self.step_time[policy] * 1000:>10.3f} "
                f"{self.speedups[policy]:>7.2f}x {self.final_loss[policy]:>11.5g}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Returns the comparison as JSON-serializable data."""
        return {
            "policies": list(self.policies),
            "step_time": dict(self.step_time),
            "final_loss": dict(self.final_loss),
            "speedups": self.speedups,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "backend": self.backend,
            "devices": list(self.devices),
            "round_times": {k: list(v) for k, v in self.round_times.items()},
        }


def _check_data(data: Any) -> tuple[tuple[Any, ...], int]:
    import keras

    if not isinstance(data, tuple) or len(data) not in (2, 3):
        raise TypeError(
            _validation.invalid_type(
                "data", "a tuple (x, y) or (x, y, sample_weight): one batch", data
            )
        )
    leaves = keras.tree.flatten(data[0])
    shape = getattr(leaves[0], "shape", None) if leaves else None
    if not shape:
        raise ValueError(
            _validation.invalid_value(
                "data", "arrays whose first dimension is the batch", data
            )
        )
    return data, int(shape[0])


def _check_policies(policies: Any) -> tuple[str, ...]:
    import keras

    if isinstance(policies, str) or not isinstance(policies, Sequence):
        raise TypeError(
            _validation.invalid_type(
                "policies", "a sequence of dtype policy names", policies
            )
        )
    names = []
    for policy in policies:
        try:
            names.append(keras.dtype_policies.get(policy).name)
        except (ValueError, TypeError) as error:
            raise ValueError(
                _validation.invalid_value(
                    "policies",
                    "dtype policies or their names, such as 'mixed_float16'",
                    policies,
                )
            ) from error
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(
            _validation.invalid_value(
                "policies", "at least two different dtype policies", policies
            )
        )
    return tuple(names)


def _round_sizes(steps: int) -> list[int]:
    rounds = min(ROUNDS, steps)
    size, extra = divmod(steps, rounds)
    return [size + (1 if index < extra else 0) for index in range(rounds)]


def compare_precision(
    build_model: Callable[[], Any],
    data: tuple[Any, ...],
    *,
    policies: Sequence[str] = DEFAULT_POLICIES,
    steps: int = 50,
) -> PrecisionComparison:
    """Times training steps of the same model under each dtype policy, side by side.

    For each policy, sets it as the global dtype policy and calls
    `build_model()`; every model then gets the first one's initial weights.
    Each model trains `5` untimed warm-up steps (compilation, tracing), then
    `steps` timed steps, split into up to 5 rounds that alternate between the
    policies. Every step trains on `data`, one batch, so the input pipeline is
    not part of the measure. The timing runs from a round's first step to its
    epoch end, when Keras has the round's loss in hand: all its steps are done,
    on any backend. The global dtype policy is restored afterwards, also when
    an error interrupts.

    Args:
        build_model: a function with no arguments that builds and compiles
            the model, under whatever global dtype policy is set when it is
            called (`keras.config.set_dtype_policy`): the same architecture
            each time. Under `mixed_float16`, Keras' `compile()` adds loss
            scaling.
        data: one training batch: `(x, y)` or `(x, y, sample_weight)`.
        policies: the dtype policies to compare, the baseline first. Defaults
            to `("float32", "mixed_float16")`.
        steps: timed training steps per policy. Defaults to `50`.

    Returns:
        A `PrecisionComparison`: median step times, `speedup` (of the second
        policy over the first), `speedups`, and the final losses.

    Raises:
        TypeError: if `build_model` is not callable or does not return a
            `keras.Model`, or `data` / `policies` have the wrong type.
        ValueError: if `build_model` returns an uncompiled model or
            different architectures, or for invalid `policies` / `steps`.

    Example:

    ```python
    def build_model():
        model = keras.Sequential([
            keras.Input((784,)),
            keras.layers.Dense(4096, activation="relu"),
            keras.layers.Dense(10),
            keras.layers.Activation("softmax", dtype="float32"),
        ])
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    result = compare_precision(build_model, (x[:512], y[:512]))
    print(result)  # ms/step, speedup and final loss per policy
    ```
    """
    import keras

    from keras_bettermodels.precision import hardware

    if not callable(build_model):
        raise TypeError(
            _validation.invalid_type("build_model", "a function", build_model)
        )
    data, batch_size = _check_data(data)
    names = _check_policies(policies)
    _validation.check_int("steps", steps, minimum=1)

    saved_policy = keras.config.dtype_policy()
    try:
        models = {}
        for name in names:
            keras.config.set_dtype_policy(name)
            model = build_model()
            if not isinstance(model, keras.Model):
                raise TypeError(
                    _validation.invalid_type(
                        "build_model", "a function returning a keras.Model", model
                    )
                )
            if getattr(model, "optimizer", None) is None:
                raise ValueError(
                    _validation.invalid_value(
                        "build_model",
                        "a function returning a compiled model",
                        build_model,
                        "Call `model.compile(...)` in it.",
                    )
                )
            models[name] = model

        def train(name: str, count: int) -> tuple[float, float]:
            keras.config.set_dtype_policy(name)
            return _timed_fit(models[name], data, count)

        for name, model in models.items():
            if not model.built:  # no `keras.Input`: a forward pass builds it
                keras.config.set_dtype_policy(name)
                model.predict_on_batch(data[0])
        initial = models[names[0]].get_weights()
        for name in names[1:]:
            try:
                models[name].set_weights(initial)
            except ValueError as error:
                raise ValueError(
                    _validation.invalid_value(
                        "build_model",
                        "a function that builds the same architecture each time",
                        build_model,
                    )
                ) from error
        for name in names:
            train(name, WARMUP_STEPS)

        round_times: dict[str, list[float]] = {name: [] for name in names}
        final_loss: dict[str, float] = {}
        for index, count in enumerate(_round_sizes(steps)):
            order = names if index % 2 == 0 else tuple(reversed(names))
            for name in order:
                seconds, loss = train(name, count)
                round_times[name].append(seconds / count)
                final_loss[name] = loss
    finally:
        keras.config.set_dtype_policy(saved_policy)

    return PrecisionComparison(
        policies=names,
        step_time={
            name: statistics.median(times) for name, times in round_times.items()
        },
        final_loss=final_loss,
        steps=steps,
        batch_size=batch_size,
        backend=keras.backend.backend(),
        devices=tuple(str(device) for device in hardware.detect_devices()),
        round_times=round_times,
    )


def _timed_fit(model: Any, data: tuple[Any, ...], steps: int) -> tuple[float, float]:
    """Trains `steps` steps on `data`; returns (seconds, mean loss)."""
    import keras

    class SameBatch(keras.utils.PyDataset):
        def __len__(self) -> int:
            return steps

        def __getitem__(self, index: int) -> tuple[Any, ...]:
            return data

    class Clock(keras.callbacks.Callback):
        start: float | None = None
        seconds = math.nan

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if self.start is None:
                self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            # Keras has turned the logs into Python floats by now, which waits
            # for every step of the epoch to finish, on every backend.
            if self.start is not None:
                self.seconds = time.perf_counter() - self.start

    clock = Clock()
    history = model.fit(SameBatch(), epochs=1, verbose=0, callbacks=[clock])
    loss = history.history.get("loss", [math.nan])[-1]
    return clock.seconds, float(loss)
