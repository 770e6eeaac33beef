"""`audit`: what a model's mixed-precision setup gets wrong, before training.

Reads the model, its dtype policies, its optimizer and the devices the Keras
backend computes on; trains nothing. Each problem is a `Finding` with a fix.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from keras_bettermodels import _validation
from keras_bettermodels._compat import precision as _compat_precision
from keras_bettermodels._compat.layers import flatten_layers
from keras_bettermodels.precision import findings as findings_lib
from keras_bettermodels.precision import hardware
from keras_bettermodels.precision.findings import Finding

__all__ = [
    "DEFAULT_MIN_PARAMS",
    "DIM_ATTRIBUTES",
    "OutputHead",
    "audit",
    "is_softmax",
    "output_heads",
]

#: The article's advice: mixed precision for models over ~100M parameters.
DEFAULT_MIN_PARAMS = 100_000_000
#: Layer attributes that set the size of a matrix multiplication.
DIM_ATTRIBUTES = ("units", "filters", "output_dim", "key_dim", "value_dim")
_LOW_PRECISION = ("float16", "bfloat16")
_SOFTMAX_NAMES = ("softmax", "log_softmax")
_MAX_HEAD_DEPTH = 16


@dataclass(frozen=True)
class OutputHead:
    """A model output and the layers that compute it from the last projection.

    Args:
        name: the output's name (the layer that produces it).
        dtype: the dtype of the output tensor.
        layers: the layers from the output back to, and including, the last
            layer with units or filters (the "head"), output layer first.
    """

    name: str
    dtype: str
    layers: tuple[Any, ...]


logger = logging.getLogger(__name__)


def _all_layers(model: Any) -> list[Any]:
    import keras

    layers = flatten_layers(model, include_self=False)
    return [layer for layer in layers if not isinstance(layer, keras.layers.InputLayer)]


def _has_dims(layer: Any) -> bool:
    return any(_dim(layer, attribute) is not None for attribute in DIM_ATTRIBUTES)


def _dim(layer: Any, attribute: str) -> int | None:
    try:
        value = getattr(layer, attribute, None)
    except (AttributeError, ValueError, TypeError, RuntimeError) as error:
        # A property that cannot answer before the layer is built.
        logger.debug("audit: %s.%s unreadable: %r", layer.name, attribute, error)
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return None


def is_softmax(layer: Any) -> bool:
    """Whether `layer` computes a softmax (a `Softmax` layer or activation)."""
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) in _SOFTMAX_NAMES


def _walk_head(tensor: Any) -> Iterator[Any]:
    """Yields the layers from `tensor` back to the last one with units or filters."""
    import keras

    for _ in range(_MAX_HEAD_DEPTH):
        produced = _compat_precision.keras_history(tensor)
        if produced is None:
            return
        layer, node_index, tensor_index = produced
        if isinstance(layer, keras.layers.InputLayer):
            return
        inner_outputs = (
            getattr(layer, "outputs", None) if isinstance(layer, keras.Model) else None
        )
        if inner_outputs:
            # A nested model: its own head computes this output.
            yield from _walk_head(inner_outputs[tensor_index])
            return
        yield layer
        if _has_dims(layer):
            return
        inputs = _compat_precision.node_input_tensors(layer, node_index)
        if inputs is None:
            return
        if len(inputs) != 1:
            return  # a merge: the head ends here
        tensor = inputs[0]


def output_heads(model: Any) -> list[OutputHead]:
    """Returns each output of `model` with the layers that compute it.

    Functional and Sequential models are followed through their graph. A
    subclassed model has no graph to follow: its last layer stands for its
    output.

    Args:
        model: a built `keras.Model`.

    Returns:
        One `OutputHead` per output.
    """
    try:
        outputs = list(model.outputs or [])
    except (AttributeError, ValueError):
        outputs = []
    heads = []
    for tensor in outputs:
        head = tuple(_walk_head(tensor))
        if head:
            heads.append(OutputHead(head[0].name, str(tensor.dtype), head))
    if not heads:
        layers = _all_layers(model)
        if layers:
            last = layers[-1]
            heads.append(OutputHead(last.name, str(last.compute_dtype), (last,)))
    return heads


class _Policies:
    """The compute dtype each layer would use under the audited policy."""

    def __init__(self, model: Any, policy: Any) -> None:
        self.model_policy = model.dtype_policy.name
        self.override = policy

    def follows_model(self, layer: Any) -> bool:
        return layer.dtype_policy.name == self.model_policy

    def compute_dtype(self, layer: Any) -> str:
        if self.override is not None and self.follows_model(layer):
            return str(self.override.compute_dtype)
        return str(layer.compute_dtype)

    def output_dtype(self, head: OutputHead) -> str:
        if self.override is not None and self.follows_model(head.layers[0]):
            return str(self.override.compute_dtype)
        return head.dtype

    def policy_name(self, layer: Any) -> str:
        if self.override is not None and self.follows_model(layer):
            return str(self.override.name)
        return str(layer.dtype_policy.name)


def _output_findings(heads: Sequence[OutputHead], policies: _Policies) -> list[Finding]:
    found = []
    for head in heads:
        output_dtype = policies.output_dtype(head)
        softmax = next((layer for layer in head.layers if is_softmax(layer)), None)
        if output_dtype in _LOW_PRECISION:
            layer = head.layers[0]
            if softmax is None:
                detail = ""
            elif softmax is layer:
                detail = ", softmax included"
            else:
                detail = (
                    f", and its softmax in `{softmax.name}` computes in "
                    f"{policies.compute_dtype(softmax)}"
                )
            message = (
                f"The model output `{head.name}` is {output_dtype}{detail}: the "
                f"loss reads {output_dtype} predictions, which lose precision "
                "and can overflow."
            )
        elif softmax is not None and policies.compute_dtype(softmax) in _LOW_PRECISION:
            layer = softmax
            message = (
                f"The final softmax of output `{head.name}` computes in "
                f"{policies.compute_dtype(softmax)} in layer `{softmax.name}`; "
                "casting its result to float32 afterwards comes too late."
            )
        else:
            continue
        if softmax is not None:
            example = 'keras.layers.Activation("softmax", dtype="float32")'
            fix = (
                f"Compute the softmax in float32: make `{softmax.name}` linear "
                f'and add `{example}` after it, or pass `dtype="float32"` to '
                f"`{layer.name}`."
            )
        else:
            example = 'keras.layers.Activation("linear", dtype="float32")'
            fix = (
                f"Add `{example}` after `{layer.name}`, or pass "
                f'`dtype="float32"` to it (a softmax output: '
                '`keras.layers.Activation("softmax", dtype="float32")`).'
            )
        fix += (
            " `keras_bettermodels.precision.float32_outputs(model)` returns the "
            "model with float32 outputs."
        )
        found.append(Finding(findings_lib.OUTPUT_NOT_FLOAT32, "warning", message, fix))
    return found


def _loss_scale_findings(model: Any, dtype: str) -> list[Finding]:
    import keras

    optimizer = getattr(model, "optimizer", None)
    if dtype != "float16" or optimizer is None:
        return []
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return []
    return [
        Finding(
            findings_lib.LOSS_NOT_SCALED,
            "warning",
            f"The model computes in float16 but its optimizer "
            f"({type(optimizer).__name__}) does not scale the loss: small "
            "gradients underflow to zero in float16 (below ~6e-8) and large "
            "ones overflow (above 65504) unchecked.",
            "Compile under the `mixed_float16` policy with "
            "`auto_scale_loss=True` (the default), or wrap the optimizer: "
            "`keras.optimizers.LossScaleOptimizer(optimizer)`.",
        )
    ]


def _size_findings(model: Any, min_params: int) -> list[Finding]:
    count = int(model.count_params())
    if count >= min_params:
        return []
    return [
        Finding(
            findings_lib.SMALL_MODEL,
            "info",
            f"The model has {count:,} parameters, fewer than "
            f"min_params={min_params:,}: mixed precision speeds up mostly large "
            "models (the usual advice is above ~100M parameters), and the "
            "speedup on this one may be small.",
            "Measure it: `keras_bettermodels.precision.compare_precision("
            "build_model, (x, y))` times both policies side by side.",
        )
    ]


def _dims_findings(
    layers: Sequence[Any],
    exempt: set[int],
    policies: _Policies,
    batch_size: int | None,
    multiple: int,
) -> list[Finding]:
    cells = set()  # RNN cells: their RNN layer is listed instead
    for layer in layers:
        cell = getattr(layer, "cell", None)
        for inner in [cell, *(getattr(cell, "cells", None) or [])]:
            if inner is not None:
                cells.add(id(inner))
    odd = []
    for layer in layers:
        if id(layer) in exempt or id(layer) in cells:
            continue
        if policies.compute_dtype(layer) not in _LOW_PRECISION:
            continue
        for attribute in DIM_ATTRIBUTES:
            value = _dim(layer, attribute)
            if value is not None and value % multiple:
                odd.append(f"`{layer.name}` {attribute}={value}")
    if batch_size is not None and batch_size % multiple:
        odd.append(f"batch_size={batch_size}")
    if not odd:
        return []
    where = "TPU matrix units" if multiple == 128 else "Tensor Cores"
    return [
        Finding(
            findings_lib.DIMS_NOT_MULTIPLE_OF_8,
            "info",
            f"Not multiples of {multiple}: {', '.join(odd)}. {where} work on "
            f"tiles of {multiple}; other sizes are padded or fall back to "
            "slower kernels. (The output layers' sizes are set by the task and "
            "not listed.)",
            f"Round these up to a multiple of {multiple} where the model allows "
            f"it (e.g. {_round_up_example(odd[0], multiple)}).",
        )
    ]


def _round_up_example(item: str, multiple: int) -> str:
    name, _, value = item.rpartition("=")
    number = int(value)
    return f"{name}={-(-number // multiple) * multiple}"


def _no_mixed_finding(policy_name: str) -> Finding:
    return Finding(
        findings_lib.NO_MIXED_POLICY,
        "info",
        f"The model computes in float32 (policy {policy_name!r}): there is no "
        "mixed precision to guard.",
        'To try it, call `keras.config.set_dtype_policy("mixed_float16")` '
        '(`"mixed_bfloat16"` on TPUs) before building the model, and audit '
        "again.",
    )


def _check_arguments(model: Any, batch_size: Any, policy: Any, min_params: Any) -> Any:
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid_type("model", "a keras.Model", model))
    if not model.built:
        raise ValueError(
            _validation.invalid_value(
                "model",
                "a built model",
                model,
                "Build it first: give it an `keras.Input`, call "
                "`model.build(input_shape)`, or call it on a batch.",
            )
        )
    if batch_size is not None:
        _validation.check_int("batch_size", batch_size, minimum=1)
    _validation.check_int("min_params", min_params)
    if policy is None:
        return None
    try:
        return keras.dtype_policies.get(policy)
    except (ValueError, TypeError) as error:
        raise ValueError(
            _validation.invalid_value(
                "policy",
                "a dtype policy or its name, such as 'mixed_float16'",
                policy,
            )
        ) from error


def audit(
    model: Any,
    *,
    batch_size: int | None = None,
    policy: Any = None,
    min_params: int = DEFAULT_MIN_PARAMS,
) -> list[Finding]:
    """Checks a model's mixed-precision setup, without training it.

    Reports, as `Finding`s, most severe first:

    - `output-not-float32` (warning): a model output, or its final softmax,
      computes in float16 / bfloat16;
    - `loss-not-scaled` (warning): float16 without a `LossScaleOptimizer`;
    - `hardware-no-speedup` (warning; info for bfloat16 on a CPU): no device
      the backend sees runs the policy faster (CPU, NVIDIA GPU older than
      compute capability 7.0, or 8.0 for bfloat16; a TPU with float16);
    - `small-model` (info): fewer than `min_params` parameters;
    - `dims-not-multiple-of-8` (info): units, filters, attention head sizes
      (`key_dim`, `value_dim`) or the batch size that are not multiples of 8
      (128 on a TPU). The output head (the layers from the last projection to
      each output) is left out: the number of classes is not yours to pick;
    - `no-mixed-policy` (info), alone: the model computes in float32.

    Args:
        model: a built `keras.Model`.
        batch_size: the training batch size, checked for a multiple of 8;
            `None` skips that check. Defaults to `None`.
        policy: audit as if the model had been built under this dtype policy
            (a name such as `"mixed_float16"` or a `keras.DTypePolicy`):
            layers whose policy is the model's own follow it, layers with
            another policy (an explicit `dtype="float32"`) keep theirs. `None`
            audits the policies the layers have. Defaults to `None`.
        min_params: below this parameter count, `small-model` is reported.
            Defaults to `100_000_000`.

    Returns:
        The findings, most severe first; empty when there is nothing to say.

    Raises:
        TypeError: if `model` is not a `keras.Model`, or an argument has the
            wrong type.
        ValueError: if the model is not built, or for an invalid `batch_size`,
            `policy` or `min_params`.

    Example:

    ```python
    keras.config.set_dtype_policy("mixed_float16")
    model = build_model()
    for finding in keras_bettermodels.precision.audit(model, batch_size=256):
        print(finding)
    ```

    References:
        Paulius Micikevicius et al., "Mixed Precision Training", ICLR 2018.
        NVIDIA, "Train With Mixed Precision" (Deep Learning Performance
        Documentation).
    """
    override = _check_arguments(model, batch_size, policy, min_params)
    policies = _Policies(model, override)
    layers = _all_layers(model)
    low_layers = [
        layer for layer in layers if policies.compute_dtype(layer) in _LOW_PRECISION
    ]
    model_policy = override.name if override is not None else model.dtype_policy.name
    if not low_layers and hardware.low_precision_dtype(model_policy) is None:
        return [_no_mixed_finding(model_policy)]
    policy_name = (
        model_policy
        if hardware.low_precision_dtype(model_policy) is not None
        else policies.policy_name(low_layers[0])
    )
    dtype = hardware.low_precision_dtype(policy_name) or "float16"
    devices = hardware.detect_devices()
    heads = output_heads(model)
    exempt = {id(layer) for head in heads for layer in head.layers}
    found = [
        *_output_findings(heads, policies),
        *_loss_scale_findings(model, dtype),
        *hardware.hardware_findings(policy_name, devices),
        *_size_findings(model, min_params),
        *_dims_findings(
            layers, exempt, policies, batch_size, hardware.dims_multiple(devices)
        ),
    ]
    return findings_lib.sort_findings(found)
