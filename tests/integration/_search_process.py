"""One search process, for the tests that kill and restart real processes.

Run as `python -m tests.integration._search_process --directory D --records R ...`
from the repository root. It searches a tiny MLP on scikit-learn's digits with
`keras_bettermodels.tuners.RandomSearch` (`overwrite=False`, so that a second
run resumes the first), under the `KERASTUNER_*` variables it is given, if any.

Every call of the HyperModel's `fit` writes one JSON record to `--records`: who
ran it (pid, tuner id), whether it was a trial (it had validation data) or the
retrain (it had none), the hyperparameter values, the samples and epochs it
saw, and when it started and ended. With `--block-at-fit K`, the K-th `fit` of
this process writes `blocked-<tuner id>.json` after its first epoch and then
waits to be killed (it exits by itself after `--block-seconds`).

Other kill points and scripted results:

- `--die-writing NAME:N[@F]`: the N-th time this process writes a file
  whose name starts with NAME (`oracle.json`, `trial.json`, `tuner0.json`,
  `fit_result.json`, `build_config.json`, or a temporary file named after
  one), counted from when its F-th `fit` returned (from its start without
  `@F`), it writes half the text and dies (`os._exit(17)`), as a process
  killed in the middle of the write. keras-tuner 1.4.8 opens every project
  file with `keras_tuner.src.backend.io.File`, in place or not, so that is
  where the kill is planted. `checkpoint.weights.h5` (a trial's checkpoint,
  written by `keras.Model.save_weights`) dies with half the file written.
- `--boost-fit K`: the K-th `fit` of this process adds 1 to its History's
  `val_accuracy`, so that its trial is the best whatever the seeds.
- `--serve-first`: before searching, reloads the project as a serving script
  would and calls `get_retrained_model()`; the summary's `served` holds the
  model's first layer's units, or the error it raised.
- `--load-best`: after the search, loads `get_best_models(1)` (the best
  trial's checkpoint); the summary's `best_units` holds its first layer's units.

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


DIED_WRITING = 17
_fits_returned = [0]


def _die_while_writing(spec: str, records: Path) -> None:
    """Kills this process halfway through its N-th write of a file NAME
    (`NAME:N`), counted from its F-th returned `fit` (`NAME:N@F`)."""
    name, count = spec.rsplit(":", 1)
    nth, _, after_fits = count.partition("@")
    writes = 0

    def due(path: Any) -> bool:
        nonlocal writes
        if not os.path.basename(os.fspath(path)).startswith(name):
            return False
        if _fits_returned[0] < int(after_fits or 0):
            return False
        writes += 1
        return writes == int(nth)

    if name.endswith(".h5"):
        import keras

        save_weights = keras.Model.save_weights

        def dying_save_weights(model: Any, filepath: Any, *args: Any, **kw: Any):
            if not due(filepath):
                return save_weights(model, filepath, *args, **kw)
            whole = records / "whole.weights.h5"
            save_weights(model, whole, *args, **kw)
            data = whole.read_bytes()
            with open(filepath, "wb") as file:
                file.write(data[: len(data) // 2])
                file.flush()
            os._exit(DIED_WRITING)

        keras.Model.save_weights = dying_save_weights
        return

    from keras_tuner.src.backend import io as kt_io

    opened = kt_io.File

    class Dying:
        def __init__(self, file: Any) -> None:
            self.file = file

        def __enter__(self) -> Dying:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.file.close()

        def write(self, text: str) -> None:
            self.file.write(text[: len(text) // 2])
            self.file.flush()
            os._exit(DIED_WRITING)

    def dying_file(path: str, mode: str) -> Any:
        file = opened(path, mode)
        return Dying(file) if "w" in mode and due(path) else file

    kt_io.File = dying_file


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
    parser.add_argument("--die-writing", default="")
    parser.add_argument("--boost-fit", type=int, default=0)
    parser.add_argument("--serve-first", action="store_true")
    parser.add_argument("--load-best", action="store_true")
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
    if args.die_writing:
        _die_while_writing(args.die_writing, records)

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
            _fits_returned[0] += 1
            if Recording.calls == args.boost_fit:
                scores = history.history["val_accuracy"]
                history.history["val_accuracy"] = [v + 1.0 for v in scores]
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

    def reload() -> Any:
        return RandomSearch(
            Recording(),
            objective="val_accuracy",
            max_trials=args.max_trials,
            seed=1,
            directory=args.directory,
            project_name=args.project,
            overwrite=False,
        )

    served: dict[str, Any] | None = None
    if args.serve_first:
        try:
            served = {"units": reload().get_retrained_model().layers[0].units}
        except RuntimeError as error:
            served = {"error": str(error)}
    tuner = reload()
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
        "served": served,
    }
    if args.load_best:
        summary["best_units"] = tuner.get_best_models(1)[0].layers[0].units
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
