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
