"""`check_gradients`: backprop's gradient against finite differences, for Keras."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_bettermodels import _validation
from keras_bettermodels._compat import gradient_check as _compat
from keras_bettermodels.gradient_check import (
    _autodiff,
    _clone,
    _core,
    _inputs,
    _probes,
    _rng,
)
from keras_bettermodels.gradient_check.report import (
    ALL_VARIABLES,
    GradientCheckReport,
    VariableCheck,
)

__all__ = [
    "DEFAULT_MAX_COORDINATES",
    "DEFAULT_NUM_DIRECTIONS",
    "METHODS",
    "check_gradients",
]

METHODS = ("directional", "coordinate")
#: Random directions per variable (and over all variables) by default.
DEFAULT_NUM_DIRECTIONS = 2
#: The coordinate method checks every coordinate of a variable up to this size,
#: and this many sampled coordinates of larger ones, by default.
DEFAULT_MAX_COORDINATES = 100


def _check_arguments(
    model: Any,
    method: Any,
    num_directions: Any,
    epsilon: Any,
    seed: Any,
    training: Any,
    max_coordinates_per_variable: Any,
    thresholds: Any,
    verbose: Any,
) -> tuple[float, tuple[float, float, float]]:
    if not isinstance(model, keras.Model):
        raise TypeError(
            _validation.invalid_type("model", "a Keras model (keras.Model)", model)
        )
    if method not in METHODS:
        raise ValueError(
            _validation.invalid_value("method", f"one of {METHODS}", method)
        )
    if num_directions is not None:
        _validation.check_int("num_directions", num_directions, minimum=1)
        if method != "directional":
            raise ValueError(
                _validation.invalid_value(
                    "num_directions",
                    "None with method='coordinate' (it counts random directions)",
                    num_directions,
                    "Use `max_coordinates_per_variable` to limit a coordinate check.",
                )
            )
    epsilon = (
        _core.DEFAULT_EPSILON
        if epsilon is None
        else _validation.check_number("epsilon", epsilon, strictly_positive=True)
    )
    if seed is not None:
        _validation.check_int("seed", seed)
    _validation.check_bool("training", training)
    if max_coordinates_per_variable is not None:
        _validation.check_int(
            "max_coordinates_per_variable", max_coordinates_per_variable, minimum=1
        )
    _validation.check_int("verbose", verbose)
    return epsilon, _core.check_thresholds(thresholds)


def _check_model(model: keras.Model, loss: Any) -> None:
    if not model.built or not model.weights:
        raise ValueError(
            _validation.invalid_value(
                "model",
                "a built model with weights",
                model,
                "Call the model on a batch, or `model.build(input_shape)`, first.",
            )
        )
    if not model.trainable_variables:
        raise ValueError(
            _validation.invalid_value(
                "model",
                "a model with trainable variables (there is no gradient to check)",
                model,
                "Set `trainable = True` on the layers to check.",
            )
        )
    if loss is None and not getattr(model, "compiled", False):
        raise ValueError(
            _validation.invalid_value(
                "loss",
                "a loss, since the model is not compiled",
                loss,
                "Compile the model with its loss, or pass one, such as "
                "`loss='sparse_categorical_crossentropy'`.",
            )
        )
    if isinstance(loss, str):
        try:
            keras.losses.get(loss)
        except ValueError as error:
            raise ValueError(
                _validation.invalid_value(
                    "loss", "a Keras loss (a name, function or Loss object)", loss
                )
            ) from error


def _first_evaluation(
    functions: _autodiff.LossFunctions,
    cached: _clone.Float64Clone,
    probes: _probes.Probes,
    x: Any,
    y: Any,
) -> tuple[Any, list[Any]]:
    """∇J at θ. A failure is retried eagerly, step by step, to tell whom to blame.

    If the model fails on `x`, `x` is at fault; if the loss fails on its
    predictions and `y`, `y` is; if neither fails eagerly, the original error
    (a tracing problem) is raised as it was.
    """
    try:
        return functions.value_and_grad(probes.theta, probes.state)
    except Exception as error:  # diagnosed and re-raised below
        original = error
    model = cached.model
    non_trainable, metrics_variables, x_tensors, y_tensors, weights = probes.state
    kwargs = (
        {"training": functions.training} if _compat.call_has_training_arg(model) else {}
    )
    try:
        model.stateless_call(
            list(probes.theta), list(non_trainable), x_tensors, **kwargs
        )
    except Exception as error:
        raise _inputs.not_accepted(x, error) from error
    try:
        _autodiff._loss(
            model,
            functions.training,
            probes.theta,
            non_trainable,
            metrics_variables,
            x_tensors,
            y_tensors,
            weights,
        )
    except Exception as error:
        raise ValueError(
            _validation.invalid_value(
                "y",
                "targets (and sample weights) that fit the model's outputs and "
                "its loss",
                _inputs.describe(y),
                f"Computing the loss raised {type(error).__name__}: {error}",
            )
        ) from error
    raise original


def check_gradients(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    sample_weight: Any = None,
    loss: Any = None,
    method: str = "directional",
    num_directions: int | None = None,
    epsilon: float | None = None,
    seed: int | None = None,
    training: bool = True,
    max_coordinates_per_variable: int | None = DEFAULT_MAX_COORDINATES,
    thresholds: Sequence[float] = _core.DEFAULT_THRESHOLDS,
    verbose: int = 1,
) -> GradientCheckReport:
    """Compares backpropagation's gradient of the loss with finite differences.

    The check runs on a float64 copy of the model with the same weights (the
    model, its weights and its optimizer are only read), on the batch `x`,
    `y`. J is what `fit` minimises: the compiled loss (or `loss`), plus the
    weight regularizers and `add_loss` penalties, through the model's own
    `compute_loss`. Dropout and other seeded random layers draw the same masks
    at every evaluation, and batch normalization uses the batch's statistics
    when `training=True`.

    - `method="directional"` (the default) draws `num_directions` random unit
      directions v within each trainable variable, so a wrong gradient is
      located, and as many over all variables together, and compares the
      central difference (J(θ+εv) − J(θ−εv)) / 2ε with ∇J·v. It costs two
      forward passes per direction, whatever the size of the variables.
    - `method="coordinate"` is the textbook check, one coordinate at a time:
      every coordinate of variables up to `max_coordinates_per_variable`
      entries, that many sampled coordinates of larger ones. Two forward passes
      per coordinate, with a progress bar.

    Each variable's relative error ‖numeric − analytic‖ / (‖numeric‖ +
    ‖analytic‖) is read off Ng's table: `great` < 1e-7 ≤ `ok` < 1e-5 ≤ `check`
    < 1e-3 ≤ `bug`. A direction in which a step crossed a kink (a ReLU at 0)
    is compared with the one-sided difference on θ's side and reported in
    `kinks`, not as a bug.

    Args:
        model: a built Keras model: Sequential, functional, or subclassed with
            a `get_config()` that rebuilds it.
        x: one batch of inputs: an array or tensor, or a list or dict of them
            for several inputs. Floating inputs are cast to float64, integer
            ones (token ids) are kept. A batch of 8 to 64 samples is plenty;
            the cost grows with it.
        y: the targets, as for `model.fit`. Defaults to `None`.
        sample_weight: per-sample weights of the loss, as for `model.fit`.
            Defaults to `None`.
        loss: a loss to use instead of the compiled one (needed when the model
            is not compiled): a name, function or `keras.losses.Loss`, or a
            list or dict of them per output. Defaults to `None`.
        method: `"directional"` or `"coordinate"`. Defaults to
            `"directional"`.
        num_directions: random directions per variable, and over all
            variables (directional method). `None` means 2. Defaults to `None`.
        epsilon: the finite-difference step ε. `None` means 1e-6, which keeps
            both the truncation error (ε²) and the float64 rounding error
            (1e-16/ε) near 1e-10. Defaults to `None`.
        seed: seeds the random directions or coordinates and the random layers
            (dropout masks), for a reproducible check. `None` draws fresh
            directions and keeps the model's random-layer state. Defaults to
            `None`.
        training: compute J in training mode (dropout on, batch statistics),
            as `fit` does. Defaults to `True`.
        max_coordinates_per_variable: the coordinate method's limit per
            variable; `None` checks every coordinate. Defaults to `100`.
        thresholds: the upper bounds of the "great", "ok" and "check" bands.
            Defaults to `(1e-7, 1e-5, 1e-3)`.
        verbose: 0 is silent, 1 shows a progress bar for the coordinate
            method. Defaults to `1`.

    Returns:
        A `GradientCheckReport`: `relative_error`, `verdict`, `passed`, a
        `VariableCheck` per variable, the `kinks`; `print(report)` shows it
        with the reference table.

    Raises:
        TypeError: for an argument of the wrong type, such as a dataset for
            `x`.
        ValueError: for an uncompiled model without `loss`, a model without
            trainable variables, `x` or `y` that do not fit the model, a
            non-positive `epsilon`, a subclassed model that cannot be rebuilt
            from its config (the message says to add `get_config()`), or a loss
            that is not deterministic (unseeded randomness in a custom layer).

    Example:

    ```python
    from keras_bettermodels import check_gradients

    report = check_gradients(model, x_train[:32], y_train[:32])
    print(report)              # relative error per variable, reference table
    assert report.passed, report
    ```

    References:
        Andrew Ng, "Improving Deep Neural Networks", week 1: gradient checking.
        CS231n, "Neural Networks 3": gradient checks.
    """
    start = time.perf_counter()
    epsilon, bands = _check_arguments(
        model,
        method,
        num_directions,
        epsilon,
        seed,
        training,
        max_coordinates_per_variable,
        thresholds,
        verbose,
    )
    _check_model(model, loss)
    batch = _float64_batch(model, x, y, sample_weight)
    rng = np.random.default_rng(seed)
    directions = num_directions or DEFAULT_NUM_DIRECTIONS

    with _rng.global_generators_kept(), _clone.float64_scope():
        cached = _clone.get_clone(model, batch[0], loss)
        if seed is not None:
            _clone.seed_generators(cached, seed)
        _clone.build_loss(cached, *batch)
        probes, j_tensor = _bound_probes(cached, training, seed, batch)
        j0 = _checked_center(probes, j_tensor, loss, model)

        def probe_all(
            center: float,
        ) -> tuple[list[list[_core.Probe]], list[_core.Probe]]:
            return _probe_all(
                probes,
                rng,
                method,
                directions,
                epsilon,
                center,
                cap=max_coordinates_per_variable,
                verbose=verbose,
            )

        checks = probe_all(j0)
        nudge, kinks_at_weights = None, []
        if _failed_rough(*checks, bands):
            # Maybe kinks at θ itself (zero biases on zero inputs): look nearby.
            probes.nudge(rng, _core.NUDGE)
            j0_nudged = probes.center()
            nudged = probe_all(j0_nudged)
            kinks_at_weights = _resolved(model, checks, nudged, bands)
            if kinks_at_weights:
                checks, nudge, j0 = nudged, _core.NUDGE, j0_nudged
    per_variable, together = checks

    return _report(
        model,
        per_variable,
        together,
        bands,
        kinks_at_weights=kinks_at_weights,
        nudge=nudge,
        method=method,
        epsilon=epsilon,
        j0=j0,
        evaluations=probes.count,
        elapsed=time.perf_counter() - start,
        num_directions=directions if method == "directional" else None,
        max_coordinates=max_coordinates_per_variable
        if method == "coordinate"
        else None,
        seed=seed,
        training=training,
    )


def _float64_batch(
    model: keras.Model, x: Any, y: Any, sample_weight: Any
) -> tuple[Any, Any, Any]:
    """`(x, y, sample_weight)` in float64, checked against each other and the model."""
    if x is None:
        raise ValueError(_validation.invalid_value("x", "one batch of inputs", x))
    x64 = _inputs.as_float64_batch("x", x)
    y64 = _inputs.as_float64_batch("y", y)
    weights64 = _inputs.as_float64_batch("sample_weight", sample_weight)
    _inputs.check_batch_sizes(x64, y64, weights64)
    _inputs.check_inputs_fit(model, x64)
    return x64, y64, weights64


def _bound_probes(
    cached: _clone.Float64Clone,
    training: bool,
    seed: int | None,
    batch: tuple[Any, Any, Any],
) -> tuple[_probes.Probes, Any]:
    """The probes of the float64 copy on `batch`, ∇J computed, and J's tensor."""
    if cached.functions is None:
        cached.functions = {}
    weights = cached.model.weights
    variables = [weights[i] for i in cached.trainable]
    for attempt in range(2):
        functions = cached.functions.get(training)
        if functions is None or attempt:
            functions = _autodiff.make_loss_functions(cached.model, training)
            cached.functions[training] = functions
        functions.set_torch_seed(seed or 0)
        state = functions.bind(*batch)
        probes = _probes.Probes(functions, state, variables)
        j_tensor, probes.grads = _first_evaluation(
            functions, cached, probes, batch[0], batch[1]
        )
        # State the loss created on first use must be passed in: start over.
        if len(state[1]) == len(cached.model.metrics_variables):
            break
    return probes, j_tensor


def _checked_center(
    probes: _probes.Probes, j_tensor: Any, loss: Any, model: keras.Model
) -> float:
    """J at θ, once it is known to be float64, finite and deterministic."""
    dtype = keras.backend.standardize_dtype(j_tensor.dtype)
    if dtype != "float64":
        raise ValueError(
            f"The loss was computed in {dtype}, not float64: a loss or layer "
            "fixes its dtype. A gradient check in lower precision cannot tell "
            "a bug from rounding. Received: loss="
            f"{loss if loss is not None else getattr(model, 'loss', None)!r}"
        )
    j0 = probes.center()
    j_grad = float(keras.ops.convert_to_numpy(j_tensor))
    if not math.isfinite(j0):
        raise ValueError(
            f"The loss is not finite at the model's weights (J={j0}): there "
            "is no gradient to check. Check the inputs and the weights."
        )
    if abs(j0 - j_grad) > 1e-8 * max(1.0, abs(j0)):
        raise ValueError(
            "The loss is not deterministic: two evaluations at the same "
            f"weights gave J={j_grad!r} and J={j0!r}. A custom layer draws "
            "random numbers without a seed generator; give it a "
            "`keras.random.SeedGenerator` (as Dropout has), or pass "
            "`training=False`."
        )
    return j0


def _probe_all(
    probes: _probes.Probes,
    rng: np.random.Generator,
    method: str,
    directions: int,
    epsilon: float,
    j0: float,
    *,
    cap: int | None,
    verbose: int,
) -> tuple[list[list[_core.Probe]], list[_core.Probe]]:
    """Every probe of the check at the probes' θ: per variable, and over all."""
    if method == "directional":
        return _probes.directional(probes, rng, directions, epsilon, j0)
    return _probes.coordinates(probes, rng, cap, epsilon, j0, verbose), []


def _rows(
    model: keras.Model,
    per_variable: list[list[_core.Probe]],
    together: list[_core.Probe],
) -> dict[str, list[_core.Probe]]:
    rows = {
        variable.path: probes
        for variable, probes in zip(
            model.trainable_variables, per_variable, strict=True
        )
    }
    if together:
        rows[ALL_VARIABLES] = together
    return rows


def _resolved(
    model: keras.Model,
    at_weights: tuple[list[list[_core.Probe]], list[_core.Probe]],
    nudged: tuple[list[list[_core.Probe]], list[_core.Probe]],
    bands: tuple[float, float, float],
) -> list[str]:
    """The rows that failed with rough probes at θ and pass at the nudged θ.

    Those failed because of kinks at θ; a row that still fails has a wrong
    gradient, and when no row is resolved the nudge was not about kinks.
    """
    before, after = _rows(model, *at_weights), _rows(model, *nudged)
    return [
        name
        for name, probes in before.items()
        if not _passes(probes, bands)
        and any(p.rough for p in probes)
        and _passes(after[name], bands)
    ]


def _passes(
    probes: list[_core.Probe],
    bands: tuple[float, float, float] = _core.DEFAULT_THRESHOLDS,
) -> bool:
    return _core.compare(probes, bands)[1] in ("great", "ok")


def _failed_rough(
    per_variable: list[list[_core.Probe]],
    together: list[_core.Probe],
    bands: tuple[float, float, float],
) -> bool:
    """Whether a row failed and some probe's one-sided differences disagree.

    Such a failure may be kinks at θ itself, where every step crosses one and
    no side is smooth: the check is repeated at a nudged θ, where a wrong
    gradient is still wrong and a kink is no longer in the way.
    """
    rows = [*per_variable, together]
    failed = any(probes and not _passes(probes, bands) for probes in rows)
    return failed and any(p.rough for probes in rows for p in probes)


def _badness(check: VariableCheck) -> float:
    error = check.relative_error
    return math.inf if math.isnan(error) else error


def _report(
    model: keras.Model,
    per_variable: list[list[_core.Probe]],
    together: list[_core.Probe],
    bands: tuple[float, float, float],
    **details: Any,
) -> GradientCheckReport:
    variables = []
    for variable, probes in zip(model.trainable_variables, per_variable, strict=True):
        error, verdict = _core.compare(probes, bands)
        variables.append(
            VariableCheck(
                name=variable.path,
                shape=tuple(int(d) for d in variable.shape),
                relative_error=error,
                verdict=verdict,
                checked=len(probes),
                kinks=sum(p.kink for p in probes),
            )
        )
    all_variables = None
    num_parameters = sum(v.size for v in variables)
    if together:
        error, verdict = _core.compare(together, bands)
        all_variables = VariableCheck(
            name=ALL_VARIABLES,
            shape=(num_parameters,),
            relative_error=error,
            verdict=verdict,
            checked=len(together),
            kinks=sum(p.kink for p in together),
        )
    checks = variables + ([all_variables] if all_variables is not None else [])
    # The headline is the worst row: the number whose band is the verdict.
    worst = max(checks, key=_badness, default=None)
    error = worst.relative_error if worst is not None else 0.0
    kinks = [c.name for c in checks if c.kinks]
    kinks += [n for n in details["kinks_at_weights"] if n not in kinks]
    return GradientCheckReport(
        relative_error=error,
        verdict=_core.verdict(error, bands),
        variables=variables,
        kinks=kinks,
        set_by=worst.name if worst is not None else None,
        nudge=details["nudge"],
        method=details["method"],
        epsilon=details["epsilon"],
        thresholds=bands,
        loss=details["j0"],
        num_parameters=num_parameters,
        num_evaluations=details["evaluations"],
        elapsed=details["elapsed"],
        backend=keras.backend.backend(),
        all_variables=all_variables,
        num_directions=details["num_directions"],
        max_coordinates_per_variable=details["max_coordinates"],
        seed=details["seed"],
        training=details["training"],
    )
