"""sparsity_report: how many weights of each prunable layer are zero."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_bettermodels import _validation

__all__ = ["LayerSparsity", "SparsityReport", "sparsity_report"]


@dataclasses.dataclass(frozen=True)
class LayerSparsity:
    """The sparsity of one prunable weight.

    Attributes:
        layer: the layer's name (the wrapper's, for a pruned layer).
        weight: the pruned weight's attribute: `"kernel"` or `"embeddings"`.
        shape: the weight's shape.
        size: its number of entries.
        zeros: how many of them are exactly zero.
        pruned: whether the layer is wrapped in `PruneLowMagnitude`.
        mask_sparsity: the fraction of the mask that is zero, or `None` for
            a layer that is not wrapped.
        step: the wrapper's pruning step (training steps taken), or `None`.
        scheduled_sparsity: the sparsity the wrapper's schedule asked for at
            the last step taken (`step - 1`), or `None` before the first step
            or for a layer that is not wrapped. The mask follows it at the
            schedule's update steps only.
    """

    layer: str
    weight: str
    shape: tuple[int, ...]
    size: int
    zeros: int
    pruned: bool
    mask_sparsity: float | None = None
    step: int | None = None
    scheduled_sparsity: float | None = None

    @property
    def sparsity(self) -> float:
        """The fraction of the weight's entries that are exactly zero."""
        return self.zeros / self.size if self.size else 0.0


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """Per-layer sparsity of a model's prunable weights.

    Attributes:
        layers: one `LayerSparsity` per prunable weight, in layer order.
    """

    layers: list[LayerSparsity]

    @property
    def size(self) -> int:
        """The number of prunable weights in the model."""
        return sum(entry.size for entry in self.layers)

    @property
    def zeros(self) -> int:
        """How many of them are exactly zero."""
        return sum(entry.zeros for entry in self.layers)

    @property
    def sparsity(self) -> float:
        """The fraction of all prunable weights that are exactly zero."""
        return self.zeros / self.size if self.size else 0.0

    def __getitem__(self, layer: str) -> LayerSparsity:
        for entry in self.layers:
            if entry.layer == layer:
                return entry
        raise KeyError(
            f"No prunable layer {layer!r} in this report. Layers: "
            f"{', '.join(entry.layer for entry in self.layers)}."
        )

    def __str__(self) -> str:
        rows = [
            (
                entry.layer,
                entry.weight,
                "x".join(str(d) for d in entry.shape),
                f"{entry.sparsity:.1%}",
                "-" if entry.mask_sparsity is None else f"{entry.mask_sparsity:.1%}",
                "-"
                if entry.scheduled_sparsity is None
                else f"{entry.scheduled_sparsity:.1%}",
                "-" if entry.step is None else str(entry.step),
            )
            for entry in self.layers
        ]
        rows.append(("total", "", str(self.size), f"{self.sparsity:.1%}", "", "", ""))
        header = ("layer", "weight", "shape", "zeros", "mask", "scheduled", "step")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(7)]

        def line(row: tuple[str, ...]) -> str:
            return "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()

        rule = "-" * len(line(header))
        return "\n".join(
            [line(header), rule, *map(line, rows[:-1]), rule, line(rows[-1])]
        )


def sparsity_report(model: keras.layers.Layer) -> SparsityReport:
    """Reports, per prunable layer, the fraction of its pruned weight that is zero.

    Covers every Dense, Conv1D/2D/3D, DepthwiseConv2D and Embedding layer of
    the model, nested ones included, wrapped in `PruneLowMagnitude` or not, so
    it also checks a model after `strip_pruning`. For wrapped layers it adds the
    mask's sparsity, the pruning step and the sparsity the schedule asked for
    at the last step taken. Read it outside `fit` (on JAX the variables are synchronised
    at the end of each epoch).

    Args:
        model: a built Keras model or layer.

    Returns:
        A `SparsityReport`; `print` it for a table.

    Raises:
        TypeError: if `model` is not a Keras layer or model.

    Example:

    ```python
    from keras_bettermodels.pruning import sparsity_report

    report = sparsity_report(pruned)
    print(report)
    report.sparsity                         # over all prunable weights
    report["prune_low_magnitude_dense"].sparsity
    ```
    """
    from keras_bettermodels.layers.prune_low_magnitude import (
        PruneLowMagnitude,
        prunable_weight_name,
    )

    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            _validation.invalid_type("model", "a Keras model or layer", model)
        )
    entries = []
    inner_layers = set()
    layers = model._flatten_layers(include_self=True, recursive=True)
    for layer in layers:
        if isinstance(layer, PruneLowMagnitude):
            inner_layers.add(id(layer.layer))
    for layer in layers:
        if id(layer) in inner_layers or not layer.built:
            continue
        if isinstance(layer, PruneLowMagnitude):
            weight = layer.pruned_weight
            mask = ops.convert_to_numpy(layer.pruning_mask)
            step = int(ops.convert_to_numpy(layer.pruning_step))
            entries.append(
                _entry(
                    layer.name,
                    layer.weight_name,
                    weight,
                    pruned=True,
                    mask_sparsity=float(np.mean(mask == 0)),
                    step=step,
                    scheduled_sparsity=(
                        layer.schedule.sparsity_at(step - 1) if step > 0 else None
                    ),
                )
            )
            continue
        name = prunable_weight_name(layer)
        if name is None:
            continue
        weight = getattr(layer, name, None)
        if isinstance(weight, keras.Variable):
            entries.append(_entry(layer.name, name, weight, pruned=False))
    return SparsityReport(entries)


def _entry(
    layer: str, name: str, weight: keras.Variable, **fields: Any
) -> LayerSparsity:
    values = ops.convert_to_numpy(weight)
    return LayerSparsity(
        layer=layer,
        weight=name,
        shape=tuple(int(d) for d in values.shape),
        size=int(values.size),
        zeros=int(np.count_nonzero(values == 0)),
        **fields,
    )
