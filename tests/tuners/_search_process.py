"""One search process, for the tests that kill and restart real processes.

Run as `python -m tests.tuners._search_process --directory D --records R ...`
from the repository root. It searches a tiny MLP on scikit-learn's digits with
`keras_bettermodels.tuners.RandomSearch` (`overwrite=False`, so that a second
run resumes the first), under the `KERASTUNER_*` variables it is given, if any.

Every call of the HyperModel's `fit` writes one JSON record to `--records`: who
ran it (pid, tuner id), whether it was a trial (it had validation data) or the
retrain (it had none), the hyperparameter values, the samples and epochs it
saw, and when it started and ended. With `--block-at-fit K`, the K-th `fit` of
this process writes `blocked-<tuner id>.json` after its first epoch and then
waits to be killed (it exits by itself after `--block-seconds`).

The last line printed is a JSON summary: the tuner id and, where the process
retrained, `retrain_info`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

TRAIN = 500
VALIDATION = 150


def _write_json(path: Path, document: dict[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document))
    os.replace(partial, path)  # readers never see half a record


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--project", default="search")
    parser.add_argument("--records", required=True)
    parser.add_argument("--max-trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--block-at-fit", type=int, default=0)
    parser.add_argument("--block-seconds", type=float, default=120.0)
    parser.add_argument("--verbose", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import keras_tuner
    from sklearn.datasets import load_digits

    from keras_bettermodels.tuners.random_search import RandomSearch

    records = Path(args.records)
    records.mkdir(parents=True, exist_ok=True)
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")

    class Block(keras.callbacks.Callback):
        """Marks the trial as under way after its first epoch, then hangs."""

        def __init__(self, values: dict[str, Any]) -> None:
            super().__init__()
            self.values = values

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch != 0:
                return
            _write_json(
                records / f"blocked-{tuner_id}.json",
                {"pid": os.getpid(), "values": self.values},
            )
            deadline = time.monotonic() + args.block_seconds
            while time.monotonic() < deadline:  # killed long before, normally
                time.sleep(0.05)
            os._exit(3)

    class Recording(keras_tuner.HyperModel):
        calls = 0

        def build(self, hp: Any) -> keras.Model:
            model = keras.Sequential(
                [
                    keras.Input((64,)),
                    keras.layers.Dense(
                        hp.Int("units", 4, 64, step=4), activation="relu"
                    ),
                    keras.layers.Dense(10),
                ]
            )
            model.compile(
                optimizer=keras.optimizers.Adam(hp.Choice("lr", [1e-2, 3e-3])),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            return model

        def fit(self, hp: Any, model: keras.Model, x: Any, y: Any, **kwargs: Any):
            Recording.calls += 1
            validated = "validation_data" in kwargs or "validation_split" in kwargs
            record: dict[str, Any] = {
                "pid": os.getpid(),
                "tuner_id": tuner_id,
                "kind": "trial" if validated else "retrain",
                "values": dict(hp.values),
                "samples": len(x),
                "epochs": kwargs.get("epochs"),
                "start": time.time(),
            }
            callbacks = list(kwargs.pop("callbacks", None) or [])
            if Recording.calls == args.block_at_fit:
                callbacks.append(Block(record["values"]))
            history = model.fit(x, y, callbacks=callbacks, **kwargs)
            record["end"] = time.time()
            record["epochs_run"] = len(history.epoch)
            name = f"{record['kind']}-{tuner_id}-{os.getpid()}-{Recording.calls}.json"
            _write_json(records / name, record)
            return history

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    end = TRAIN + VALIDATION
    keras.utils.set_random_seed(0)
    tuner = RandomSearch(
        Recording(),
        objective="val_accuracy",
        max_trials=args.max_trials,
        seed=1,
        directory=args.directory,
        project_name=args.project,
        overwrite=False,
    )
    tuner.search(
        x[:TRAIN],
        y[:TRAIN],
        epochs=args.epochs,
        batch_size=64,
        validation_data=(x[TRAIN:end], y[TRAIN:end]),
        verbose=args.verbose,
    )
    info = tuner.retrain_info
    summary = {
        "tuner_id": tuner_id,
        "retrain_info": None if info is None else dataclasses.asdict(info),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
