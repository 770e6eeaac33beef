"""Every public callback deep-copies: keras-tuner copies callbacks per trial.

The callbacks are enumerated from `keras_bettermodels.callbacks.__all__`, so a
new callback is covered as soon as it is exported: one built without
arguments is copied as is; one that needs arguments must get its cases in
`CASES` (the test says so). Each case copies the callback with a kind of
argument users pass (tf.data in the TensorFlow pass, NumPy arrays, a
`PyDataset`, a generator, a PyTorch `DataLoader` in the torch pass, `log_dir`,
criteria) and checks that the copy is independent of the original while any
dataset is shared by reference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

import keras_bettermodels.callbacks as callbacks_module
from keras_bettermodels.criteria import GL, UP, Patience

# Attributes that hold the user's data: shared, never copied.
DATASET_ATTRIBUTES = ("dataset",)


class _Batches(keras.utils.PyDataset):
    def __init__(self) -> None:
        super().__init__()
        self.batch_size = 4

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((4, 3), "float32"), np.zeros((4,), "int32")


def _generator():
    while True:
        yield np.zeros((4, 3), "float32"), np.zeros((4,), "int32")


def _tf_dataset() -> Any:
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data is copied in the TensorFlow pass")
    tf = pytest.importorskip("tensorflow")
    x = np.zeros((8, 3), "float32")
    return tf.data.Dataset.from_tensor_slices((x, x[:, 0])).map(lambda a, b: (a, b))


def _torch_loader() -> Any:
    if keras.backend.backend() != "torch":
        pytest.skip("PyTorch DataLoaders are copied in the torch pass")
    import torch

    x = torch.zeros((8, 3))
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), 4)


ARRAYS = (np.ones((4, 3), "float32"), np.arange(4, dtype="int32"))

# name -> {case: factory(tmp_path) -> callback}
CASES: dict[str, dict[str, Callable[[Any], keras.callbacks.Callback]]] = {
    "CacheTimingCallback": {
        "defaults": lambda tmp: callbacks_module.CacheTimingCallback(),
        "tf.data": lambda tmp: callbacks_module.CacheTimingCallback(
            dataset=_tf_dataset(), log_dir=tmp
        ),
        "PyDataset": lambda tmp: callbacks_module.CacheTimingCallback(
            dataset=_Batches(), batch_size=4
        ),
        "generator": lambda tmp: callbacks_module.CacheTimingCallback(
            dataset=_generator()
        ),
        "DataLoader": lambda tmp: callbacks_module.CacheTimingCallback(
            dataset=_torch_loader()
        ),
    },
    "EarlyStopping": {
        "keras": lambda tmp: callbacks_module.EarlyStopping(
            patience=3, restore_best_weights=True
        ),
        "criteria": lambda tmp: callbacks_module.EarlyStopping(
            criterion=GL(5) | UP(3) | Patience(4), log_dir=str(tmp)
        ),
    },
    "GradientCheckCallback": {
        "arrays": lambda tmp: callbacks_module.GradientCheckCallback(
            *ARRAYS, every_n_epochs=2, log_dir=tmp
        ),
        "dict of arrays": lambda tmp: callbacks_module.GradientCheckCallback(
            {"features": ARRAYS[0]}, ARRAYS[1]
        ),
    },
    "MixedPrecisionGuard": {
        "log_dir": lambda tmp: callbacks_module.MixedPrecisionGuard(
            batch_size=4, log_dir=tmp
        ),
    },
    "PruningSummaries": {
        "log_dir": lambda tmp: callbacks_module.PruningSummaries(str(tmp)),
        "every 5 steps": lambda tmp: callbacks_module.PruningSummaries(
            tmp, update_freq=5
        ),
    },
}


def _public_callbacks() -> list[str]:
    return sorted(
        name
        for name in callbacks_module.__all__
        if isinstance(getattr(callbacks_module, name), type)
        and issubclass(getattr(callbacks_module, name), keras.callbacks.Callback)
    )


def _cases() -> list[Any]:
    found = []
    for name in _public_callbacks():
        for case in CASES.get(name, {"no arguments": None}):
            found.append(pytest.param(name, case, id=f"{name}-{case}"))
    return found


def _independent(original: Any, clone: Any, path: str) -> None:
    """Mutable state in `clone` is not `original`'s, datasets aside."""
    for name, value in vars(original).items():
        copied = vars(clone)[name]
        if name in DATASET_ATTRIBUTES and value is not None:
            assert copied is value, f"{path}.{name} must be shared, not copied"
            continue
        if name == "_model":
            continue
        if isinstance(value, list | dict | set | np.ndarray):
            assert copied is not value, f"{path}.{name} is shared with the original"
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(copied, value)


def test_every_public_callback_has_a_case_or_builds_without_arguments():
    for name in _public_callbacks():
        if name in CASES:
            continue
        try:
            getattr(callbacks_module, name)()
        except TypeError as error:  # it needs arguments: say where to add them
            pytest.fail(
                f"{name} needs arguments ({error}); add its cases to CASES in "
                "tests/integration/test_deepcopy.py"
            )


@pytest.mark.parametrize(("name", "case"), _cases())
def test_every_public_callback_deep_copies(name, case, tmp_path):
    factory = CASES.get(name, {}).get(case)
    callback = factory(tmp_path) if factory else getattr(callbacks_module, name)()
    clone = copy.deepcopy(callback)
    assert type(clone) is type(callback) and clone is not callback
    _independent(callback, clone, name)
    # Public arguments survive the copy.
    for attribute in ("log_dir", "batch_size", "verbose", "every_n_epochs"):
        if hasattr(callback, attribute):
            assert getattr(clone, attribute) == getattr(callback, attribute)
    # A change to the copy's state leaves the original alone.
    vars(clone)["_probe"] = [1]
    assert "_probe" not in vars(callback)


def test_a_copied_cache_timer_fits_alone_and_shares_its_dataset():
    """The copy a tuner trial uses records its own epochs."""
    dataset = _Batches()
    timer = callbacks_module.CacheTimingCallback(dataset=dataset, verbose=0)
    clone = copy.deepcopy(timer)
    assert clone.dataset is dataset
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(dataset, epochs=2, verbose=0, callbacks=[clone])
    assert len(clone.epochs) == 2 and timer.epochs == []
    again = copy.deepcopy(clone)  # after a fit too, the model shared
    assert again.epochs == clone.epochs and again.epochs is not clone.epochs
    assert again.model is clone.model


def test_a_keras_tuner_search_copies_a_cache_timer_on_tf_data(tmp_path):
    """Issue 15: `FatalValueError` ("cannot pickle 'Graph' object") at trial 1."""
    keras_tuner = pytest.importorskip("keras_tuner")
    dataset = _tf_dataset().batch(4)
    timer = callbacks_module.CacheTimingCallback(dataset=dataset, verbose=0)

    def build(hp):
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(hp.Choice("units", [2]))]
        )
        model.compile("sgd", "mse")
        return model

    tuner = keras_tuner.RandomSearch(
        build, objective="loss", max_trials=1, directory=tmp_path, project_name="p"
    )
    tuner.search(dataset, epochs=2, callbacks=[timer], verbose=0)
    assert len(tuner.oracle.trials) == 1
    assert timer.epochs == []  # the trial timed its own copy
