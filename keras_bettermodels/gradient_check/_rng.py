"""The global random generators, left where the check found them.

Rebuilding the float64 copy makes layers, and a layer made without a seed
draws one from Python's `random` (Keras' `make_default_seed`); unseeded
`keras.random` calls advance Keras' global `SeedGenerator`; PyTorch's dropout
and the check's reseeding use torch's global generator. After
`keras.utils.set_random_seed(0)`, a model built after a check must get the
same initial weights as one built without it: every one of these is saved
before the check and put back after it, also when the check raises.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import keras
import numpy as np

from keras_bettermodels._compat import gradient_check as _compat

__all__ = ["global_generators_kept"]


@contextlib.contextmanager
def global_generators_kept() -> Iterator[None]:
    """Restores Python's, NumPy's, Keras' and torch's global generators."""
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    generator = _compat.global_seed_generator()
    generator_state = (
        None
        if generator is None
        else keras.ops.convert_to_numpy(generator.state.value).copy()
    )
    with contextlib.ExitStack() as stack:
        if keras.backend.backend() == "torch":
            import torch

            devices = (
                list(range(torch.cuda.device_count()))
                if torch.cuda.is_available()
                else []
            )
            stack.enter_context(torch.random.fork_rng(devices=devices))
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            _compat.set_global_seed_generator(generator)
            if generator is not None:
                generator.state.assign(generator_state)
