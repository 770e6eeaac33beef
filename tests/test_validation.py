"""Argument errors in Keras' wording, and misspelt keywords that name the right one."""

from __future__ import annotations

import pytest

from keras_bettermodels import _validation
from keras_bettermodels.callbacks import (
    EarlyStopping,
    GradientCheckCallback,
    MixedPrecisionGuard,
)
from keras_bettermodels.criteria import GL

pytestmark = pytest.mark.any_backend


@pytest.mark.parametrize(
    ("make", "misspelt", "meant"),
    [
        (lambda: EarlyStopping(criteria="GL(5)"), "criteria", "criterion"),
        (lambda: MixedPrecisionGuard(batchsize=64), "batchsize", "batch_size"),
        (
            lambda: GradientCheckCallback([[0.0]], every_n_epoch=5),
            "every_n_epoch",
            "every_n_epochs",
        ),
        # A keyword of `check_gradients`, which the callback passes on.
        (
            lambda: GradientCheckCallback([[0.0]], num_direction=3),
            "num_direction",
            "num_directions",
        ),
    ],
)
def test_a_misspelt_keyword_names_the_nearest_accepted_one(make, misspelt, meant):
    with pytest.raises(TypeError, match=rf"`{misspelt}` \(did you mean `{meant}`\?\)"):
        make()


def test_the_callbacks_own_arguments_are_listed_with_check_gradients():
    with pytest.raises(TypeError) as caught:
        GradientCheckCallback([[0.0]], every_n_epoch=5)
    accepted = str(caught.value).split("It accepts: ")[1]
    for name in ("every_n_epochs", "on_failure", "log_dir", "num_directions", "seed"):
        assert name in accepted


def test_a_keyword_far_from_any_suggests_nothing_and_lists_them_all():
    with pytest.raises(TypeError, match=r"`zzz`\. It accepts: monitor, min_delta"):
        EarlyStopping(zzz=1)


def test_the_signature_is_kept_for_help_and_ides():
    import inspect

    assert "criterion" in inspect.signature(EarlyStopping).parameters


def test_a_gl_alpha_below_one_says_alpha_is_a_percentage():
    with pytest.warns(UserWarning, match=r"percentage.*for 5 %, write GL\(5\)"):
        GL(0.05)


def test_a_gl_alpha_in_percent_is_silent(recwarn):
    GL(5)
    assert not [w for w in recwarn if "percentage" in str(w.message)]


def test_invalid_value_is_worded_as_keras_words_it():
    assert _validation.invalid_value("patience", "a non-negative integer", -1) == (
        "Invalid value for argument `patience`. Expected a non-negative integer. "
        "Received: patience=-1"
    )


def test_data_as_x_y_shows_shapes_and_the_batch_size_hint():
    import numpy as np

    from keras_bettermodels.callbacks import CacheTimingCallback

    x, y = np.zeros((1797, 64), "float32"), np.zeros((1797,), "int64")
    with pytest.raises(TypeError) as caught:
        CacheTimingCallback(dataset=(x, y))
    message = str(caught.value)
    assert (
        "Received: dataset=(ndarray(shape=(1797, 64), dtype=float32), "
        "ndarray(shape=(1797,), dtype=int64))" in message
    )
    assert "pass `batch_size=`" in message
    assert message.count("\n") <= 1  # not the arrays' numbers
    with pytest.raises(TypeError, match=r"dataset=\{'image': ndarray\(shape="):
        CacheTimingCallback(dataset={"image": x})


def test_cache_timing_names_a_misspelt_keyword():
    from keras_bettermodels.callbacks import CacheTimingCallback

    with pytest.raises(TypeError, match=r"`batchsize` \(did you mean `batch_size`\?\)"):
        CacheTimingCallback(batchsize=32)
