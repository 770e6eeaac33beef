"""One worker of a two-worker `MultiWorkerMirroredStrategy`, for `test_multi_worker.py`.

Run as `python -m tests.integration.distributed._multi_worker` from the repository root,
with `TF_CONFIG` naming the cluster and this worker's index. It trains a tiny
model for one epoch and prints one JSON line: `{"fit": "ok", ...}`, or
`{"fit": "error", ...}` with the error and whether it was raised in Keras'
symbolic build of the first batch (`_maybe_symbolic_build`), where Keras 3
fails today (keras-team/keras#20585, tensorflow/tensorflow#72388). It exits
with status 0 either way: any other status is a crash.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    # Created first: it sets up the collective ops before TensorFlow runs any.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    import keras
    import numpy as np

    keras.config.disable_traceback_filtering()  # keep Keras' frames
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
    x = np.ones((16, 4), "float32")
    y = np.ones((16, 1), "float32")
    try:
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    except Exception as error:  # the outcome is the report
        message = str(error)
        print(
            json.dumps(
                {
                    "fit": "error",
                    "type": type(error).__name__,
                    "message": message[:400],
                    "in_symbolic_build": "_maybe_symbolic_build"
                    in traceback.format_exc(),
                }
            ),
            flush=True,
        )
        return 0
    print(
        json.dumps(
            {
                "fit": "ok",
                "replicas": strategy.num_replicas_in_sync,
                "loss": float(history.history["loss"][-1]),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
