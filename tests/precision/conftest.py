"""Every precision test leaves Keras' global dtype policy as it found it."""

from __future__ import annotations

import keras
import pytest


@pytest.fixture(autouse=True)
def restore_dtype_policy():
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)
