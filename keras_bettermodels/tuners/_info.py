"""`RetrainInfo`: what the retrain on the full data saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BEST_STEP", "RETRAIN_EPOCHS", "SEARCH_EPOCHS", "RetrainInfo"]

# RetrainInfo.epochs_source
BEST_STEP = "best_step"
SEARCH_EPOCHS = "search epochs"
RETRAIN_EPOCHS = "retrain_epochs"


@dataclass(frozen=True)
class RetrainInfo:
    """What the retrain on the full data saw.

    Attributes:
        trial_id: the best trial, whose hyperparameters were retrained.
        hyperparameters: their values, `{name: value}`.
        score: the best trial's objective value in the search.
        epochs: the epochs the retrain was asked to run.
        epochs_source: where `epochs` came from: `"best_step"` (the best
            trial's best epoch count, `best_step + 1`), `"search epochs"`
            (the search's `epochs`, when the HyperModel's `fit` returned no
            History) or `"retrain_epochs"` (the tuner's argument).
        epochs_run: the epochs in the History the fit returned (fewer than
            `epochs` if a callback stopped it), or `None` without a History.
        samples: the samples per epoch: `train_samples + validation_samples`;
            `None` for `tf.data` datasets, whose size is known only by
            reading them (see `batches`).
        train_samples: of which training samples.
        validation_samples: of which validation samples; `0` when there was
            no validation data.
        batches: batches per epoch of `tf.data` datasets, when their
            cardinality is known; otherwise `None`.
        data: how the validation data was added: `"arrays"`,
            `"validation_split"`, `"dataset"` or `"training data only"`.
        dropped_callbacks: the callbacks left out because they need
            validation data, such as `"EarlyStopping(monitor='val_loss')"`.
        model_path: where the retrained model was saved, or `None` if saving
            it failed.
        skipped: why the search's retrain was skipped (then nothing was
            trained, and the other fields describe the best trial only), or
            `None` when it ran.
    """

    trial_id: str
    hyperparameters: dict[str, Any]
    score: float | None
    epochs: int
    epochs_source: str
    epochs_run: int | None
    samples: int | None
    train_samples: int | None
    validation_samples: int | None
    batches: int | None
    data: str
    dropped_callbacks: tuple[str, ...] = field(default=())
    model_path: str | None = None
    skipped: str | None = None

    @classmethod
    def skipped_search_retrain(cls, reason: str, trial: Any = None) -> RetrainInfo:
        """The info of a retrain that was skipped, naming the best trial if any."""
        return cls(
            trial_id="" if trial is None else str(trial.trial_id),
            hyperparameters={} if trial is None else dict(trial.hyperparameters.values),
            score=None if trial is None or trial.score is None else float(trial.score),
            epochs=0,
            epochs_source="",
            epochs_run=None,
            samples=None,
            train_samples=None,
            validation_samples=None,
            batches=None,
            data="",
            skipped=reason,
        )

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> RetrainInfo:
        """Rebuilds a `RetrainInfo` from `dataclasses.asdict`'s output."""
        config = dict(config)
        config["dropped_callbacks"] = tuple(config.get("dropped_callbacks", ()))
        return cls(**config)
