"""The training data of the running `fit`, for a callback (checked: Keras 3.15.1)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

#: The most samples a sample batch takes from `fit`'s data.
MAX_SAMPLES = 256


@dataclass(frozen=True)
class FitData:
    """The training data one `fit` got, held by reference: nothing read yet."""

    x: Any
    y: Any
    sample_weight: Any
    batch_size: int | None

    def first_batch(self, default_size: int = 32) -> tuple[Any, Any, Any] | None:
        """`(x, y, sample_weight)` of the first `batch_size` samples; or `None`.

        `default_size` when `fit` got no `batch_size`; at most `MAX_SAMPLES`;
        as NumPy arrays. Arrays and nested arrays are sliced; a
        `tf.data.Dataset`, a `keras.utils.PyDataset` and a PyTorch
        `DataLoader` give their first batch (each can be iterated again, so
        training is not disturbed; a shuffled dataset fills its buffer once).
        A generator cannot be read without taking a batch from training:
        `None`.
        """
        size = min(int(self.batch_size or default_size), MAX_SAMPLES)
        return _first_batch(self.x, self.y, self.sample_weight, size)


def fit_data() -> FitData | None:
    """The training data of the `fit` whose callback hook is running; or `None`.

    Keras gives a callback no handle on the data it trains on. This walks up
    the stack to the frame of `Model.fit` (each backend's trainer defines it,
    with the training data in its locals `x`, `y`, `sample_weight` and
    `batch_size`, after `validation_split` has cut the validation part off).
    Call it from a hook on the training thread (`on_train_begin`).
    """
    import keras

    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "fit" and isinstance(
            frame.f_locals.get("self"), keras.Model
        ):
            data = frame.f_locals
            return FitData(
                data.get("x"),
                data.get("y"),
                data.get("sample_weight"),
                data.get("batch_size"),
            )
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _first_batch(
    x: Any, y: Any, sample_weight: Any, size: int
) -> tuple[Any, Any, Any] | None:
    import keras

    from keras_bettermodels import _validation

    def numpy(part: Any) -> Any:
        if part is None:
            return None
        return keras.tree.map_structure(keras.ops.convert_to_numpy, part)

    def head(part: Any) -> Any:
        if part is None:
            return None
        return keras.tree.map_structure(lambda array: array[:size], part)

    if x is None:
        return None
    if _validation.holds_arrays(x):
        return numpy(head(x)), numpy(head(y)), numpy(head(sample_weight))
    batch = None
    module = type(x).__module__
    if isinstance(x, keras.utils.PyDataset):
        batch = x[0]
    elif module.startswith("tensorflow") and hasattr(x, "take"):
        batch = next(iter(x.take(1)), None)
    elif module.startswith("torch.utils.data"):
        batch = next(iter(x), None)
    if batch is None:
        return None
    if not isinstance(batch, tuple | list) or len(batch) > 3:
        batch = (batch,)
    bx, by, bw = keras.utils.unpack_x_y_sample_weight(tuple(batch))
    return numpy(head(bx)), numpy(head(by)), numpy(head(bw))
