"""Keras internals the mixed-precision audit needs (checked: Keras 3.15.1)."""

from __future__ import annotations

from typing import Any


def functional_model_class() -> type[Any]:
    """Keras' `Functional` model class (not exported publicly)."""
    from keras.src.models.functional import Functional

    return Functional


def torch_device_kind() -> str | None:
    """The kind of device Keras' PyTorch backend computes on (`"cuda"`, `"cpu"`...).

    `None` where this Keras has no `get_device` there.
    """
    try:
        from keras.src.backend.torch.core import get_device
    except ImportError:  # pragma: no cover - a Keras where it moved
        return None
    device: Any = get_device()
    return str(device).split(":")[0]


def keras_history(tensor: Any) -> tuple[Any, int, int] | None:
    """`(operation, node_index, tensor_index)` of a symbolic tensor, or `None`.

    Keras records it as the private `_keras_history` (a named tuple).
    """
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return history.operation, history.node_index, history.tensor_index


def node_input_tensors(layer: Any, node_index: int) -> list[Any] | None:
    """The input tensors of `layer`'s call number `node_index`, or `None`.

    Keras keeps a layer's calls as the private `_inbound_nodes`.
    """
    nodes = getattr(layer, "_inbound_nodes", [])
    if node_index >= len(nodes):
        return None
    return list(nodes[node_index].input_tensors)


def raw_iterations(optimizer: Any) -> int:
    """The optimizer's step counter, one per training step, as an `int`.

    `optimizer.iterations` floor-divides by `gradient_accumulation_steps`;
    this reads the raw counter under it. Keras 3.15.1:
    `BaseOptimizer._iterations` (falls back to `iterations` where absent).
    """
    import keras

    counter = getattr(optimizer, "_iterations", None)
    if counter is None:
        counter = optimizer.iterations
    return int(keras.ops.convert_to_numpy(counter))
