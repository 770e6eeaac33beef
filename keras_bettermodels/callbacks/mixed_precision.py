"""MixedPrecisionGuard: audit, watch and rescue mixed-precision training."""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import keras

from keras_bettermodels import _validation
from keras_bettermodels._compat.callbacks import bare_model
from keras_bettermodels._compat.fit_data import FitData, fit_data
from keras_bettermodels._compat.io import print_msg
from keras_bettermodels._compat.precision import raw_iterations
from keras_bettermodels._snapshot import (
    NonfiniteLossWatch,
    Snapshot,
    first_nonfinite_variable,
)
from keras_bettermodels.health.findings import float16_range
from keras_bettermodels.health.probe import HealthProbe
from keras_bettermodels.precision import loss_scale
from keras_bettermodels.precision.audit import DEFAULT_MIN_PARAMS, audit
from keras_bettermodels.precision.findings import (
    FLOAT16_OVERFLOW,
    NONFINITE_LOSS,
    NONFINITE_WEIGHTS,
    Finding,
)

__all__ = ["ON_NONFINITE", "MixedPrecisionGuard"]

#: What `MixedPrecisionGuard` can do about a non-finite loss.
ON_NONFINITE = ("restore", "stop", "raise", "warn")
_TAG = "mixed_precision"
_NONFINITE_FIX = (
    "Find the layer whose activations overflow float16 (values past 65504) and "
    'compute it in float32 (`dtype="float32"`); check the data for NaN or '
    "infinite values; lower the learning rate; under mixed_float16 keep loss "
    "scaling on (`compile(auto_scale_loss=True)`, the default)."
)
_NONFINITE_WEIGHTS_FIX = (
    "A layer that maps NaN to 0 (as `relu` does on some CPUs) hides broken "
    "weights from the loss: look at the variable named, the layer it belongs "
    "to and the updates that reach it; lower the learning rate; check the data "
    "for extreme values (a huge input can overflow an optimizer's slots while "
    "the loss stays finite)."
)


@_validation.suggest_keywords()
class MixedPrecisionGuard(keras.callbacks.Callback):
    """Audits a mixed-precision setup, watches the loss scale, rescues NaN runs.

    - **At train begin** it runs `keras_bettermodels.precision.audit` on the
      model: float16 outputs or softmax, missing loss scaling, hardware that
      gains nothing (a CPU, a GPU older than Volta, float16 on a TPU), a model
      too small to gain much, sizes that are not multiples of 8. It prints the
      findings (with `verbose=1`) and keeps them in `findings`.
    - **At each epoch end** it reads the `LossScaleOptimizer`'s dynamic scale
      and counts the steps it skipped: Keras 3's `LossScaleOptimizer` does
      not advance `optimizer.iterations` on a skipped step, so skipped steps =
      steps run - iterations gained. It reports `skipped-steps` (count and
      share) and `loss-scale-collapse` (the scale fell below 1, or fell at 3
      epoch ends in a row: Keras puts no floor under it). These are read once
      per epoch, never in a batch hook: on JAX, reading model state there
      would force a state sync on every step.
    - **After each batch** it checks the training loss that Keras has already
      turned into a Python float for the batch-end hooks (no extra device
      sync; on JAX and PyTorch this runs on Keras' callback thread, off the
      training loop): a NaN or infinite loss is `nonfinite-loss`.
    - **At each epoch end and at train end**, under any policy (float32
      too), it checks the model's state: every model variable (trainable or
      not, BatchNormalization's moving statistics included) and every
      optimizer variable, with one fused reduction on the device and one
      scalar read back (no host copy of the weights). A loss can stay finite
      while weights are NaN (a `relu` that maps NaN to 0, a huge input that
      overflows Adam's slots): a non-finite variable is `nonfinite-weights`,
      naming the variable's `path` and whether it is a weight or an
      optimizer variable.

    Both are handled by `on_nonfinite`:
        - `"restore"`: stop training and, at that epoch's end, put back the
          weights and optimizer state of the last epoch that ended with a
          finite loss and finite state (or of the start of training). Keeps
          a copy of them in device memory, refreshed at each good epoch end.
        - `"stop"`: stop training at the end of the epoch; the weights stay as
          training left them (possibly NaN).
        - `"raise"`: stop training and, at that epoch's end, raise
          `FloatingPointError`.
        - `"warn"`: warn once per epoch and train on.

    Put the guard first in `callbacks`, so that callbacks that save the model
    at the same epoch end (`ModelCheckpoint`) see the restored weights.

    Args:
        on_nonfinite: `"restore"`, `"stop"`, `"raise"` or `"warn"`. Defaults
            to `"restore"`.
        batch_size: the training batch size, for the audit's multiple-of-8
            check (a callback cannot see it). Defaults to `None`.
        min_params: the audit's `small-model` threshold. Defaults to
            `100_000_000`.
        verbose: 0 is silent, 1 prints the audit and each finding. Defaults
            to `1`.
        log_dir: if set, the loss scale and the skipped steps are written
            there as TensorBoard scalars under `mixed_precision/`, and the
            findings as text (TensorBoard's Text tab). Defaults to `None`.
        x: a sample batch's inputs; `None` takes the first batch of `fit`'s
            training data, as `TrainingHealth` does. A non-finite loss or
            state is followed by one pass of `TrainingHealth`'s per-layer
            probe on it (before any restore): `float16-overflow` names the
            first layer, in forward order, whose outputs or gradient pass
            float16's range. Defaults to `None`.
        y: the sample's targets. Defaults to `None`.

    Attributes:
        findings: the audit's findings, then those raised while training, in
            order.
        loss_scale_report: the latest `LossScaleReport` (skipped steps, share,
            scale), or `None` without a `LossScaleOptimizer`.
        nonfinite_epoch: the 0-based epoch of the first non-finite loss or
            state, or `None`.
        restored_epoch: after a restore, the 0-based epoch whose end-of-epoch
            state was put back (-1: the start of training); else `None`.
        stopped_epoch: the 0-based epoch after which the guard stopped
            training; 0 if it did not (Keras' convention).

    Raises:
        ValueError: for an invalid `on_nonfinite`, `batch_size`, `min_params`
            or `verbose`.
        FloatingPointError: during `fit`, with `on_nonfinite="raise"`.

    Example:

    ```python
    keras.config.set_dtype_policy("mixed_float16")
    model = build_model()  # ends in Activation("softmax", dtype="float32")
    model.compile(...)     # wraps the optimizer in a LossScaleOptimizer
    guard = MixedPrecisionGuard(batch_size=256, log_dir="runs/mp")
    model.fit(x, y, batch_size=256, epochs=10, callbacks=[guard])
    for finding in guard.findings:
        print(finding)
    ```

    References:
        Paulius Micikevicius et al., "Mixed Precision Training", ICLR 2018.
    """

    # Keras may run the batch-end hook on its callback thread (JAX, PyTorch):
    # it only reads the logs and takes the loss watch's lock.
    async_safe = True

    def __init__(
        self,
        *,
        on_nonfinite: str = "restore",
        batch_size: int | None = None,
        min_params: int = DEFAULT_MIN_PARAMS,
        verbose: int = 1,
        log_dir: str | os.PathLike[str] | None = None,
        x: Any = None,
        y: Any = None,
    ) -> None:
        super().__init__()
        for name, value in (("x", x), ("y", y)):
            if value is not None and not _validation.holds_arrays(value):
                raise TypeError(
                    _validation.invalid_type(
                        name, "an array, or a list or dict of arrays", value
                    )
                )
        self.x = x
        self.y = y
        if on_nonfinite not in ON_NONFINITE:
            raise ValueError(
                _validation.invalid_value(
                    "on_nonfinite", f"one of {ON_NONFINITE}", on_nonfinite
                )
            )
        self.on_nonfinite = on_nonfinite
        self.batch_size = (
            None
            if batch_size is None
            else _validation.check_int("batch_size", batch_size, minimum=1)
        )
        self.min_params = _validation.check_int("min_params", min_params)
        self.verbose = _validation.check_int("verbose", verbose)
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise TypeError(
                _validation.invalid_type("log_dir", "a path or None", log_dir)
            )
        self.log_dir = log_dir
        self._watch = NonfiniteLossWatch()
        self._reset()

    def __getstate__(self) -> dict[str, Any]:
        # Copies (keras-tuner deep-copies callbacks per trial) start afresh:
        # the kept state belongs to this fit.
        state = self.__dict__.copy()
        state["_good_state"] = None
        state["_fit_data"] = None
        return state

    def _reset(self) -> None:
        self.findings: list[Finding] = []
        self.loss_scale_report: loss_scale.LossScaleReport | None = None
        self.nonfinite_epoch: int | None = None
        self.restored_epoch: int | None = None
        self.stopped_epoch = 0
        self._checks: list[loss_scale.LossScaleCheck] = []
        self._audited = False
        self._good_state: Snapshot | None = None
        self._fit_data: FitData | None = None
        self._good_epoch = -1
        self._first_epoch = True
        self._iterations: int | None = None
        self._epoch = 0
        self._reported = False
        self._watch.reset()

    def _model_without_sync(self) -> Any:
        # On JAX, `Callback.model` syncs the whole training state back into
        # the model (`jax_state_sync`); from Keras' callback thread that would
        # also race the training loop. Batch hooks use the bare model.
        if keras.backend.backend() == "jax":
            return bare_model(self)
        return self.model

    # -- optimizer readings (epoch ends only) --------------------------------

    def _loss_scale_optimizer(self) -> Any:
        optimizer = getattr(self.model, "optimizer", None)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer
        return None

    def _read_iterations(self) -> int | None:
        optimizer = self._loss_scale_optimizer()
        if optimizer is None:
            return None
        # The raw counter: `iterations` divides by gradient_accumulation_steps.
        return raw_iterations(optimizer.inner_optimizer)

    def _read_scale(self) -> float | None:
        optimizer = self._loss_scale_optimizer()
        if optimizer is None:
            return None
        if not optimizer.built:  # TensorFlow builds it at the first step
            return float(optimizer.initial_scale)
        return float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))

    # -- hooks ---------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()
        # Where a non-finite value would send the probe: read only then.
        self._fit_data = None if self.x is not None else fit_data()
        if self.model.built:
            self._audit()
        # Else (TensorFlow builds a model without an `Input` at its first
        # step) the audit runs at the first epoch end.
        self._iterations = self._read_iterations()
        scale = self._read_scale()
        if scale is not None:
            self._checks.append(
                loss_scale.LossScaleCheck(
                    -1, 0, 0, scale, label="the start of training"
                )
            )
        if self.on_nonfinite == "restore" and self.model.built:
            self._good_state = Snapshot.take(self.model)

    def _audit(self) -> None:
        audited = audit(
            self.model, batch_size=self.batch_size, min_params=self.min_params
        )
        self._audited = True
        self.findings.extend(audited)
        if self.verbose > 0:
            print_msg(
                f"MixedPrecisionGuard: audit of model `{self.model.name}` "
                f"(policy {self.model.dtype_policy.name!r}):"
            )
            for finding in audited:
                print_msg(f"  {finding}")
        self._write_findings(0, audited, "audit")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._watch.reset()
        resumed = self._first_epoch and epoch > 0
        self._first_epoch = False
        if resumed and self.on_nonfinite == "restore" and self.model.built:
            # A resumed fit (`keras.callbacks.BackupAndRestore` put back the
            # weights of epoch `epoch - 1` after our `on_train_begin`, or
            # `initial_epoch`): that epoch's end is the last good state.
            self._good_state = Snapshot.take(self.model)
            self._good_epoch = epoch - 1

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        first = self._watch.record(batch, (logs or {}).get("loss"))
        if first and self.on_nonfinite != "warn":
            # Stop now; act at the epoch's end, once the hooks of every batch
            # have run (Keras waits for them) and the first bad batch is known.
            self._model_without_sync().stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self._epoch = epoch
        if not self._audited:
            self._audit()
        new: list[Finding] = []
        scalars: dict[str, float | None] = {}
        iterations = self._read_iterations()
        if iterations is not None and self._iterations is not None:
            check = loss_scale.LossScaleCheck(
                epoch,
                self._watch.steps,
                iterations - self._iterations,
                self._read_scale(),
                label=f"epoch {epoch + 1}",
            )
            self._checks.append(check)
            self.loss_scale_report = loss_scale.analyze_loss_scale(self._checks)
            new.extend(self.loss_scale_report.findings)
            scalars = {
                f"{_TAG}/loss_scale": check.scale,
                f"{_TAG}/skipped_steps": float(check.skipped),
                f"{_TAG}/skipped_share": (
                    check.skipped / check.steps_run if check.steps_run else None
                ),
            }
        self._iterations = iterations

        problem = self._nonfinite_loss(epoch, logs.get("loss"))
        if problem is None:
            problem = self._nonfinite_state(epoch, logs.get("loss"))
        if problem is not None:
            located = self._locate_overflow(epoch)
            if located is not None:
                new.append(located)
            if self.on_nonfinite == "raise":  # one report, before it raises
                self._report(epoch, new, scalars)
                new, scalars = [], {}
            new.append(self._handle_nonfinite(epoch, *problem))
        elif self.on_nonfinite == "restore":
            self._good_state = Snapshot.take(self.model)
            self._good_epoch = epoch
        self._reported = problem is not None
        self._report(epoch, new, scalars)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        # What changed the state after the last epoch's check (a callback
        # after this one, a last partial epoch) is caught here.
        if self._reported:
            return  # the last epoch's end reported (and handled) it already
        epoch = self._epoch
        problem = self._nonfinite_state(epoch, (logs or {}).get("loss"))
        if problem is None:
            return
        finding = self._handle_nonfinite(epoch, *problem)
        self._report(epoch, [finding], {})

    def _locate_overflow(self, epoch: int) -> Finding | None:
        """`float16-overflow` naming the layer, from the sample batch; or `None`."""
        sample: tuple[Any, Any, Any] | None
        if self.x is not None:
            sample = (self.x, self.y, None)
        elif self._fit_data is not None:  # the first batch `fit` trains on
            sample = self._fit_data.first_batch()
        else:
            sample = None
        if sample is None or not self.model.built:
            return None
        probe = HealthProbe(self.model)
        _, rows = probe.sample(epoch, probe.bind(*sample))
        for found in float16_range(rows, self.model.dtype_policy.name):
            if found.code == FLOAT16_OVERFLOW:
                return Finding(
                    FLOAT16_OVERFLOW,
                    "error",
                    f"Layer `{found.layer}`, on the sample batch: {found.message}",
                    f'Compute `{found.layer}` in float32 (`dtype="float32"`); '
                    "keep loss scaling on; lower the learning rate.",
                )
        return None

    def _report(
        self, epoch: int, new: list[Finding], scalars: dict[str, float | None]
    ) -> None:
        self.findings.extend(new)
        if self.verbose > 0:
            for finding in new:
                print_msg(f"Epoch {epoch + 1}: {finding}")
        if self.log_dir is not None and scalars:
            from keras_bettermodels.tensorboard import summary

            summary.write_scalars(self.log_dir, epoch, scalars)
        self._write_findings(epoch, new, "findings")

    # -- the two checks: (code, message, fix) or None -------------------------

    def _nonfinite_loss(self, epoch: int, loss: Any) -> tuple[str, str, str] | None:
        batch = self._watch.first_batch
        if batch is None and (loss is None or math.isfinite(float(loss))):
            return None
        where = "" if batch is None else f" at batch {batch}"
        message = f"The training loss became {loss}{where} in epoch {epoch + 1}."
        return NONFINITE_LOSS, message, _NONFINITE_FIX

    def _nonfinite_state(self, epoch: int, loss: Any) -> tuple[str, str, str] | None:
        if not self.model.built:
            return None
        variable = first_nonfinite_variable(self.model)
        if variable is None:
            return None
        message = (
            f"The {variable} became NaN or infinite in epoch {epoch + 1}, "
            f"while the training loss was {loss}."
        )
        return NONFINITE_WEIGHTS, message, _NONFINITE_WEIGHTS_FIX

    def _handle_nonfinite(
        self, epoch: int, code: str, message: str, fix: str
    ) -> Finding:
        if self.nonfinite_epoch is None:
            self.nonfinite_epoch = epoch
        if self.on_nonfinite == "raise":
            self.findings.append(Finding(code, "error", message, fix))
            raise FloatingPointError(
                f"{message} (MixedPrecisionGuard(on_nonfinite='raise')) {fix}"
            )
        if self.on_nonfinite == "restore":
            message += " " + self._restore()
            self._stop(epoch)
        elif self.on_nonfinite == "stop":
            message += " Stopped training; the weights are as training left them."
            self._stop(epoch)
        elif self.on_nonfinite == "warn":
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return Finding(code, "error", message, fix)

    def _restore(self) -> str:
        """Puts the last good state back; returns what it did, in words."""
        if self._good_state is None:
            return "Stopped training; no earlier state could be restored."
        try:
            self._good_state.restore(self.model)
        except ValueError:  # the model or its optimizer changed meanwhile
            return "Stopped training; no earlier state could be restored."
        self.restored_epoch = self._good_epoch
        self._iterations = self._read_iterations()
        source = (
            "the start of this fit"
            if self._good_epoch < 0
            else f"the end of epoch {self._good_epoch + 1}"
        )
        return (
            f"Restored the weights and optimizer state from {source} "
            "and stopped training."
        )

    def _stop(self, epoch: int) -> None:
        self.model.stop_training = True
        self.stopped_epoch = epoch

    def _write_findings(self, step: int, found: list[Finding], name: str) -> None:
        if self.log_dir is None or not found:
            return
        from keras_bettermodels.tensorboard import summary

        text = "\n\n".join(finding.to_markdown() for finding in found)
        summary.write_text(self.log_dir, step, f"{_TAG}/{name}", text)
