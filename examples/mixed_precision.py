"""The seed article's mixed-precision example, audited, watched and rescued.

The article writes (TensorFlow 2.x, `tf.keras`):

    policy = tf.keras.mixed_precision.Policy('mixed_float16')
    tf.keras.mixed_precision.set_global_policy(policy)

    inputs = keras.Input(shape=(784,))
    x = tf.keras.layers.Dense(4096, activation='relu')(inputs)
    x = tf.keras.layers.Dense(4096, activation='relu')(x)
    x = layers.Dense(10)(x)
    outputs = layers.Activation('softmax', dtype='float32')(x)
    model = keras.Model(inputs=inputs, outputs=outputs)

    model.compile(...)
    model.fit(...)

In Keras 3 the policy is set with `keras.config.set_dtype_policy`; the rest is
the same, and `compile()` adds loss scaling by itself. Here it trains on
scikit-learn's digits, scaled up to MNIST's 28 x 28 = 784 inputs, and

1. audits the model before training (`keras_bettermodels.precision.audit`);
2. trains it with `MixedPrecisionGuard`, which prints the audit (on a CPU it
   says that mixed precision gains nothing here) and watches the loss scale;
3. shows a float16 softmax being flagged and fixed (`float32_outputs`);
4. measures float32 against mixed_float16 (`compare_precision`);
5. feeds it a batch that overflows float16 with loss scaling turned off:
   without the guard the weights become NaN, with it they come back intact.

Run it from the repository root, on any Keras backend:

    python examples/mixed_precision.py
    KERAS_BACKEND=jax python examples/mixed_precision.py

`KBM_QUICK=1` shrinks the hidden layers from 4096 to 256 units and trains
less (the tests use it).
"""

import os

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_bettermodels.callbacks.mixed_precision import MixedPrecisionGuard
from keras_bettermodels.precision import audit, compare_precision, float32_outputs

QUICK = os.environ.get("KBM_QUICK") == "1"
HIDDEN = 256 if QUICK else 4096
EPOCHS = 2 if QUICK else 5
BATCH_SIZE = 128
COMPARE_STEPS = 2 if QUICK else 20

# Digits: 8 x 8 images, each pixel repeated 3 x 3 and padded to 28 x 28.
digits = load_digits()
images = np.kron(digits.images / 16.0, np.ones((3, 3)))
images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
x = images.reshape(len(images), 784).astype("float32")
y = digits.target.astype("int32")
order = np.random.default_rng(0).permutation(len(x))
x, y = x[order], y[order]
x_train, y_train = x[:1280], y[:1280]
x_test, y_test = x[1280:], y[1280:]


def build_model(float32_softmax=True):
    """The article's model, under whatever dtype policy is set."""
    inputs = keras.Input(shape=(784,))
    x = keras.layers.Dense(HIDDEN, activation="relu")(inputs)
    x = keras.layers.Dense(HIDDEN, activation="relu")(x)
    if float32_softmax:
        x = keras.layers.Dense(10)(x)
        outputs = keras.layers.Activation("softmax", dtype="float32")(x)
    else:
        outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


keras.utils.set_random_seed(0)
previous_policy = keras.config.dtype_policy()
keras.config.set_dtype_policy("mixed_float16")  # the article's first two lines
try:
    # 1. The audit needs no training.
    model = build_model()
    print(f"1. audit of the article's model ({model.count_params():,} parameters):")
    for finding in audit(model, batch_size=BATCH_SIZE):
        print(f"   {finding}")

    # 2. Train it with the guard: it audits again at train begin, then
    #    reads the loss scale and counts skipped steps at every epoch end.
    print("\n2. training with MixedPrecisionGuard:")
    guard = MixedPrecisionGuard(batch_size=BATCH_SIZE)
    model.fit(
        x_train,
        y_train,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        verbose=0,
        callbacks=[guard],
    )
    test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    report = guard.loss_scale_report
    print(f"   test accuracy: {test['accuracy']:.4f}")
    print(
        f"   loss scale: {report.scale:g}; skipped steps: "
        f"{report.skipped_steps} of {report.steps_run}"
    )
    print(f"   MixedPrecisionGuard findings: {[f.code for f in guard.findings]}")

    # 3. The same model with its softmax in float16 is flagged; fixed.
    print("\n3. a float16 softmax:")
    half = build_model(float32_softmax=False)
    for finding in audit(half):
        if finding.code == "output-not-float32":
            print(f"   {finding}")
    fixed = float32_outputs(half)
    flagged = any(f.code == "output-not-float32" for f in audit(fixed))
    print(f"   after float32_outputs, still flagged: {flagged}")

    # 4. Does mixed precision pay for this model on this machine?
    print("\n4. compare_precision (float32 against mixed_float16):")
    comparison = compare_precision(
        build_model, (x_train[:BATCH_SIZE], y_train[:BATCH_SIZE]), steps=COMPARE_STEPS
    )
    print("   " + str(comparison).replace("\n", "\n   "))
    if QUICK:
        print("   (KBM_QUICK=1: too few steps for the timings to mean much)")

    # 5. A batch that overflows float16 (inputs past 65504), loss scaling off:
    #    nothing skips the step, so the NaN gradients reach the weights.
    print("\n5. an overflowing batch, with compile(auto_scale_loss=False):")
    x_bad = x_train.copy()
    x_bad[:BATCH_SIZE] = 1e5
    for guarded in (False, True):
        model = build_model()
        model.compile("adam", "sparse_categorical_crossentropy", auto_scale_loss=False)
        model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=1, verbose=0)
        before = model.get_weights()
        callbacks = [MixedPrecisionGuard(verbose=0)] if guarded else []
        model.fit(
            x_bad,
            y_train,
            batch_size=BATCH_SIZE,
            epochs=EPOCHS,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )
        after = model.get_weights()
        nan = any(np.isnan(w).any() for w in after)
        intact = all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
        if not guarded:
            print(f"   without the guard: NaN in the weights: {nan}")
        else:
            rescue = callbacks[0]
            print(
                f"   with MixedPrecisionGuard(): weights intact: {intact}, "
                f"stopped_epoch={rescue.stopped_epoch}, "
                f"restored_epoch={rescue.restored_epoch} (-1: the start of this fit)"
            )
            print(f"   {rescue.findings[-1]}")
finally:
    keras.config.set_dtype_policy(previous_policy)
