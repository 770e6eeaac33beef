"""Layers with planted gradient bugs, and their correct twins, for the tests.

Each bug sits in a custom gradient (`keras.ops.custom_gradient`, which works
on every backend) or a penalty cut off from backpropagation, so the forward
pass is right and only the gradient is wrong. The layers are registered, so
that the float64 copy of a model can be rebuilt from its config.
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "kbm_gradient_check_tests"


def _upstream(args, upstream):
    return args[0] if upstream is None else upstream


@ops.custom_gradient
def _tanh_forgets_square(x):
    y = ops.tanh(x)

    def grad(*args, upstream=None):
        # d tanh / dx = 1 - tanh², written as 1 - tanh: the planted bug.
        return _upstream(args, upstream) * (1.0 - y)

    return y, grad


@ops.custom_gradient
def _tanh_right(x):
    y = ops.tanh(x)

    def grad(*args, upstream=None):
        return _upstream(args, upstream) * (1.0 - ops.square(y))

    return y, grad


@ops.custom_gradient
def _scaled_gradient(x):
    def grad(*args, upstream=None):
        return _upstream(args, upstream) * 1.03

    return ops.copy(x), grad


@ops.custom_gradient
def _negated_gradient(x):
    def grad(*args, upstream=None):
        return -_upstream(args, upstream)

    return ops.copy(x), grad


@keras.saving.register_keras_serializable(package=PACKAGE)
class HandTanh(keras.layers.Layer):
    """tanh with a hand-written gradient; `forget_square=True` plants the bug."""

    def __init__(self, forget_square: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.forget_square = forget_square

    def call(self, inputs):
        if self.forget_square:
            return _tanh_forgets_square(inputs)
        return _tanh_right(inputs)

    def get_config(self):
        return {**super().get_config(), "forget_square": self.forget_square}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledKernelDense(keras.layers.Dense):
    """A Dense layer whose kernel gradient comes out 1.03 times too large."""

    def call(self, inputs):
        # `convert_to_tensor`: PyTorch's custom gradients see tensors only.
        kernel = _scaled_gradient(ops.convert_to_tensor(self.kernel))
        y = ops.matmul(inputs, kernel)
        return self.activation(ops.add(y, self.bias))


@keras.saving.register_keras_serializable(package=PACKAGE)
class WrongSignBiasDense(keras.layers.Dense):
    """A Dense layer whose bias gradient has the wrong sign."""

    def call(self, inputs):
        y = ops.matmul(inputs, self.kernel)
        bias = _negated_gradient(ops.convert_to_tensor(self.bias))
        return self.activation(ops.add(y, bias))


@keras.saving.register_keras_serializable(package=PACKAGE)
class DetachedPenaltyDense(keras.layers.Dense):
    """A Dense layer with a kernel penalty that backprop never sees.

    `detach=False` is the correct layer: the same penalty, differentiated.
    """

    def __init__(self, units, penalty=0.1, detach=True, **kwargs):
        super().__init__(units, **kwargs)
        self.penalty = penalty
        self.detach = detach

    def call(self, inputs):
        penalty = self.penalty * ops.sum(ops.square(self.kernel))
        self.add_loss(ops.stop_gradient(penalty) if self.detach else penalty)
        return super().call(inputs)

    def get_config(self):
        return {
            **super().get_config(),
            "penalty": self.penalty,
            "detach": self.detach,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledKernelConv2D(keras.layers.Conv2D):
    """A Conv2D layer whose kernel gradient comes out 1.03 times too large."""

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(
            inputs, _scaled_gradient(ops.convert_to_tensor(kernel))
        )
