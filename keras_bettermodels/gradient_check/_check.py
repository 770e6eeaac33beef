"""`check_gradients`: backprop's gradient against finite differences, for Keras."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np

from keras_bettermodels import _validation
from keras_bettermodels.gradient_check import _autodiff, _clone, _core, _inputs
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


@contextlib.contextmanager
def _torch_rng_kept() -> Iterator[None]:
    """Restores torch's global generators, which the check reseeds, afterwards."""
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    devices = (
        list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    )
    with torch.random.fork_rng(devices=devices):
        yield


class _Evaluator:
    """Counts evaluations of J; keeps θ and ∇J as backend tensors (and NumPy).

    The NumPy copies of θ and ∇J, which the host-side probes need, are made
    on first use: on JAX the directional probes run on the device
    (`LossFunctions.directional`) and need none.
    """

    def __init__(
        self,
        functions: _autodiff.LossFunctions,
        state: Sequence[Any],
        variables: Sequence[Any],
    ) -> None:
        self.functions = functions
        self.state = state
        self.tensors = functions.trainable_tensors(variables)
        self.shapes = [tuple(int(d) for d in t.shape) for t in self.tensors]
        self.grads: list[Any] = []
        self._theta: list[np.ndarray | None] = [None] * len(self.tensors)
        self._host_grads: list[np.ndarray | None] = [None] * len(self.tensors)
        self.count = 0

    def theta(self, index: int) -> np.ndarray:
        """θ's variable `index` as a float64 NumPy array."""
        value = self._theta[index]
        if value is None:
            value = self._theta[index] = self.functions.to_numpy(self.tensors[index])
        return value

    def grad(self, index: int) -> np.ndarray:
        """∇J's part for variable `index` as a float64 NumPy array."""
        value = self._host_grads[index]
        if value is None:
            value = self._host_grads[index] = self.functions.to_numpy(self.grads[index])
        return value

    def at(self, replaced: dict[int, np.ndarray]) -> float:
        """J with the variables in `replaced` set to the given values."""
        tensors = list(self.tensors)
        for index, value in replaced.items():
            tensors[index] = self.functions.to_tensor(value)
        self.count += 1
        return self.functions.value(tensors, self.state)

    def probe(
        self,
        moved: Callable[[float], dict[int, np.ndarray]],
        analytic: float,
        epsilon: float,
        j0: float,
    ) -> _core.Probe:
        """Evaluates J at θ ± εv; `moved(h)` gives the variables of θ + hv.

        When a step crossed a kink, J is also evaluated two steps out on the
        other side, for a second-order one-sided difference.
        """
        plus = self.at(moved(epsilon))
        minus = self.at(moved(-epsilon))
        return self._far(_core.Probe(plus, minus, j0, analytic, epsilon), moved)

    def _far(
        self, probe: _core.Probe, moved: Callable[[float], dict[int, np.ndarray]]
    ) -> _core.Probe:
        side = probe.smooth_side
        if not side:
            return probe
        far = self.at(moved(2 * side * probe.epsilon))
        return _core.Probe(
            probe.plus, probe.minus, probe.center, probe.analytic, probe.epsilon, far
        )

    def direction(
        self,
        indices: Sequence[int],
        signs: tuple[list[np.ndarray], float],
        epsilon: float,
        j0: float,
    ) -> _core.Probe:
        """The probe along a random direction (from `_signs`) over `indices`."""
        packed, size = signs
        shapes = [self.shapes[i] for i in indices]

        def moved(h: float) -> dict[int, np.ndarray]:
            vs = _unpack(packed, shapes, size)
            return self.along(dict(zip(indices, vs, strict=True)))(h)

        if self.functions.fused:
            plus, minus, analytic = self.functions.directional(
                self.tensors, self.grads, self.state, indices, packed, size, epsilon
            )
            self.count += 2
            probe = _core.Probe(plus, minus, j0, analytic, epsilon)
            return self._far(probe, moved)
        vs = _unpack(packed, shapes, size)
        analytic = sum(_dot(self.grad(i), v) for i, v in zip(indices, vs, strict=True))
        return self.probe(
            self.along(dict(zip(indices, vs, strict=True))), analytic, epsilon, j0
        )

    def along(self, directions: dict[int, np.ndarray]) -> Callable[[float], Any]:
        """`moved` for a direction v given per variable (zero elsewhere)."""

        def moved(h: float) -> dict[int, np.ndarray]:
            values = {}
            for index, v in directions.items():
                value = v * h  # one new array per variable, then in place
                value += self.theta(index)
                values[index] = value
            return values

        return moved

    def along_axis(self, index: int, scratch: np.ndarray, position: int) -> Any:
        """`moved` for one coordinate of variable `index`, through `scratch`.

        `scratch` is a flat copy of the variable; the coordinate is set in
        place for each evaluation (J is computed before the next change), so
        no step allocates a whole new variable.
        """
        theta = self.theta(index)
        original = float(theta.flat[position])
        shape = theta.shape

        def moved(h: float) -> dict[int, np.ndarray]:
            scratch[position] = original + h
            return {index: scratch.reshape(shape)}

        return moved


def _signs(
    rng: np.random.Generator, shapes: Sequence[tuple[int, ...]]
) -> tuple[list[np.ndarray], float]:
    """A random unit vector over variables of these shapes, as packed sign bits.

    Its entries are random signs, ±1/√n over the n entries of all the shapes:
    as good a random direction as a Gaussian one for a directional check
    (E[vvᵀ] = I/n either way), and several times faster to draw for a large
    model. Returned as the bits (one array of `(count + 7) // 8` bytes per
    shape, 1 for +) and 1/√n; `_unpack` makes the arrays.
    """
    total = sum(math.prod(shape) for shape in shapes)
    size = 1 / math.sqrt(total)
    packed = [
        np.frombuffer(rng.bytes((math.prod(shape) + 7) // 8), np.uint8)
        for shape in shapes
    ]
    return packed, size


def _unpack(
    packed: Sequence[np.ndarray], shapes: Sequence[tuple[int, ...]], size: float
) -> list[np.ndarray]:
    """The arrays of the direction that `_signs` drew."""
    parts = []
    for bits, shape in zip(packed, shapes, strict=True):
        count = math.prod(shape)
        signs = np.unpackbits(bits)[:count].astype(np.float64)
        signs *= 2 * size
        signs -= size
        parts.append(signs.reshape(shape))
    return parts


def _unit(
    rng: np.random.Generator, shapes: Sequence[tuple[int, ...]]
) -> list[np.ndarray]:
    """A random unit vector over variables of these shapes, one array each."""
    packed, size = _signs(rng, shapes)
    return _unpack(packed, shapes, size)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """a·b without BLAS (whose threads only add overhead for one dot product)."""
    return float(np.einsum("i,i->", a.ravel(), b.ravel()))


def _directional(
    evaluator: _Evaluator,
    rng: np.random.Generator,
    num_directions: int,
    epsilon: float,
    j0: float,
) -> tuple[list[list[_core.Probe]], list[_core.Probe]]:
    per_variable: list[list[_core.Probe]] = []
    for index, shape in enumerate(evaluator.shapes):
        probes = []
        if math.prod(shape):
            for _ in range(num_directions):
                signs = _signs(rng, [shape])
                probes.append(evaluator.direction([index], signs, epsilon, j0))
        per_variable.append(probes)
    together: list[_core.Probe] = []
    indices = [i for i, shape in enumerate(evaluator.shapes) if math.prod(shape)]
    if len(indices) > 1:
        shapes = [evaluator.shapes[i] for i in indices]
        for _ in range(num_directions):
            signs = _signs(rng, shapes)
            together.append(evaluator.direction(indices, signs, epsilon, j0))
    return per_variable, together


def _coordinate(
    evaluator: _Evaluator,
    rng: np.random.Generator,
    cap: int | None,
    epsilon: float,
    j0: float,
    verbose: int,
) -> list[list[_core.Probe]]:
    chosen = []
    for shape in evaluator.shapes:
        size = math.prod(shape)
        if cap is None or size <= cap:
            chosen.append(np.arange(size))
        else:
            chosen.append(np.sort(rng.choice(size, size=cap, replace=False)))
    total = int(sum(len(c) for c in chosen))
    progbar = (
        keras.utils.Progbar(total, verbose=verbose, unit_name="coordinate")
        if verbose
        else None
    )
    done = 0
    per_variable: list[list[_core.Probe]] = []
    for index, coordinates in enumerate(chosen):
        theta = evaluator.theta(index)
        flat_grad = evaluator.grad(index).ravel()
        scratch = theta.ravel().copy()
        probes = []
        for coordinate in coordinates:
            position = int(coordinate)
            moved = evaluator.along_axis(index, scratch, position)
            analytic = float(flat_grad[position])
            probes.append(evaluator.probe(moved, analytic, epsilon, j0))
            scratch[position] = theta.flat[position]
            done += 1
            if progbar is not None:
                progbar.update(done)
        per_variable.append(probes)
    return per_variable


def _first_evaluation(
    functions: _autodiff.LossFunctions,
    cached: _clone.Float64Clone,
    evaluator: _Evaluator,
    x: Any,
    y: Any,
) -> tuple[Any, list[Any]]:
    """∇J at θ. A failure is retried eagerly, step by step, to tell whom to blame.

    If the model fails on `x`, `x` is at fault; if the loss fails on its
    predictions and `y`, `y` is; if neither fails eagerly, the original error
    (a tracing problem) is raised as it was.
    """
    try:
        return functions.value_and_grad(evaluator.tensors, evaluator.state)
    except Exception as error:  # diagnosed and re-raised below
        original = error
    model = cached.model
    non_trainable, metrics_variables, x_tensors, y_tensors, weights = evaluator.state
    kwargs = {"training": functions.training} if model._call_has_training_arg else {}
    try:
        model.stateless_call(
            list(evaluator.tensors), list(non_trainable), x_tensors, **kwargs
        )
    except Exception as error:
        raise _inputs.not_accepted(x, error) from error
    try:
        _autodiff._loss(
            model,
            functions.training,
            evaluator.tensors,
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
    if x is None:
        raise ValueError(_validation.invalid_value("x", "one batch of inputs", x))
    x64 = _inputs.as_float64_batch("x", x)
    y64 = _inputs.as_float64_batch("y", y)
    weights64 = _inputs.as_float64_batch("sample_weight", sample_weight)
    _inputs.check_batch_sizes(x64, y64, weights64)
    _inputs.check_inputs_fit(model, x64)
    rng = np.random.default_rng(seed)
    directions = num_directions or DEFAULT_NUM_DIRECTIONS

    with _clone.float64_scope(), _torch_rng_kept():
        cached = _clone.get_clone(model, x64, loss)
        if seed is not None:
            _clone.seed_generators(cached, seed)
        _clone.build_loss(cached, x64, y64, weights64)
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
            state = functions.bind(x64, y64, weights64)
            evaluator = _Evaluator(functions, state, variables)
            j_tensor, evaluator.grads = _first_evaluation(
                functions, cached, evaluator, x64, y64
            )
            # State the loss created on first use must be passed in: start over.
            if len(state[1]) == len(cached.model.metrics_variables):
                break
        dtype = keras.backend.standardize_dtype(j_tensor.dtype)
        if dtype != "float64":
            raise ValueError(
                f"The loss was computed in {dtype}, not float64: a loss or layer "
                "fixes its dtype. A gradient check in lower precision cannot tell "
                "a bug from rounding. Received: loss="
                f"{loss if loss is not None else getattr(model, 'loss', None)!r}"
            )
        j0 = evaluator.at({})
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
        if method == "directional":
            per_variable, together = _directional(
                evaluator, rng, directions, epsilon, j0
            )
        else:
            per_variable = _coordinate(
                evaluator,
                rng,
                max_coordinates_per_variable,
                epsilon,
                j0,
                verbose,
            )
            together = []

    return _report(
        model,
        per_variable,
        together,
        bands,
        method=method,
        epsilon=epsilon,
        j0=j0,
        evaluations=evaluator.count,
        elapsed=time.perf_counter() - start,
        num_directions=directions if method == "directional" else None,
        max_coordinates=max_coordinates_per_variable
        if method == "coordinate"
        else None,
        seed=seed,
        training=training,
    )


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
    everything = [p for probes in per_variable for p in probes] + together
    error, band = _core.compare(everything, bands)
    checks = variables + ([all_variables] if all_variables is not None else [])
    return GradientCheckReport(
        relative_error=error,
        verdict=_core.worst([band, *(c.verdict for c in checks)]),
        variables=variables,
        kinks=[c.name for c in checks if c.kinks],
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
