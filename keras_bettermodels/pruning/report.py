"""sparsity_report: how many weights of each prunable layer are zero."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_bettermodels import _validation
from keras_bettermodels._compat.layers import flatten_layers
from keras_bettermodels.pruning.masks import m_by_n_violations
from keras_bettermodels.pruning.prunable_layer import (
    PrunableLayer,
    prunable_weight_name,
)
from keras_bettermodels.pruning.structure import (
    M_BY_N_LAYERS,
    STRUCTURE_LAYERS,
    check_m_by_n,
    unit_axes,
)
from keras_bettermodels.pruning.wrapper import PruneLowMagnitude

__all__ = ["LayerSparsity", "SparsityReport", "sparsity_report"]


@dataclasses.dataclass(frozen=True)
class LayerSparsity:
    """The sparsity of one prunable weight.

    Attributes:
        layer: the layer's name (the wrapper's, for a pruned layer).
        weight: the pruned weight's attribute, `"kernel"` or `"embeddings"`,
            or its variable's name for a `PrunableLayer` (`"bias"`, say).
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
        m_by_n: the `(m, n)` pattern checked in this weight (the wrapper's
            `sparsity_m_by_n`, or `sparsity_report`'s `m_by_n`), or `None`.
        m_by_n_violations: how many groups of `n` consecutive weights along
            the input axis have more than `m` non-zero weights, or `None`
            when no pattern is checked.
        structure: the wrapper's `structure` (`"units"`, `"filters"`), or
            `None`.
        scope: the wrapper's `scope` (`"layer"`, `"global"`), or `None` for
            a layer that is not wrapped.
        units: how many output units (Dense, EinsumDense) or filters
            (Conv1D/2D/3D) the kernel has, or `None` for other weights.
        zero_units: how many of them are all zero (what `shrink` removes),
            or `None`.
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
    m_by_n: tuple[int, int] | None = None
    m_by_n_violations: int | None = None
    structure: str | None = None
    scope: str | None = None
    units: int | None = None
    zero_units: int | None = None

    @property
    def follows_m_by_n(self) -> bool | None:
        """Whether the weight follows its M-by-N pattern (`None`: none checked)."""
        if self.m_by_n_violations is None:
            return None
        return self.m_by_n_violations == 0

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

    @property
    def mask_sparsity(self) -> float | None:
        """The pruned fraction of all the wrapped weights' masks, or `None`.

        With `scope="global"` this is the sparsity the schedule sets; each
        layer's own differs.
        """
        wrapped = [e for e in self.layers if e.mask_sparsity is not None]
        size = sum(e.size for e in wrapped)
        if not size:
            return None
        return sum(e.size * (e.mask_sparsity or 0.0) for e in wrapped) / size

    @property
    def units(self) -> int:
        """How many output units and filters the Dense and convolution kernels have."""
        return sum(entry.units or 0 for entry in self.layers)

    @property
    def zero_units(self) -> int:
        """How many of them are all zero: what `shrink` removes."""
        return sum(entry.zero_units or 0 for entry in self.layers)

    def __getitem__(self, layer: str) -> LayerSparsity:
        for entry in self.layers:
            if entry.layer == layer:
                return entry
        raise KeyError(
            f"No prunable layer {layer!r} in this report. Layers: "
            f"{', '.join(entry.layer for entry in self.layers)}."
        )

    def __str__(self) -> str:
        patterns = any(entry.m_by_n is not None for entry in self.layers)
        units = any(
            entry.structure is not None or (entry.zero_units or 0) > 0
            for entry in self.layers
        )
        overall = any(entry.scope == "global" for entry in self.layers)
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
                *([_pattern_cell(entry)] if patterns else []),
                *([_units_cell(entry)] if units else []),
            )
            for entry in self.layers
        ]
        header: tuple[str, ...] = (
            "layer",
            "weight",
            "shape",
            "zeros",
            "mask",
            "scheduled",
            "step",
            *(["m:n"] if patterns else []),
            *(["zero units"] if units else []),
        )
        columns = len(header)
        total = (
            "total",
            "",
            str(self.size),
            f"{self.sparsity:.1%}",
            *(_overall_cells(self) if overall else ("", "")),
            "",
            *([""] if patterns else []),
            *([f"{self.zero_units}/{self.units}"] if units else []),
        )
        rows.append(total)
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(columns)]

        def line(row: tuple[str, ...]) -> str:
            return "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()

        rule = "-" * len(line(header))
        return "\n".join(
            [line(header), rule, *map(line, rows[:-1]), rule, line(rows[-1])]
        )


def _units_cell(entry: LayerSparsity) -> str:
    """`3/16` (units or filters all zero, of all), or `-`."""
    if entry.units is None:
        return "-"
    return f"{entry.zero_units}/{entry.units}"


def _overall_cells(report: SparsityReport) -> tuple[str, str]:
    """The mask and scheduled sparsity over all wrapped weights (scope="global")."""
    mask = report.mask_sparsity
    scheduled = {e.scheduled_sparsity for e in report.layers if e.pruned}
    return (
        "-" if mask is None else f"{mask:.1%}",
        f"{scheduled.pop():.1%}"
        if len(scheduled) == 1 and None not in scheduled
        else "-",
    )


def _pattern_cell(entry: LayerSparsity) -> str:
    """`2:4 ok`, `2:4 3 bad` (groups over m non-zeros) or `-`."""
    if entry.m_by_n is None:
        return "-"
    m, n = entry.m_by_n
    bad = entry.m_by_n_violations
    return f"{m}:{n} ok" if not bad else f"{m}:{n} {bad} bad"


def sparsity_report(
    model: keras.layers.Layer, m_by_n: tuple[int, int] | None = None
) -> SparsityReport:
    """Reports, per prunable weight, the fraction of it that is zero.

    Covers every Dense, Conv1D/2D/3D, DepthwiseConv2D and Embedding layer of
    the model, nested ones included, wrapped in `PruneLowMagnitude` or not, so
    it also checks a model after `strip_pruning`; and every weight a wrapped
    `PrunableLayer` prunes (one row each). For wrapped layers it adds the
    mask's sparsity, the pruning step and the sparsity the schedule asked for
    at the last step taken. Dense, EinsumDense and Conv1D/2D/3D kernels also
    count their output units (or filters) and how many are all zero, what
    `shrink` removes: a `zero units` column shows them once a layer is
    pruned with `structure=` or has such a unit. With `scope="global"`, the
    total row adds the mask's and the schedule's sparsity over all the wrapped
    layers, which each layer's own row does not show. Read it outside `fit`
    (on JAX the variables are synchronised at the end of each epoch).

    The M-by-N pattern is checked in every wrapper built with
    `sparsity_m_by_n`, and, given `m_by_n`, in every Dense and Conv1D/2D/3D
    kernel (a stripped model's, say): `LayerSparsity.m_by_n_violations` counts
    the groups with too many non-zero weights, and the table gains an
    `m:n` column.

    Args:
        model: a built Keras model or layer.
        m_by_n: `(m, n)` to check in every Dense and convolution kernel, such
            as `(2, 4)`. Defaults to `None`: only wrappers' own patterns.

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
    sparsity_report(strip_pruning(pruned), m_by_n=(2, 4)).layers[0].follows_m_by_n
    ```
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            _validation.invalid_type("model", "a Keras model or layer", model)
        )
    entries = []
    inner_layers = set()
    m_by_n = check_m_by_n(m_by_n)
    layers = flatten_layers(model)
    for layer in layers:
        if isinstance(layer, PruneLowMagnitude):
            inner_layers.add(id(layer.layer))
    for layer in layers:
        if id(layer) in inner_layers or not layer.built:
            continue
        if isinstance(layer, PruneLowMagnitude):
            step = int(ops.convert_to_numpy(layer.pruning_step))
            scheduled = layer.schedule.sparsity_at(step - 1) if step > 0 else None
            rows = list(
                zip(
                    layer.pruned_weight_names,
                    layer.pruned_weights,
                    layer.pruning_masks,
                    strict=True,
                )
            )
            if layer.structure is not None:
                rows = rows[:1]  # the kernel; the bias follows its units
            for weight_name, weight, mask in rows:
                entries.append(
                    _entry(
                        layer.name,
                        weight_name,
                        weight,
                        pruned=True,
                        mask_sparsity=float(np.mean(ops.convert_to_numpy(mask) == 0)),
                        step=step,
                        scheduled_sparsity=scheduled,
                        **_pattern(
                            weight, layer.sparsity_m_by_n or m_by_n, layer.layer
                        ),
                        structure=layer.structure,
                        scope=layer.scope,
                        **_units(weight, weight_name, layer.layer),
                    )
                )
            continue
        name = prunable_weight_name(layer)
        if name is None:
            continue
        weight = getattr(layer, name, None)
        if isinstance(weight, keras.Variable):
            entries.append(
                _entry(
                    layer.name,
                    name,
                    weight,
                    pruned=False,
                    **_pattern(weight, m_by_n, layer),
                    **_units(weight, name, layer),
                )
            )
    return SparsityReport(entries)


def _pattern(
    weight: keras.Variable, m_by_n: tuple[int, int] | None, layer: Any
) -> dict[str, Any]:
    """The M-by-N fields of a `LayerSparsity`: empty unless the pattern applies."""
    if (
        m_by_n is None
        or not isinstance(layer, (*M_BY_N_LAYERS, PrunableLayer))
        or len(weight.shape) < 2
        or int(weight.shape[-2]) % m_by_n[1]
    ):
        return {}
    return {
        "m_by_n": m_by_n,
        "m_by_n_violations": m_by_n_violations(weight, *m_by_n),
    }


def _units(weight: keras.Variable, name: str, layer: Any) -> dict[str, Any]:
    """The `units` and `zero_units` of a Dense or convolution kernel, else none."""
    if name != "kernel" or not isinstance(layer, tuple(_UNIT_LAYERS)):
        return {}
    values = np.asarray(ops.convert_to_numpy(weight))
    axes = unit_axes(layer, values.shape)
    units = np.moveaxis(values, axes, tuple(range(len(axes))))
    units = units.reshape(int(np.prod(units.shape[: len(axes)])), -1)
    return {
        "units": int(units.shape[0]),
        "zero_units": int(np.count_nonzero(~units.any(axis=1))),
    }


_UNIT_LAYERS = [cls for classes in STRUCTURE_LAYERS.values() for cls in classes]


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
