"""Shared fixtures and the per-backend skip rules."""

from __future__ import annotations

import os

import numpy as np
import pytest


def _backend() -> str:
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    backend = _backend()
    skip_tf_only = pytest.mark.skip(
        reason=f"needs TensorFlow-only features (tf.data, tf.distribute); "
        f"KERAS_BACKEND={backend}"
    )
    skip_jax_only = pytest.mark.skip(
        reason=f"runs in the JAX pass (keras.distribution, or the backend a "
        f"benchmark uses); KERAS_BACKEND={backend}"
    )
    for item in items:
        if "tensorflow_only" in item.keywords and backend != "tensorflow":
            item.add_marker(skip_tf_only)
        if "jax_only" in item.keywords and backend != "jax":
            item.add_marker(skip_jax_only)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, scaled to [0, 1]: ships with the package."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y.astype("int32")
