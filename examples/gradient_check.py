"""A custom layer whose hand-written gradient is wrong, caught by a gradient check.

`HandWrittenSwish` computes swish(x) = x · sigmoid(x) and writes its own
derivative with `keras.ops.custom_gradient`, as one does for speed or numerical
stability. The derivative is sigmoid(x) + x · sigmoid(x) · (1 − sigmoid(x)); the
layer forgets the product rule's second term. Training still runs and the loss
still goes down, a little slower: nothing looks wrong. `check_gradients`
compares backpropagation with finite differences and says where it is wrong;
`GradientCheckCallback` does the same during `fit`.

Run it from the repository root, on any Keras backend:

    python examples/gradient_check.py
    KERAS_BACKEND=torch python examples/gradient_check.py

`KBM_QUICK=1` trains for fewer epochs (the tests use it).
"""

import os

import keras
import numpy as np
from keras import ops
from sklearn.datasets import load_digits

from keras_bettermodels.callbacks.gradient_check import GradientCheckCallback
from keras_bettermodels.gradient_check import check_gradients

EPOCHS = 2 if os.environ.get("KBM_QUICK") == "1" else 10


@keras.saving.register_keras_serializable(package="examples")
class HandWrittenSwish(keras.layers.Layer):
    """swish(x) = x · sigmoid(x), with a hand-written derivative.

    `forget_product_rule=True` is the deliberate mistake: the derivative
    returned is sigmoid(x) instead of sigmoid(x) + x · sigmoid(x) · (1 − sigmoid(x)).
    """

    def __init__(self, forget_product_rule=True, **kwargs):
        super().__init__(**kwargs)
        self.forget_product_rule = forget_product_rule

    def call(self, inputs):
        forget = self.forget_product_rule

        @ops.custom_gradient
        def swish(x):
            s = ops.sigmoid(x)

            def grad(*args, upstream=None):
                upstream = args[0] if upstream is None else upstream
                if forget:
                    return upstream * s  # wrong: the product rule's x·s' is missing
                return upstream * (s + x * s * (1.0 - s))

            return x * s, grad

        return swish(inputs)

    def get_config(self):  # the float64 copy the check runs on is rebuilt from it
        return {**super().get_config(), "forget_product_rule": self.forget_product_rule}


def build_model(forget_product_rule):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(64, name="hidden"),
            HandWrittenSwish(forget_product_rule, name="swish"),
            keras.layers.Dense(10, activation="softmax", name="output"),
        ]
    )
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


digits = load_digits()
x = (digits.data / 16.0).astype("float32")
y = digits.target.astype("int32")
order = np.random.default_rng(0).permutation(len(x))
x, y = x[order], y[order]
batch_x, batch_y = x[:32], y[:32]  # a gradient check needs one small batch

# 1. The layer as written: the check fails, and points at the layer before
#    the swish (its gradient passes through the wrong derivative). The
#    output layer, after the swish, is right.
wrong = check_gradients(build_model(forget_product_rule=True), batch_x, batch_y)
print(wrong)
print(f"verdict={wrong.verdict} passed={wrong.passed}")
print("failing variables:", [v.name for v in wrong.failed_variables])

# 2. With the product rule: the check passes, in the "great" band.
right = check_gradients(build_model(forget_product_rule=False), batch_x, batch_y)
print(
    f"\nfixed layer: relative error {right.relative_error:.1e}, verdict={right.verdict}"
)

# 3. During training: check at the start and after every epoch; with the wrong
#    layer, on_failure="stop" stops training at once instead of wasting it.
model = build_model(forget_product_rule=False)
check = GradientCheckCallback(batch_x, batch_y, every_n_epochs=1, on_failure="stop")
model.fit(
    x[:1000], y[:1000], epochs=EPOCHS, batch_size=64, verbose=0, callbacks=[check]
)
found = [f"{r.relative_error:.1e} ({r.verdict})" for r in check.reports]
print(f"checks during fit: {found}")
