"""MixedPrecisionGuard and the audit on the zoo: no false finding on everyday models.

Each zoo model is built under `mixed_float16` as keras.io's mixed precision
guide says: `keras.mixed_precision.set_global_policy("mixed_float16")` before
building (and compiling), `"float32"` again after. The guide also says the
outputs must be float32: a softmax computes in float32
(`Dense(10)` then `Activation("softmax", dtype="float32")`), and so does any
other output (`Activation("linear", dtype="float32")`). The zoo's builders end
in `Dense(n, activation=...)` under the global policy, so built as they are,
their outputs are float16: the user's mistake, which the audit must report
(`output-not-float32`, once per output). `_as_the_guide_says` rebuilds the
outputs the guide's way; then that finding would be false.

Every finding the audit can raise is judged against what is true of the model
and the machine (`_expected_findings`):

- `small-model` (info): true of every zoo model (a few thousand parameters);
- `hardware-no-speedup`: true on a CPU (no float16 matrix units), false on a
  GPU with compute capability >= 7.0: the same judgement as
  `hardware.hardware_findings` on the devices the backend sees;
- `output-not-float32`: true as the builders build, false the guide's way;
- `loss-not-scaled`: false on every model: compiled under `mixed_float16`,
  Keras wraps the optimizer in a `LossScaleOptimizer`;
- `dims-not-multiple-of-8` (info): true exactly where a layer below the
  output head has units, filters, an embedding width or an attention head
  size that is not a multiple of 8 (`ODD_DIMS`, written out by hand);
- `no-mixed-policy`: false under `mixed_float16`, the only finding under
  `float32`.

Then each model trains 2 epochs with the guard: a healthy model raises no
non-finite or loss-scale alarm (`on_nonfinite="raise"` would raise).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import pytest

from keras_bettermodels._compat.layers import flatten_layers
from keras_bettermodels.callbacks import MixedPrecisionGuard
from keras_bettermodels.precision import audit, findings, hardware
from tests.zoo.models import ZOO

BATCH_SIZE = 16  # a multiple of 8: the audit checks it
FIT = {"epochs": 2, "batch_size": BATCH_SIZE, "validation_split": 0.25, "verbose": 0}

#: The sizes that are not multiples of 8 below each model's output head, as
#: (layer class, attribute, value); one layer of that class has that value.
ODD_DIMS: dict[str, tuple[tuple[type[Any], str, int], ...]] = {
    "recurrent": (
        (keras.layers.Embedding, "output_dim", 6),
        (keras.layers.LSTM, "units", 6),
        (keras.layers.GRU, "units", 6),
    ),
    # key_dim=4 is each head's size: the attention matmuls contract over it.
    # (Its projections are 2 heads x 4 = 8 wide.) value_dim defaults to it.
    "attention": (
        (keras.layers.MultiHeadAttention, "key_dim", 4),
        (keras.layers.MultiHeadAttention, "value_dim", 4),
    ),
    "multi_input_output": (
        (keras.layers.Conv2D, "filters", 4),
        (keras.layers.Dense, "units", 4),
    ),
    "separable": ((keras.layers.Conv2D, "filters", 4),),
}


@pytest.fixture(autouse=True)
def float32_afterwards() -> Iterator[None]:
    """Whatever a test does, the global policy is `float32` after it."""
    yield
    keras.mixed_precision.set_global_policy("float32")


@contextlib.contextmanager
def global_policy(name: str) -> Iterator[None]:
    """Builds under `name`, as the guide does, and puts `float32` back."""
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _output_layers(model: keras.Model) -> list[Any]:
    if isinstance(model, keras.Sequential):
        return [model.layers[-1]]
    return [model.get_layer(name) for name in model.output_names]


def _as_the_guide_says(model: keras.Model) -> keras.Model:
    """The same model with each output as the guide writes it.

    Each output `Dense(n, activation=a)` becomes `Dense(n)` and
    `Activation(a, dtype="float32")`, which takes the output's name (so the
    losses still find it). The other layers are shared, not copied. Call it
    under the mixed policy: the new model takes the global policy.
    """
    functional = (
        keras.Model(model.inputs, model.outputs)
        if isinstance(model, keras.Sequential)
        else model
    )
    outputs = {id(layer) for layer in _output_layers(model)}
    activations: dict[int, tuple[str, str]] = {}

    def clone(layer: Any) -> Any:
        if id(layer) not in outputs:
            return layer
        config = layer.get_config()
        activation = config["activation"]
        config.update(activation="linear", name=f"{layer.name}_logits")
        logits = layer.__class__.from_config(config)
        activations[id(logits)] = (activation, layer.name)
        return logits

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        tensor = layer(*args, **kwargs)
        if id(layer) in activations:
            activation, name = activations[id(layer)]
            tensor = keras.layers.Activation(activation, dtype="float32", name=name)(
                tensor
            )
        return tensor

    guided = keras.models.clone_model(
        functional, clone_function=clone, call_function=call
    )
    guided.compile_from_config(model.get_compile_config())
    return guided


def _odd_items(name: str, model: keras.Model) -> set[str]:
    """The items `dims-not-multiple-of-8` must list, from `ODD_DIMS`."""
    items = set()
    layers = flatten_layers(model, include_self=False)
    for cls, attribute, value in ODD_DIMS.get(name, ()):
        (layer,) = [
            layer
            for layer in layers
            if type(layer) is cls and getattr(layer, attribute, None) == value
        ]
        items.add(f"`{layer.name}` {attribute}={value}")
    return items


def _listed(finding: findings.Finding) -> set[str]:
    """The items of a `dims-not-multiple-of-8` message."""
    listed = finding.message.split(": ", 1)[1].split(". ", 1)[0]
    return set(listed.split(", "))


def _expected_findings(name: str, model: keras.Model, policy: str) -> set[str]:
    """The codes that are true of `model` under `policy` on this machine."""
    if policy == "float32":
        return {findings.NO_MIXED_POLICY}
    true = {findings.SMALL_MODEL}
    hardware_found = hardware.hardware_findings(policy, hardware.detect_devices())
    true |= {finding.code for finding in hardware_found}
    if name in ODD_DIMS:
        true.add(findings.DIMS_NOT_MULTIPLE_OF_8)
    return true


def _check_true(name: str, model: keras.Model, found: list[findings.Finding]) -> None:
    """Each finding says something true of `model` (beyond its code)."""
    for finding in found:
        if finding.code == findings.SMALL_MODEL:
            assert finding.level == "info"
            assert f"{model.count_params():,} parameters" in finding.message
        elif finding.code == findings.DIMS_NOT_MULTIPLE_OF_8:
            assert finding.level == "info"
            assert _listed(finding) == _odd_items(name, model), finding.message


def _keras_cannot_train(name: str) -> tuple[type[Exception], str, str] | None:
    """The error Keras itself raises training `name` under `mixed_float16` here.

    Checked on Keras 3.15.1, jaxlib 0.10.2, TensorFlow 2.21. Returns the
    error's type, a pattern of its message and why, or `None`.
    """
    backend = keras.backend.backend()
    cpu_only = all(d.platform == "cpu" for d in hardware.detect_devices())
    if name == "attention" and backend == "jax" and cpu_only:
        # Keras' JAX attention asks `einsum` for float32 accumulation of
        # float16 inputs, which XLA's CPU `dot_general` refuses.
        return (
            ValueError,
            "not supported by dot_general on CPU",
            "Keras' float16 MultiHeadAttention cannot train on JAX's CPU",
        )
    if name == "with_add_loss" and backend == "tensorflow":
        # The layer's `add_loss` value is float16; Keras sums it with the
        # float32 compiled loss in one `ops.sum([...])`, which TensorFlow
        # refuses (JAX and PyTorch promote). Casting it to float32 in the
        # layer is the workaround.
        return (
            TypeError,
            "Cannot convert a list containing a tensor of dtype",
            "Keras on TensorFlow cannot add a float16 `add_loss` to the loss",
        )
    return None


@pytest.mark.parametrize("name", list(ZOO))
def test_mixed_float16_audit_and_guard_raise_no_false_finding(name: str) -> None:
    keras.utils.set_random_seed(0)
    with global_policy("mixed_float16"):
        case = ZOO[name]()
        guided = _as_the_guide_says(case.model)
    true = _expected_findings(name, case.model, "mixed_float16")
    # Keras wrapped the optimizer: `loss-not-scaled` would be false.
    assert isinstance(case.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(guided.optimizer, keras.optimizers.LossScaleOptimizer)

    # As the builders build it: float16 outputs, the user's mistake, reported
    # once per output and naming it.
    as_built = audit(case.model, batch_size=BATCH_SIZE)
    assert {f.code for f in as_built} == true | {findings.OUTPUT_NOT_FLOAT32}
    flagged = [f for f in as_built if f.code == findings.OUTPUT_NOT_FLOAT32]
    assert len(flagged) == len(case.model.outputs)
    for finding, layer in zip(flagged, _output_layers(case.model), strict=True):
        assert finding.level == "warning"
        assert f"`{layer.name}` is float16" in finding.message
    _check_true(name, case.model, as_built)

    # The guide's way: float32 outputs, nothing false.
    assert all(str(t.dtype) == "float32" for t in guided.outputs)
    audited = audit(guided, batch_size=BATCH_SIZE)
    assert {f.code for f in audited} == true, [str(f) for f in audited]
    _check_true(name, guided, audited)

    guard = MixedPrecisionGuard(batch_size=BATCH_SIZE, verbose=0, on_nonfinite="raise")
    known = _keras_cannot_train(name)
    if known is not None:
        error, match, reason = known
        with pytest.raises(error, match=match):
            guided.fit(case.x, case.y, callbacks=[guard], **FIT)
        pytest.xfail(reason)
    history = guided.fit(case.x, case.y, callbacks=[guard], **FIT)
    assert len(history.history["loss"]) == FIT["epochs"]
    # The audit at train begin, then no alarm: no collapse, no non-finite
    # loss or weight on a healthy model. Skipped steps while the scale comes
    # down from 2**15 (the attention block's settles at 2**10 to 2**13) are
    # an info.
    assert guard.findings[: len(audited)] == audited
    runtime = guard.findings[len(audited) :]
    assert all(f.code == findings.SKIPPED_STEPS for f in runtime), runtime
    assert all(f.level == "info" for f in runtime), runtime
    assert guard.nonfinite_epoch is None and guard.stopped_epoch == 0
    report = guard.loss_scale_report
    assert report is not None and report.scale is not None and report.scale >= 1
    assert report.steps_run == FIT["epochs"] * 3  # 48 training samples, 16 a batch


@pytest.mark.parametrize("name", list(ZOO))
def test_float32_audit_says_only_that_there_is_no_mixed_precision(name: str) -> None:
    with global_policy("float32"):
        case = ZOO[name]()
    found = audit(case.model, batch_size=BATCH_SIZE)
    assert [f.code for f in found] == [findings.NO_MIXED_POLICY]
    assert found[0].level == "info"
