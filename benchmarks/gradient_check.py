"""How fast, and how right, `check_gradients` is: ratios measured side by side.

For MLPs of about 10k, 100k, 1M and 10M parameters (64 inputs, two equal
hidden layers, 10 softmax outputs, a batch of 32) it prints:

(a) the directional check's time against its floor: the measured time of one
    float64 forward pass (the same compiled J the check evaluates) times the
    number of forward passes the check made, plus one measured
    value-and-gradient pass. Goal: within 1.5x.
(b) its speedup over the exhaustive coordinate check, whose time is
    extrapolated from the coordinate method timed on a sample of coordinates
    (and, more conservatively, from its own floor: two forward passes per
    parameter). Goal: >= 10,000x at 1M parameters on a repeated call; the
    first call (building the float64 copy, tracing included) beside it.
(c) planted bugs flagged and located (goal: all), and false alarms on the
    correct MLPs and the test suite's layer zoo (goal: none).

and `GradientCheckCallback(every_n_epochs=1)`'s share of `fit` time on the demo
model (the MLP of `make demo`).

Timings are noisy on a busy machine: read the ratios, not the digits. Run from
the repository root, on any Keras backend:

    python benchmarks/gradient_check.py
    KERAS_BACKEND=jax python benchmarks/gradient_check.py
    KBM_QUICK=1 python benchmarks/gradient_check.py   # 10k and 100k only
    python benchmarks/gradient_check.py --at-scale 2e8 --json out.json  # GPU

(d) the anchors, in the same run: the backend's own checker on the same MLP,
    `torch.autograd.gradcheck(fast_mode=True)` on PyTorch and
    `jax.test_util.check_grads` on JAX (1M parameters; 100k with KBM_QUICK).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.*

import keras
import numpy as np

from keras_bettermodels.gradient_check import _autodiff, _clone
from keras_bettermodels.gradient_check.check import check_gradients
from tests.gradient_check import planted
from tests.zoo import models as zoo

QUICK = os.environ.get("KBM_QUICK") == "1"
SIZES = [10_000, 100_000] if QUICK else [10_000, 100_000, 1_000_000, 10_000_000]
BATCH = 32
INPUTS, CLASSES = 64, 10
SAMPLED_COORDINATES = 4  # per variable, for the coordinate method's timing
ROUNDS = 3
FLOOR_REPEATS = 9  # timed calls of J (and of value-and-gradient) for the floor


def width_for(parameters: int) -> int:
    """The hidden width w with 64w + w² + 10w + biases closest to `parameters`."""
    a, b, c = 1, INPUTS + CLASSES + 2, CLASSES - parameters
    return max(1, round((-b + (b * b - 4 * a * c) ** 0.5) / (2 * a)))


def mlp(width: int, hidden=None) -> keras.Model:
    hidden = hidden or (lambda: keras.layers.Dense(width, activation="tanh"))
    model = keras.Sequential(
        [
            keras.Input((INPUTS,)),
            hidden(),
            keras.layers.Dense(width, activation="tanh"),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, INPUTS)).astype("float32")
    return x, rng.integers(0, CLASSES, size=(BATCH,))


def _wait(result) -> None:
    """Waits for a (possibly asynchronously dispatched) result to be computed."""
    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(result)
    else:
        keras.tree.map_structure(keras.ops.convert_to_numpy, result)


def forward_and_gradient_times(model, x, y) -> tuple[float, float]:
    """Median times of one float64 J and one value-and-gradient, as checked.

    The same float64 copy and compiled functions the check evaluates, on the
    same θ tensors, each call awaited (J as a Python float), after one warm-up
    call; the median of `FLOOR_REPEATS` calls.
    """
    with _clone.float64_scope():
        cached = _clone.get_clone(model, x.astype("float64"), None)
        functions = _autodiff.make_loss_functions(cached.model, True)
        state = functions.bind(x.astype("float64"), y, None)
        theta = functions.trainable_tensors(
            [cached.model.weights[i] for i in cached.trainable]
        )
        functions.value(theta, state)
        _wait(functions.value_and_grad(theta, state))
        forward, gradient = [], []
        for _ in range(FLOOR_REPEATS):
            start = time.perf_counter()
            functions.value(theta, state)
            forward.append(time.perf_counter() - start)
            start = time.perf_counter()
            _wait(functions.value_and_grad(theta, state))
            gradient.append(time.perf_counter() - start)
    return statistics.median(forward), statistics.median(gradient)


def speed() -> None:
    header = (
        f"{'params':>11} {'first s':>8} {'repeat s':>9} {'passes':>7} "
        f"{'fwd ms':>8} {'floor s':>8} {'/floor':>7} {'coord s (est)':>14} "
        f"{'speedup':>10} {'(1st call)':>11} {'vs 2N floor':>12}"
    )
    print(
        "(a, b) directional check vs its floor and vs the exhaustive coordinate check"
    )
    print(header)
    print("-" * len(header))
    for target in SIZES:
        width = width_for(target)
        keras.utils.set_random_seed(0)
        x, y = data()
        model = mlp(width)
        parameters = model.count_params()
        start = time.perf_counter()
        first = check_gradients(model, x, y, seed=0)
        first_time = time.perf_counter() - start
        repeats = []
        for round_ in range(ROUNDS):
            start = time.perf_counter()
            report = check_gradients(model, x, y, seed=round_ + 1)
            repeats.append(time.perf_counter() - start)
        repeat = statistics.median(repeats)
        forward, gradient = forward_and_gradient_times(model, x, y)
        floor = forward * report.num_evaluations + gradient
        start = time.perf_counter()
        sampled = check_gradients(
            model,
            x,
            y,
            method="coordinate",
            max_coordinates_per_variable=SAMPLED_COORDINATES,
            verbose=0,
            seed=0,
        )
        coordinate_time = time.perf_counter() - start
        checked = sum(v.checked for v in sampled.variables)
        per_coordinate = max(coordinate_time - gradient, 0.0) / checked
        exhaustive = gradient + per_coordinate * parameters
        exhaustive_floor = 2 * parameters * forward + gradient
        print(
            f"{parameters:>11,} {first_time:>8.2f} {repeat:>9.3f} "
            f"{report.num_evaluations:>7} {forward * 1e3:>8.2f} {floor:>8.3f} "
            f"{repeat / floor:>6.2f}x {exhaustive:>14,.0f} "
            f"{exhaustive / repeat:>9,.0f}x {exhaustive / first_time:>10,.0f}x "
            f"{exhaustive_floor / repeat:>11,.0f}x",
            flush=True,
        )
        assert first.passed and report.passed, report
        del model
    print(
        "  passes: forward passes of the directional check (2 per direction, "
        "2 directions per variable and over all, plus J(θ)); floor = passes x "
        "fwd + one value-and-gradient; coord s (est): the coordinate method "
        f"timed on {SAMPLED_COORDINATES} coordinates per variable, extrapolated "
        "to every parameter; speedup = coord / repeat; vs 2N floor: two "
        "forward passes per parameter, the least any coordinate check needs."
    )


def accuracy() -> None:
    print()
    print("(c) planted bugs and false alarms")
    planted_cases = {
        "tanh forgets the square": lambda w: mlp(
            w,
            hidden=lambda: keras.Sequential(
                [keras.layers.Dense(w), planted.HandTanh(forget_square=True)]
            ),
        ),
        "kernel gradient x1.03": lambda w: mlp(
            w, hidden=lambda: planted.ScaledKernelDense(w, activation="tanh")
        ),
        "bias gradient sign": lambda w: mlp(
            w, hidden=lambda: planted.WrongSignBiasDense(w, activation="tanh")
        ),
        "penalty behind stop_gradient": lambda w: mlp(
            w, hidden=lambda: planted.DetachedPenaltyDense(w, activation="tanh")
        ),
    }
    flagged = located = total = 0
    for target in SIZES[:2]:
        width = width_for(target)
        for name, build in planted_cases.items():
            keras.utils.set_random_seed(1)
            x, y = data(1)
            report = check_gradients(build(width), x, y, seed=0)
            failing = [v.name for v in report.variables if not v.passed]
            total += 1
            flagged += report.verdict == "bug"
            # Located: every bug sits in (or just after) the first hidden layer,
            # so its kernel and bias may fail, and nothing after them.
            first_layer = {v.name for v in report.variables[:2]}
            located += bool(failing) and set(failing) <= first_layer
            print(
                f"  {target:>9,} params  {name:<30} {report.verdict:<6} "
                f"{report.relative_error:.1e}  failing: {', '.join(failing) or '-'}"
            )
    print(f"  planted bugs flagged: {flagged}/{total}, located: {located}/{total}")
    alarms = checks = 0
    for target in SIZES:
        keras.utils.set_random_seed(2)
        x, y = data(2)
        report = check_gradients(mlp(width_for(target)), x, y, seed=0)
        checks += 1
        alarms += not report.passed
    for name, build in zoo.SMOOTH.items():
        keras.utils.set_random_seed(0)
        model, x, y, sample_weight = build()
        report = check_gradients(model, x, y, sample_weight=sample_weight, seed=0)
        checks += 1
        alarms += not report.passed
        print(f"  zoo {name:<24} {report.verdict:<6} {report.relative_error:.1e}")
    print(f"  false alarms on correct models: {alarms}/{checks}")


def callback_share() -> None:
    from sklearn.datasets import load_digits

    # Here, not at the top: `keras_bettermodels.callbacks` imports every
    # callback, and `--at-scale` runs on bare GPU machines.
    from keras_bettermodels.callbacks.gradient_check import GradientCheckCallback

    print()
    print("GradientCheckCallback(every_n_epochs=1) on the demo model (make demo)")
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")[:300]
    y = digits.target.astype("int32")[:300]
    epochs = 5 if QUICK else 20

    def build() -> keras.Model:
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(256, activation="relu"),
                keras.layers.Dense(256, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    def fit(callbacks: list[keras.callbacks.Callback]) -> float:
        model = build()
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # compile outside
        start = time.perf_counter()
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks)
        return time.perf_counter() - start

    plain, checked, in_checks = [], [], []
    for _ in range(ROUNDS):
        plain.append(fit([]))
        check = GradientCheckCallback(x[:32], y[:32], every_n_epochs=1, verbose=0)
        checked.append(fit([check]))
        in_checks.append(sum(r.elapsed for r in check.reports))
    without, with_ = statistics.median(plain), statistics.median(checked)
    inside = statistics.median(in_checks)
    print(
        f"  {epochs} epochs of 300 samples: fit {without:.2f} s without, "
        f"{with_:.2f} s with ({epochs + 1} checks, {inside:.2f} s inside them): "
        f"the checks take {(with_ - without) / with_:.0%} of fit time"
    )


def _anchor_time(target: int) -> tuple[str, float, float, int] | None:
    """The backend's own gradient checker on the same MLP, float64, timed.

    PyTorch: `torch.autograd.gradcheck(fast_mode=True)` (one random direction
    for a scalar output); JAX: `jax.test_util.check_grads(order=1,
    modes=["rev"])`. Both take J as a function of the weights, written
    directly in the library (no Keras). Returns (name, seconds of a repeated
    call, our repeated check's seconds, parameters), or None on TensorFlow.
    """
    backend = keras.backend.backend()
    if backend not in ("torch", "jax"):
        return None
    width = width_for(target)
    keras.utils.set_random_seed(0)
    x, y = data()
    model = mlp(width)
    weights = [keras.ops.convert_to_numpy(w).astype(np.float64) for w in model.weights]
    check_gradients(model, x, y, seed=0)
    ours = []
    for round_ in range(ROUNDS):
        start = time.perf_counter()
        check_gradients(model, x, y, seed=round_ + 1)
        ours.append(time.perf_counter() - start)
    x64 = x.astype(np.float64)
    if backend == "torch":
        import torch

        xt, yt = torch.as_tensor(x64), torch.as_tensor(y).long()
        params = [torch.tensor(w, requires_grad=True) for w in weights]

        def loss_torch(*ps: torch.Tensor) -> torch.Tensor:
            k1, b1, k2, b2, k3, b3 = ps
            h = torch.tanh(xt @ k1 + b1)
            h = torch.tanh(h @ k2 + b2)
            return torch.nn.functional.cross_entropy(h @ k3 + b3, yt)

        def anchor() -> None:
            assert torch.autograd.gradcheck(
                loss_torch, tuple(params), fast_mode=True, eps=1e-6, atol=1e-5
            )

        name = "torch.autograd.gradcheck(fast_mode=True)"
    else:
        import jax
        import jax.numpy as jnp
        from jax import test_util

        with jax.enable_x64(True):
            xj, yj = jnp.asarray(x64), jnp.asarray(y)
            params_j = tuple(jnp.asarray(w) for w in weights)

        def loss_jax(ps: tuple[Any, ...]) -> Any:
            k1, b1, k2, b2, k3, b3 = ps
            h = jnp.tanh(xj @ k1 + b1)
            h = jnp.tanh(h @ k2 + b2)
            logits = h @ k3 + b3
            log_p = jax.nn.log_softmax(logits)
            return -jnp.mean(jnp.take_along_axis(log_p, yj[:, None], axis=1))

        def anchor() -> None:
            with jax.enable_x64(True):
                test_util.check_grads(
                    loss_jax, (params_j,), order=1, modes=["rev"], eps=1e-6
                )

        name = "jax.test_util.check_grads(order=1, rev)"
    anchor()  # warm-up (JAX compiles)
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        anchor()
        times.append(time.perf_counter() - start)
    return name, statistics.median(times), statistics.median(ours), model.count_params()


def anchors() -> dict[str, Any]:
    """Our directional check against the backend's own checker, same MLP."""
    target = 100_000 if QUICK else 1_000_000
    print()
    print(
        f"(d) anchors: the backend's own gradient check on the same MLP (~{target:,})"
    )
    result = _anchor_time(target)
    if result is None:
        print(f"  no anchor on {keras.backend.backend()}")
        return {}
    name, theirs, ours, parameters = result
    print(
        f"  {parameters:,} params: {name} {theirs:.3f} s; check_gradients "
        f"{ours:.3f} s (2 directions per variable and 2 over all: 8 directions, "
        f"16 passes): {ours / theirs:.2f}x the anchor"
    )
    return {"anchor": name, "anchor_s": theirs, "ours_s": ours, "params": parameters}


def scale_width(parameters: float) -> int:
    """w with 1024w + 3w² + 10w + biases ≈ `parameters` (4 x Dense(w), 10 out)."""
    a, b, c = 3, SCALE_INPUTS + CLASSES + 4, CLASSES - parameters
    return max(1, round((-b + (b * b - 4 * a * c) ** 0.5) / (2 * a)))


SCALE_INPUTS, SCALE_BATCH = 1024, 64


def at_scale(parameters: float, json_path: str | None) -> dict[str, Any]:
    """check_gradients on 4 x Dense(w) (w=8192 at 2e8): first and repeated call."""
    from keras_bettermodels.precision import hardware

    width = scale_width(parameters)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((SCALE_INPUTS,))]
        + [keras.layers.Dense(width, activation="tanh") for _ in range(4)]
        + [keras.layers.Dense(CLASSES, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SCALE_BATCH, SCALE_INPUTS)).astype("float32")
    y = rng.integers(0, CLASSES, size=(SCALE_BATCH,))
    start = time.perf_counter()
    first = check_gradients(model, x, y, seed=0, verbose=0)
    first_s = time.perf_counter() - start
    repeats = []
    for round_ in range(2):
        start = time.perf_counter()
        report = check_gradients(model, x, y, seed=round_ + 1, verbose=0)
        repeats.append(time.perf_counter() - start)
    result = {
        "backend": keras.backend.backend(),
        "devices": [str(d) for d in hardware.detect_devices()],
        "params": int(model.count_params()),
        "width": width,
        "batch": SCALE_BATCH,
        "first_s": first_s,
        "repeat_s": statistics.median(repeats),
        "evaluations": report.num_evaluations,
        "verdict": report.verdict,
        "first_verdict": first.verdict,
        "relative_error": report.relative_error,
    }
    print(
        f"check_gradients at scale on {result['backend']}: {result['params']:,} "
        f"params (4 x Dense({width}), batch {SCALE_BATCH}): first call "
        f"{first_s:.2f} s, repeated {result['repeat_s']:.3f} s, "
        f"{report.num_evaluations} passes, {report.verdict} "
        f"({report.relative_error:.1e})",
        flush=True,
    )
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--at-scale",
        type=float,
        metavar="PARAMS",
        help="only time check_gradients on a 4 x Dense MLP of about PARAMS "
        "parameters (2e8 on a GPU), first and repeated call",
    )
    parser.add_argument("--json", help="write the --at-scale results to this file")
    args = parser.parse_args(argv)
    if args.at_scale:
        at_scale(args.at_scale, args.json)
        return
    print(f"Keras backend: {keras.backend.backend()}; batch of {BATCH}; float64")
    speed()
    anchors()
    accuracy()
    callback_share()


if __name__ == "__main__":
    main()
