"""The one seam to Keras' and keras-tuner's internals.

Every `keras.src` / `keras_tuner.src` import, private attribute and frame walk
the package needs lives here, one small named function per need, grouped by
area (`io`, `layers`, `tuner`, `pruning`, `gradient_check`, ...). Each function says
which versions it was checked against, and `tests/_compat/` fails loudly when
an internal moves. Code elsewhere uses public Keras APIs or these functions.
"""
