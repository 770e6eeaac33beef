"""TrainingHealth: per-layer statistics on a sample batch, findings, loss spikes."""

from __future__ import annotations

import os
import threading
import warnings
from collections import deque
from typing import Any

import keras

from keras_bettermodels import _validation
from keras_bettermodels._compat.fit_data import fit_data
from keras_bettermodels._compat.io import print_msg
from keras_bettermodels._snapshot import Snapshot
from keras_bettermodels.health.findings import diagnose
from keras_bettermodels.health.probe import HealthProbe
from keras_bettermodels.health.report import (
    LOSS_SPIKE,
    Finding,
    HealthReport,
    LayerStats,
)
from keras_bettermodels.health.spikes import (
    DEFAULT_FACTOR,
    DEFAULT_WINDOW,
    BatchLosses,
    SpikeDetector,
)

__all__ = ["ON_SPIKE", "REPORT_TAG", "TrainingHealth"]

#: What `TrainingHealth` can do about a loss spike.
ON_SPIKE = ("warn", "restore", "stop")
#: The TensorBoard tag of the report (JSON, `HealthReport.to_dict()`).
REPORT_TAG = "training_health/report"


@_validation.suggest_keywords()
class TrainingHealth(keras.callbacks.Callback):
    """Watches each layer's signal during `fit`: gradients, activations, dead units.

    Every `every_n_steps` training steps (and after the first), on the sample
    batch `x`, `y` it measures for each layer with weights, in one program on
    the device and one small transfer to the host: the gradient norm, the
    update/weight ratio of the step just taken, the activations' largest and
    smallest non-zero |value|, the share of dead units (zero on every
    sample), and how much of the outputs and gradient lie below float16's
    smallest subnormal. The training step itself is not touched: the sample
    runs between two steps, on the model's current weights, in inference mode.
    The sample is `x`, `y` when given (a few dozen training rows are plenty);
    else the first batch of the data `fit` trains on (arrays, a
    `tf.data.Dataset`, a `PyDataset` or a PyTorch `DataLoader`; at most 256
    samples), the same batch at every sample. A generator cannot be read
    twice: with one and no `x`, only loss spikes are watched.

    Findings name the layer (see `keras_bettermodels.health.findings` for the
    thresholds and their sources), each once per `fit`:
    `float16-overflow` / `float16-underflow` (the first layer, in forward
    order, whose outputs or gradient leave float16's range under a float16
    policy, or would under `mixed_float16`), `dead-units`,
    `exploding-gradients`, `vanishing-gradients`. After every step it also
    reads the step's loss back from the running mean Keras logs:
    `loss-spike` is a finite loss above `spike_factor` times the mean of the
    last `spike_window` losses that also dwarfs the recent losses' spread
    (see `keras_bettermodels.health.spikes`), handled by `on_spike`:

    - `"warn"`: warn and train on.
    - `"restore"`: put back the weights and optimizer state of the last
      sampled step before the spike (or of the start of training) and train
      on: the spiking batch's update is undone. Keeps a copy of the state in
      device memory, refreshed at each sampled step once the losses up to it
      are read and spike-free.
    - `"stop"`: stop training.

    The callback is `async_safe`: on JAX and PyTorch, Keras hands it each
    step's loss on a worker thread, so the training loop never waits for a
    loss to reach the host and can dispatch the next steps meanwhile. A spike
    is then noticed at the first step that begins after its loss arrived,
    usually one or two steps later (on TensorFlow, or with a callback in the
    list that is not `async_safe`, right after the step): `"stop"` stops after
    the step running then, and `"restore"` also undoes the steps that ran in
    between (their losses are not checked). Samples, snapshots and restores
    run on the training thread, between two steps.

    Args:
        x: the sample batch's inputs (an array, or a list or dict of arrays),
            or `None` for the first batch of `fit`'s training data.
            Defaults to `None`.
        y: its targets. Defaults to `None`.
        sample_weight: its sample weights. Defaults to `None`.
        every_n_steps: sample every n training steps (step 0 included).
            Defaults to `100`.
        on_spike: `"warn"`, `"restore"` or `"stop"`. Defaults to `"warn"`.
        spike_factor: a loss above this multiple of the window's mean is a
            spike. Defaults to `3.0` (PyTorch Lightning's `SpikeDetection`).
        spike_window: the number of recent steps whose losses are averaged.
            Defaults to `10`.
        verbose: 0 is silent, 1 prints each finding. Defaults to `1`.
        log_dir: if set, the report (`report().to_dict()`) is written there
            at each epoch's end and at the end of training, for TensorBoard
            (tag `training_health/report`). Defaults to `None`.

    Attributes:
        findings: the findings of the last `fit`, in order.
        restored_step: after a restore, the step whose end-of-step state was
            put back (-1: the start of training); else `None`.
        stopped_step: the last step that ran before a spike stopped
            training (the spike's, or one or two later; see above), or
            `None`.

    Raises:
        TypeError: for an argument of the wrong type.
        ValueError: for an invalid argument.

    Example:

    ```python
    health = TrainingHealth(x_train[:64], y_train[:64], every_n_steps=100)
    model.fit(x_train, y_train, epochs=10, callbacks=[health])
    for finding in health.report().findings:
        print(finding)
    ```

    References:
        Paulius Micikevicius et al., "Mixed Precision Training", ICLR 2018.
        Xavier Glorot, Yoshua Bengio, "Understanding the difficulty of
        training deep feedforward neural networks", AISTATS 2010.
    """

    def __init__(
        self,
        x: Any = None,
        y: Any = None,
        *,
        sample_weight: Any = None,
        every_n_steps: int = 100,
        on_spike: str = "warn",
        spike_factor: float = DEFAULT_FACTOR,
        spike_window: int = DEFAULT_WINDOW,
        verbose: int = 1,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("x", x), ("y", y), ("sample_weight", sample_weight)):
            if value is not None and not _validation.holds_arrays(value):
                raise TypeError(
                    _validation.invalid_type(
                        name, "an array, or a list or dict of arrays", value
                    )
                )
        if x is None and (y is not None or sample_weight is not None):
            raise ValueError(
                _validation.invalid_value(
                    "x", "the sample's inputs when `y` or `sample_weight` is given", x
                )
            )
        self.x = x
        self.y = y
        self.sample_weight = sample_weight
        self.every_n_steps = _validation.check_int(
            "every_n_steps", every_n_steps, minimum=1
        )
        if on_spike not in ON_SPIKE:
            raise ValueError(
                _validation.invalid_value("on_spike", f"one of {ON_SPIKE}", on_spike)
            )
        self.on_spike = on_spike
        self.spike_factor = _validation.check_number(
            "spike_factor", spike_factor, strictly_positive=True
        )
        if self.spike_factor <= 1:
            raise ValueError(
                _validation.invalid_value(
                    "spike_factor", "a number above 1", spike_factor
                )
            )
        self.spike_window = _validation.check_int(
            "spike_window", spike_window, minimum=1
        )
        self.verbose = _validation.check_int("verbose", verbose)
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise TypeError(
                _validation.invalid_type("log_dir", "a path or None", log_dir)
            )
        self.log_dir = log_dir
        self._fitted: Any = None  # the model of the last fit
        self._reset()

    def __getstate__(self) -> dict[str, Any]:
        # Copies (keras-tuner deep-copies callbacks per trial) start afresh:
        # the program, the device tensors and the kept state belong to a fit.
        state = self.__dict__.copy()
        names = (
            "_program",
            "_data",
            "_sample_xy",
            "_before",
            "_good_state",
            "_candidate",
            "_fitted",
        )
        for name in names:
            state[name] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _reset(self) -> None:
        self.findings: list[Finding] = []
        self.restored_step: int | None = None
        self.stopped_step: int | None = None
        self._rows: list[LayerStats] = []
        self._losses: list[tuple[int, float]] = []
        self._seen: set[tuple[str, str | None]] = set()
        self._program: HealthProbe | None = None
        self._data: tuple[Any, ...] | None = None
        self._sample_xy: tuple[Any, Any, Any] | None = None
        self._before: list[Any] | None = None
        self._good_state: Snapshot | None = None
        self._good_step = -1
        self._candidate: tuple[int, Snapshot] | None = None
        self._lock = threading.Lock()
        self._thread: int | None = None
        self._arrived: dict[int, Any] = {}  # batch -> logged loss, from any thread
        self._begun: deque[int] = deque()  # batches begun, their loss not read yet
        self._epoch_start = 0
        self._steps_done = 0
        self._steps_begun = 0
        self._checked = -1  # the last step whose loss was checked
        self._resumed = -1  # the first step after the last restore or stop
        self._pending_sample: int | None = None
        self._pending_snapshot: int | None = None
        self._batch_losses = BatchLosses()
        self._spikes = SpikeDetector(self.spike_factor, self.spike_window)
        self._policy = "float32"

    # -- hooks ---------------------------------------------------------------
    # Keras runs an `async_safe` callback's batch-end hook on a thread pool
    # (JAX, PyTorch), where it turns the logs into Python floats: the training
    # thread never waits for a step's loss. That hook only files the loss;
    # everything else (reading the losses in order, spikes, samples,
    # snapshots, restores) happens on the training thread, at the first hook
    # after the step: its own batch end when Keras calls it there
    # (TensorFlow, or a callback in the list that is not `async_safe`), else
    # the next batch's beginning or the epoch's end.

    async_safe = True

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        probe, history = self._program, self._spikes.history
        self._reset()
        self._thread = threading.get_ident()
        if self._fitted is self.model:  # fitted again: its losses' tails are known
            self._spikes = SpikeDetector(self.spike_factor, self.spike_window, history)
        self._fitted = self.model
        if self.x is not None:
            self._sample_xy = (self.x, self.y, self.sample_weight)
        else:  # the first batch of what this `fit` trains on
            data = fit_data()
            self._sample_xy = None if data is None else data.first_batch()
        if (
            self._sample_xy is not None
            and probe is not None
            and probe.model is self.model
            and probe.matches()
        ):
            self._program = probe  # the same model: no new compilation
            self._data = probe.bind(*self._sample_xy)
        self._policy = self.model.dtype_policy.name
        if self._sample_xy is None and self.verbose > 0:
            print_msg(
                "TrainingHealth: no sample batch (`x`, `y`), and `fit`'s data "
                "cannot be read twice (a generator): watching loss spikes only, "
                "no per-layer statistics."
            )
        if self.on_spike == "restore" and self.model.built:
            self._good_state = Snapshot.take(self.model)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = self._steps_done
        self._batch_losses.reset()
        with self._lock:
            self._arrived.clear()
        self._begun.clear()

    def _due(self, step: int) -> bool:
        return self._sample_xy is not None and step % self.every_n_steps == 0

    def on_train_batch_begin(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        self._catch_up()
        step = self._epoch_start + batch
        self._begun.append(batch)
        self._steps_begun = step + 1
        if self._due(step) and self.model.built:
            self._before = self._ensure_probe().copy_weights()
            self._pending_sample = step
        if self.on_spike == "restore" and step % self.every_n_steps == 0:
            self._pending_snapshot = step

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        with self._lock:
            self._arrived[batch] = (logs or {}).get("loss")
            self._steps_done = max(self._steps_done, self._epoch_start + batch + 1)
        if threading.get_ident() == self._thread:
            self._catch_up()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._catch_up()  # Keras has waited for the batch-end hooks
        self._write(self._steps_done)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._catch_up()
        if self.stopped_step is not None:
            self.stopped_step = max(self.stopped_step, self._steps_done - 1)
        self._write(self._steps_done)

    # -- on the training thread ---------------------------------------------

    def _catch_up(self) -> None:
        """Reads the losses that arrived, in order; then the sample and snapshot."""
        for batch, logged in self._arrived_in_order():
            self._read_loss(self._epoch_start + batch, batch, logged)
        # Called after the pending step's training function returned; reading
        # `self.model` puts its result back in the variables (JAX keeps the
        # training state apart during `fit`). Its loss may still be on its way.
        if self._pending_sample is None and self._pending_snapshot is None:
            return
        self.model  # noqa: B018 (syncs the variables on JAX)
        if self._pending_sample is not None:
            self._sample(self._pending_sample)
            self._pending_sample = None
        if self._pending_snapshot is not None:
            self._keep_state(self._pending_snapshot)
            self._pending_snapshot = None

    def _arrived_in_order(self) -> list[tuple[int, Any]]:
        """The losses whose earlier steps' losses have all arrived.

        The log of the step begun at batch `b` ends at a batch `e` in
        [`b`, the next step's batch) (`steps_per_execution` > 1 logs once
        per execution).
        """
        ready = []
        with self._lock:
            while self._begun and self._arrived:
                first = min(self._arrived)
                if len(self._begun) > 1 and first >= self._begun[1]:
                    break  # the oldest step's loss has not arrived yet
                ready.append((first, self._arrived.pop(first)))
                self._begun.popleft()
        return ready

    def _read_loss(self, step: int, batch: int, logged: Any) -> None:
        loss = self._batch_losses.read(batch, logged)
        self._checked = step
        spiked = (
            loss is not None and step >= self._resumed and self._check_spike(step, loss)
        )
        self._confirm(step, spiked)
        if loss is not None and (spiked or self._due(step)):
            self._losses.append((step, loss))

    def _keep_state(self, step: int) -> None:
        """The state at the end of `step`, kept once no spike is found up to it."""
        if self._resumed > step:
            return  # a restore came after the step: its state was undone
        if self._checked >= step:
            self._good_state, self._good_step = Snapshot.take(self.model), step
        elif self._candidate is None:  # its loss is still on its way
            self._candidate = (step, Snapshot.take(self.model))

    def _confirm(self, checked: int, spiked: bool) -> None:
        """Promotes or drops the kept candidate as the losses up to it are read."""
        if self._candidate is None:
            return
        step, state = self._candidate
        if spiked and checked <= step:
            self._candidate = None
        elif checked >= step:
            self._good_state, self._good_step = state, step
            self._candidate = None

    # -- sampling ------------------------------------------------------------

    def _ensure_probe(self) -> HealthProbe:
        if self._program is None:
            self._program = HealthProbe(self.model)
            assert self._sample_xy is not None  # sampled only when there is one
            self._data = self._program.bind(*self._sample_xy)
        return self._program

    def _sample(self, step: int) -> None:
        probe = self._ensure_probe()
        assert self._data is not None  # set with the probe
        _, rows = probe.sample(step, self._data, self._before)
        self._before = None
        self._rows.extend(rows)
        for finding in diagnose(rows, self._policy):
            key = (finding.code, finding.layer)
            if key not in self._seen:
                self._seen.add(key)
                self._add(finding)

    def _check_spike(self, step: int, loss: float) -> bool:
        baseline = self._spikes.record(loss)
        if baseline is None:
            return False
        message = (
            f"The training loss jumped to {loss:.4g}, {loss / baseline:.3g}× the "
            f"mean of the last {self.spike_window} steps ({baseline:.4g})"
        )
        if step < self._steps_begun - 1:
            message += f" at step {step}, noticed at step {self._steps_begun - 1}"
        message += "."
        if self.on_spike == "restore":
            message += " " + self._restore()
        elif self.on_spike == "stop":
            self.model.stop_training = True
            self.stopped_step = step
            self._resumed = self._steps_begun
            message += " Stopped training."
        else:
            message += (
                " Look at that batch's data; lower the learning rate or clip "
                'gradients (`clipnorm`); `on_spike="restore"` undoes such steps.'
            )
        self._add(Finding(LOSS_SPIKE, None, step, message, loss))
        if self.on_spike == "warn":
            warnings.warn(f"TrainingHealth: {message}", RuntimeWarning, stacklevel=2)
        return True

    def _restore(self) -> str:
        if self._good_state is None:
            return "No earlier state was kept to restore; training goes on."
        try:
            self._good_state.restore(self.model)
        except ValueError:  # the model or its optimizer changed meanwhile
            return "The kept state no longer matches the model; training goes on."
        self.restored_step = self._good_step
        # The steps that ran since are undone too: their losses are not checked.
        self._resumed = self._steps_begun
        self._before = None
        source = (
            "the start of training"
            if self._good_step < 0
            else f"the end of step {self._good_step}"
        )
        return (
            f"Restored the weights and optimizer state from {source}; training goes on."
        )

    def _add(self, finding: Finding) -> None:
        self.findings.append(finding)
        if self.verbose > 0:
            print_msg(f"TrainingHealth: {finding}")

    # -- results -------------------------------------------------------------

    def report(self) -> HealthReport:
        """The statistics table and the findings of the last (or current) `fit`."""
        layers = (
            tuple(self._program.paths)
            if self._program is not None
            else tuple(dict.fromkeys(row.layer for row in self._rows))
        )
        return HealthReport(
            layers=layers,
            rows=tuple(self._rows),
            findings=tuple(self.findings),
            policy=self._policy,
            losses=tuple(self._losses),
        )

    def _write(self, step: int) -> None:
        if self.log_dir is None:
            return
        from keras_bettermodels.tensorboard import metadata, summary

        summary.write_json(
            self.log_dir,
            step,
            REPORT_TAG,
            self.report().to_dict(),
            plugin_name=metadata.TRAINING_HEALTH_PLUGIN,
        )
