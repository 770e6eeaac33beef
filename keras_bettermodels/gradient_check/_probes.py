"""The probes of a gradient check, on the device, the same on every backend.

A probe compares the central difference (J(θ+εv) − J(θ−εv)) / 2ε with ∇J·v.
θ, ∇J, the direction v, θ±εv and ∇J·v stay where the backend computes them
(the GPU, when there is one): per direction, the host sends the direction's
random signs as bits (one bit per moved parameter, 1/64 of a float64 copy),
and gets back three numbers, J(θ+εv), J(θ−εv) and ∇J·v, in one transfer. No
variable goes through NumPy in a repeated call: host copies of whole
variables are what made the PyTorch check 83× slower than JAX on a GPU.

The arithmetic is written once, with `keras.ops`, in two small kernels:

- `move`: (θs, ∇Js, sign bits, 1/√n, ε) → (θs + εv, θs − εv, ∇J·v) for the
  variables v moves; v is ±1/√n, its signs unpacked from the bits.
- `set_coordinate`: θ with one entry replaced (the coordinate method).

and compiled per backend by `_compiled`: `jax.jit` on JAX, `tf.function` on
TensorFlow, eager under `torch.no_grad()` on PyTorch. Nothing is compiled per
direction (a kernel once per tuple of shapes).

The signs are drawn on the host from the check's seed (`signs`), as they
always were: the same seed gives the same directions on every backend and
device, and drawing n/8 random bytes costs little next to a forward pass.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_bettermodels._compat import gradient_check as _compat
from keras_bettermodels.gradient_check import _autodiff, _core

__all__ = ["Probes", "coordinates", "directional", "signs"]

Signs = tuple[list[np.ndarray], float]


def signs(rng: np.random.Generator, shapes: Sequence[tuple[int, ...]]) -> Signs:
    """A random unit vector over variables of these shapes, as packed sign bits.

    Its entries are random signs, ±1/√n over the n entries of all the shapes:
    as good a random direction as a Gaussian one for a directional check
    (E[vvᵀ] = I/n either way), and several times faster to draw for a large
    model. Returned as the bits (one array of `(count + 7) // 8` bytes per
    shape, `np.packbits` order, 1 for +) and 1/√n; `move` unpacks them on the
    device.
    """
    total = sum(math.prod(shape) for shape in shapes)
    size = 1 / math.sqrt(total)
    packed = [
        np.frombuffer(rng.bytes((math.prod(shape) + 7) // 8), np.uint8)
        for shape in shapes
    ]
    return packed, size


# -- the kernels, written once with keras.ops -------------------------------


def _direction(bits: Any, shape: tuple[int, ...], scale: Any) -> Any:
    """v from packed sign bits (`np.unpackbits` order): ±`scale`."""
    shifts = keras.ops.convert_to_tensor(np.arange(7, -1, -1, dtype=np.uint8))
    unpacked = keras.ops.bitwise_and(
        keras.ops.right_shift(keras.ops.expand_dims(bits, -1), shifts), 1
    )
    count = math.prod(shape)
    signs = keras.ops.cast(keras.ops.reshape(unpacked, (-1,))[:count], "float64")
    return keras.ops.reshape(signs * (2 * scale) - scale, shape)


def _move(
    thetas: tuple[Any, ...],
    grads: tuple[Any, ...],
    packed: tuple[Any, ...],
    scale: Any,
    epsilon: Any,
) -> tuple[tuple[Any, ...], tuple[Any, ...], Any]:
    plus, minus, dot = [], [], None
    for theta, grad, bits in zip(thetas, grads, packed, strict=True):
        v = _direction(bits, tuple(theta.shape), scale)
        plus.append(v * epsilon + theta)
        minus.append(v * -epsilon + theta)
        part = keras.ops.sum(grad * v)
        dot = part if dot is None else dot + part
    return tuple(plus), tuple(minus), dot


def _set_coordinate(theta: Any, position: Any, value: Any) -> Any:
    flat = keras.ops.reshape(theta, (-1,))
    moved = keras.ops.scatter_update(
        flat, keras.ops.reshape(position, (1, 1)), keras.ops.reshape(value, (1,))
    )
    return keras.ops.reshape(moved, theta.shape)


@functools.cache
def _compiled(name: str, backend: str) -> Callable[..., Any]:
    """Kernel `name` compiled for `backend` (once per process and backend)."""
    kernels: dict[str, Callable[..., Any]] = {
        "move": _move,
        "set_coordinate": _set_coordinate,
    }
    kernel = kernels[name]
    if backend == "jax":
        import jax

        return jax.jit(kernel)
    if backend == "tensorflow":
        import tensorflow as tf

        function = tf.function(kernel)
        _compat.skip_tracing_warning(function)
        return function
    if backend == "torch":
        import torch

        def eager(*args: Any) -> Any:
            with torch.no_grad():
                return kernel(*args)

        return eager
    return kernel


def _kernel(name: str) -> Callable[..., Any]:
    return _compiled(name, keras.backend.backend())


def _scalar(value: float | int, dtype: str = "float64") -> Any:
    return keras.ops.convert_to_tensor(np.asarray(value, dtype=dtype))


def _to_floats(*values: Any) -> list[float]:
    """Device scalars as Python floats, in one transfer to the host."""
    stacked = keras.ops.stack([keras.ops.cast(v, "float64") for v in values])
    return [float(v) for v in keras.ops.convert_to_numpy(stacked)]


# -- the probes ---------------------------------------------------------------


class Probes:
    """θ, ∇J and the probes of one check, kept on the device.

    Args:
        functions: the backend's J and (J, ∇J) of the float64 copy.
        state: the arguments after θ of every evaluation (`functions.bind`).
        variables: the copy's trainable variables.
    """

    def __init__(
        self,
        functions: _autodiff.LossFunctions,
        state: Sequence[Any],
        variables: Sequence[Any],
    ) -> None:
        self.functions = functions
        self.state = state
        self.theta = functions.trainable_tensors(variables)
        self.shapes = [tuple(int(d) for d in t.shape) for t in self.theta]
        self.grads: list[Any] = []
        self.count = 0

    def _loss(self, replaced: dict[int, Any]) -> Any:
        """J (a device scalar) with the variables in `replaced` replaced."""
        theta = list(self.theta)
        for index, value in replaced.items():
            theta[index] = value
        self.count += 1
        return self.functions.value_tensor(theta, self.state)

    def nudge(self, rng: np.random.Generator, relative: float) -> None:
        """Moves θ off exact kinks, on the device, and recomputes ∇J there.

        Each entry moves by ±`relative` × its variable's RMS (the model's RMS
        for an all-zero variable, 1 for an all-zero model), signs drawn from
        `rng` as the directions are, so the move is reproducible.
        """
        sized = [i for i, shape in enumerate(self.shapes) if math.prod(shape)]
        rms = _to_floats(
            *(
                keras.ops.sqrt(keras.ops.mean(keras.ops.square(self.theta[i])))
                for i in sized
            )
        )
        counts = [math.prod(self.shapes[i]) for i in sized]
        overall = math.sqrt(
            sum(r * r * n for r, n in zip(rms, counts, strict=True)) / sum(counts)
        )
        theta = list(self.theta)
        one = _scalar(1.0)
        for index, scale in zip(sized, rms, strict=True):
            packed, _ = signs(rng, [self.shapes[index]])
            bits = (keras.ops.convert_to_tensor(packed[0]),)
            step = relative * (scale or overall or 1.0)
            moved, _, _ = _kernel("move")(
                (theta[index],), (self.grads[index],), bits, one, _scalar(step)
            )
            theta[index] = moved[0]
        self.theta = theta
        _, self.grads = self.functions.value_and_grad(self.theta, self.state)
        self.count += 1

    def center(self) -> float:
        """J at θ."""
        return _to_floats(self._loss({}))[0]

    def direction(
        self, indices: Sequence[int], drawn: Signs, epsilon: float, j0: float
    ) -> _core.Probe:
        """The probe along a direction from `signs`, over the variables `indices`."""
        packed, size = drawn
        bits = tuple(keras.ops.convert_to_tensor(b) for b in packed)
        thetas = tuple(self.theta[i] for i in indices)
        grads = tuple(self.grads[i] for i in indices)
        scale = _scalar(size)

        def moved(h: float) -> tuple[tuple[Any, ...], Any]:
            plus, _, dot = _kernel("move")(thetas, grads, bits, scale, _scalar(h))
            return plus, dot

        plus, minus, dot = _kernel("move")(thetas, grads, bits, scale, _scalar(epsilon))
        # Both passes are dispatched before the one wait for the numbers.
        j_plus = self._loss(dict(zip(indices, plus, strict=True)))
        j_minus = self._loss(dict(zip(indices, minus, strict=True)))
        values = _to_floats(j_plus, j_minus, dot)
        probe = _core.Probe(values[0], values[1], j0, values[2], epsilon)
        side = probe.smooth_side
        if not side:
            return probe
        # A step crossed a kink: J two steps out on θ's smooth side.
        far, _ = moved(2 * side * epsilon)
        j_far = _to_floats(self._loss(dict(zip(indices, far, strict=True))))[0]
        return _core.Probe(values[0], values[1], j0, values[2], epsilon, j_far)

    def coordinates(
        self,
        index: int,
        positions: np.ndarray,
        epsilon: float,
        j0: float,
        done: Callable[[], None],
    ) -> list[_core.Probe]:
        """The probes along coordinates `positions` of variable `index`.

        θ's and ∇J's entries there come to the host together, once; each
        probe moves one entry of θ on the device.
        """
        if not len(positions):
            return []
        taken = keras.ops.convert_to_tensor(positions.astype(np.int64))
        theta = self.theta[index]
        originals, analytic = (
            keras.ops.convert_to_numpy(
                keras.ops.take(keras.ops.reshape(tensor, (-1,)), taken)
            ).astype(np.float64)
            for tensor in (theta, self.grads[index])
        )
        set_coordinate = _kernel("set_coordinate")
        probes = []
        for position, original, slope in zip(
            positions, originals, analytic, strict=True
        ):
            where = _scalar(int(position), "int64")

            def at(h: float, where: Any = where, original: float = original) -> Any:
                moved = set_coordinate(theta, where, _scalar(original + h))
                return self._loss({index: moved})

            plus, minus = _to_floats(at(epsilon), at(-epsilon))
            probe = _core.Probe(plus, minus, j0, float(slope), epsilon)
            side = probe.smooth_side
            if side:
                far = _to_floats(at(2 * side * epsilon))[0]
                probe = _core.Probe(plus, minus, j0, float(slope), epsilon, far)
            probes.append(probe)
            done()
        return probes


def directional(
    probes: Probes,
    rng: np.random.Generator,
    num_directions: int,
    epsilon: float,
    j0: float,
) -> tuple[list[list[_core.Probe]], list[_core.Probe]]:
    """`num_directions` probes within each variable, and as many over all."""
    per_variable: list[list[_core.Probe]] = []
    for index, shape in enumerate(probes.shapes):
        within = []
        if math.prod(shape):
            for _ in range(num_directions):
                drawn = signs(rng, [shape])
                within.append(probes.direction([index], drawn, epsilon, j0))
        per_variable.append(within)
    together: list[_core.Probe] = []
    indices = [i for i, shape in enumerate(probes.shapes) if math.prod(shape)]
    if len(indices) > 1:
        shapes = [probes.shapes[i] for i in indices]
        for _ in range(num_directions):
            drawn = signs(rng, shapes)
            together.append(probes.direction(indices, drawn, epsilon, j0))
    return per_variable, together


def coordinates(
    probes: Probes,
    rng: np.random.Generator,
    cap: int | None,
    epsilon: float,
    j0: float,
    verbose: int,
) -> list[list[_core.Probe]]:
    """Every coordinate of variables up to `cap` entries, `cap` sampled of larger."""
    chosen = []
    for shape in probes.shapes:
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
    count = [0]

    def done() -> None:
        count[0] += 1
        if progbar is not None:
            progbar.update(count[0])

    return [
        probes.coordinates(index, positions, epsilon, j0, done)
        for index, positions in enumerate(chosen)
    ]
