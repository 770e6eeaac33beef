"""The smooth correct models of `tests.zoo.models.SMOOTH`, built once per module."""

from __future__ import annotations

import keras
import pytest

from tests.zoo.models import SMOOTH


@pytest.fixture(scope="module")
def correct_models():
    """The zoo, built once: checks never change a model, so tests share them."""
    keras.utils.set_random_seed(0)
    return {name: build() for name, build in SMOOTH.items()}
