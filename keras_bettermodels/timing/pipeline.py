"""What a `tf.data` pipeline does: cached (memory or file), prefetched, and where.

`inspect_pipeline` walks the dataset's transformations from the output back to
the sources through `Dataset._inputs()`, the method every dataset implements
for TensorFlow's own graph rewrites (read, like every tf.data internal, through
`keras_bettermodels._compat.timing`), and classifies each one by its class name
(`CacheDataset`, `_MapDataset`, `_ParallelMapDataset`, `_ShuffleDataset`,
`_PrefetchDataset`, ...). Mapped functions are read from their traced graphs,
so a `map` that only restructures its input counts as trivial and one that
calls Python (`tf.py_function`, `tf.numpy_function`) is flagged.

Why not the serialized graph (`Dataset._as_serialized_graph()`)? Its op names
are the most stable names tf.data has, but it embeds every in-memory tensor:
a `from_tensor_slices` over MNIST-sized arrays serializes ~190 MB and takes
~1.6 s here, at every `fit`. The walk touches no data and takes milliseconds.
The tests check that the walk agrees with the serialized graph's ops, so a
TensorFlow release that renames its classes shows up there.

TensorFlow is imported inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from keras_bettermodels._compat import timing as _compat

_LOG = logging.getLogger(__name__)

__all__ = [
    "PipelineInfo",
    "file_cache_complete",
    "file_cache_files",
    "inspect_pipeline",
    "is_tf_dataset",
]

# Ops of a mapped function that do no work of their own.
_TRIVIAL_OPS = frozenset(
    {"Placeholder", "Identity", "IdentityN", "NoOp", "Const", "_Arg", "_Retval"}
)
_PYTHON_OPS = frozenset({"EagerPyFunc", "PyFunc", "PyFuncStateless"})
# Dataset wrappers that only change options or structure.
_PASS_THROUGH = frozenset({"options", "restructured", "assertcardinality"})
_KIND_ALIASES = {
    "parallelmap": "map",
    "paddedbatch": "batch",
    "parallelbatch": "batch",
    "mapandbatch": "map_and_batch",
    "tensorslice": "tensor_slices",
    "tensor": "tensors",
    "parallelinterleave": "interleave",
    "flatmap": "flat_map",
}


def is_tf_dataset(value: Any) -> bool:
    """Returns whether `value` is a `tf.data.Dataset`, without importing TensorFlow.

    TensorFlow is only consulted if it is already imported: nobody holds a
    dataset otherwise.
    """
    dataset_type = _compat.dataset_type()
    return dataset_type is not None and isinstance(value, dataset_type)


def _kind(dataset: Any) -> str:
    """`_ParallelMapDataset` -> `"map"`, `CacheDataset` -> `"cache"`."""
    name = type(dataset).__name__.lstrip("_")
    name = re.sub(r"Dataset(V\d+)?$", "", name).lower()
    return _KIND_ALIASES.get(name, name) or "dataset"


def _function_ops(dataset: Any) -> set[str] | None:
    """The op types of a mapped function, its nested functions included.

    `None` when there is no function, or when it cannot be read (it then
    counts as one that does work; logged at debug level).
    """
    try:
        graph_def = _compat.map_function_graph_def(dataset)
    except AttributeError as error:
        _LOG.debug("could not read the function of %s: %s", _kind(dataset), error)
        return None
    if graph_def is None:
        return None
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops


def _scalar(value: Any) -> Any:
    """A tensor's Python value; `None` for a symbolic one (logged at debug)."""
    if hasattr(value, "numpy"):  # an eager tensor
        value = value.numpy()
    elif hasattr(value, "dtype") and not hasattr(value, "item"):
        # A symbolic tensor (a pipeline built inside a `tf.function`) has no
        # value to read.
        _LOG.debug("no value to read in %s: left unknown", type(value).__name__)
        return None
    return value.item() if hasattr(value, "item") else value


@dataclasses.dataclass
class _Node:
    kind: str
    dataset: Any
    inputs: list[int]
    upstream: set[int] = dataclasses.field(default_factory=set)


def _walk(dataset: Any) -> tuple[dict[int, _Node], int]:
    """The transformations as nodes keyed by `id`, and the output's key."""
    nodes: dict[int, _Node] = {}
    stack = [dataset]
    while stack:
        current = stack.pop()
        if id(current) in nodes:
            continue
        try:
            inputs = _compat.dataset_inputs(current)
        except NotImplementedError:  # a class that does not list its inputs
            _LOG.debug("%s lists no inputs: taken as a source", _kind(current))
            inputs = []
        nodes[id(current)] = _Node(_kind(current), current, [id(i) for i in inputs])
        stack.extend(inputs)
    # Transitive inputs, sources first.
    done: set[int] = set()

    def visit(key: int) -> set[int]:
        node = nodes[key]
        if key not in done:
            done.add(key)
            for input_key in node.inputs:
                node.upstream |= {input_key, *visit(input_key)}
        return node.upstream

    for key in list(nodes):
        visit(key)
    return nodes, id(dataset)


def _main_chain(nodes: dict[int, _Node], output: int) -> Iterator[_Node]:
    key: int | None = output
    while key is not None:
        node = nodes[key]
        yield node
        key = node.inputs[0] if node.inputs else None


@dataclasses.dataclass(frozen=True)
class PipelineInfo:
    """The shape of a `tf.data` pipeline, as far as caching is concerned.

    "Before" and "after" refer to the cache nearest the output, the one whose
    contents later epochs read.

    Attributes:
        transformations: the main chain, source first, e.g.
            `("tensor_slices", "map", "cache", "shuffle", "batch", "prefetch")`
            (first inputs only; wrappers that only set options are left out).
        cached: whether any transformation is a `cache`.
        cache: `"memory"`, `"file"` or `None`.
        cache_path: the file cache's path prefix, or `None`.
        prefetched: whether the last transformation is `prefetch` (wrappers
            that only set options aside).
        maps: mapped functions that do work (not only restructure).
        maps_before_cache: such functions upstream of the cache.
        maps_after_cache: such functions downstream of the cache: they run
            every epoch.
        python_maps: mapped functions that call Python (`tf.py_function`,
            `tf.numpy_function`).
        python_map_after_cache: whether one of those runs after the cache.
        shuffle_before_cache: whether a `shuffle` feeds the cache (its order
            is then frozen after the first epoch).
        shuffle_after_cache: whether a `shuffle` follows the cache.
        take_after_cache: whether a `take` follows the cache (the cache is
            then never completed and is discarded).
        repeat_before_cache: whether an endless `repeat()` feeds the cache.
        batch_size: the static batch size (the element spec's, else the last
            `batch`'s), or `None`.
        cardinality: batches per pass, or `None` when unknown or infinite.
        infinite: whether the dataset never ends (`repeat()`).
    """

    transformations: tuple[str, ...]
    cached: bool
    cache: str | None
    cache_path: str | None
    prefetched: bool
    maps: int
    maps_before_cache: int
    maps_after_cache: int
    python_maps: int
    python_map_after_cache: bool
    shuffle_before_cache: bool
    shuffle_after_cache: bool
    take_after_cache: bool
    repeat_before_cache: bool
    batch_size: int | None
    cardinality: int | None
    infinite: bool

    @property
    def cache_position(self) -> str:
        """Where the cache sits relative to `map` and `shuffle`, in words."""
        if not self.cached:
            return ""
        parts = []
        if self.maps_before_cache:
            parts.append("after map")
        if self.maps_after_cache:
            parts.append("before map")
        if self.shuffle_before_cache:
            parts.append("after shuffle")
        if self.shuffle_after_cache:
            parts.append("before shuffle")
        return ", ".join(parts)

    def describe(self) -> str:
        """The main chain as `"tensor_slices -> map -> cache(memory) -> ..."`."""
        return " -> ".join(
            f"cache({self.cache})" if kind == "cache" else kind
            for kind in self.transformations
        )

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a JSON-serializable dict."""
        data = dataclasses.asdict(self)
        data["transformations"] = list(self.transformations)
        data["cache_position"] = self.cache_position
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineInfo:
        """Rebuilds a `PipelineInfo` from `to_dict()`'s output."""
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        values["transformations"] = tuple(values.get("transformations", ()))
        return cls(**values)


def _static_batch_size(dataset: Any, chain: list[_Node]) -> int | None:
    """The element spec's batch dimension, else the last `batch`'s size."""
    import tensorflow as tf

    batch = next((node for node in chain if node.kind == "batch"), None)
    if batch is None:  # unbatched elements: no batch size to speak of
        return None
    for spec in tf.nest.flatten(dataset.element_spec)[:1]:
        shape = getattr(spec, "shape", None)
        if shape is not None and shape.rank and shape[0] is not None:
            return int(shape[0])
    value = _scalar(_compat.batch_size_argument(batch.dataset))
    return int(value) if isinstance(value, int) and value > 0 else None


def inspect_pipeline(dataset: Any) -> PipelineInfo:
    """Tells whether a `tf.data` pipeline is cached, prefetched, and where.

    Args:
        dataset: a `tf.data.Dataset`.

    Returns:
        A `PipelineInfo`.

    Raises:
        TypeError: if `dataset` is not a `tf.data.Dataset`.

    Example:

    ```python
    info = inspect_pipeline(
        tf.data.Dataset.range(100).map(parse).cache().shuffle(100).batch(32)
    )
    info.cache, info.cache_position, info.prefetched
    # ('memory', 'after map, before shuffle', False)
    ```
    """
    from keras_bettermodels import _validation

    if not is_tf_dataset(dataset):
        raise TypeError(
            _validation.invalid_type("dataset", "a `tf.data.Dataset`", dataset)
        )
    import tensorflow as tf

    nodes, output = _walk(dataset)
    chain = [
        node for node in _main_chain(nodes, output) if node.kind not in _PASS_THROUGH
    ]
    # The cache nearest the output, breadth first.
    cache_key = None
    frontier, seen = [output], set()
    while frontier and cache_key is None:
        key = frontier.pop(0)
        if key in seen:
            continue
        seen.add(key)
        if nodes[key].kind == "cache":
            cache_key = key
        frontier.extend(nodes[key].inputs)

    def is_after(key: int) -> bool:
        return cache_key is not None and cache_key in nodes[key].upstream

    def is_before(key: int) -> bool:
        return cache_key is not None and key in nodes[cache_key].upstream

    map_ops = {
        key: _function_ops(node.dataset)
        for key, node in nodes.items()
        if node.kind in ("map", "map_and_batch")
    }
    working_maps = [
        key for key, ops in map_ops.items() if ops is None or ops - _TRIVIAL_OPS
    ]
    python_maps = [key for key, ops in map_ops.items() if ops and ops & _PYTHON_OPS]

    cache_path = None
    cache = None
    if cache_key is not None:
        filename = _scalar(_compat.cache_filename_argument(nodes[cache_key].dataset))
        filename = filename.decode() if isinstance(filename, bytes) else filename
        cache = "file" if filename else "memory"
        cache_path = filename or None

    def count(kind: str, where: Any) -> int:
        return sum(1 for key, node in nodes.items() if node.kind == kind and where(key))

    def endless_repeat(key: int) -> bool:
        node = nodes[key]
        return (
            node.kind == "repeat"
            and _scalar(_compat.repeat_count_argument(node.dataset)) == -1
        )

    cardinality = int(dataset.cardinality())
    return PipelineInfo(
        transformations=tuple(node.kind for node in reversed(chain)),
        cached=cache_key is not None,
        cache=cache,
        cache_path=cache_path,
        prefetched=bool(chain) and chain[0].kind == "prefetch",
        maps=len(working_maps),
        maps_before_cache=sum(1 for key in working_maps if is_before(key)),
        maps_after_cache=sum(1 for key in working_maps if is_after(key)),
        python_maps=len(python_maps),
        python_map_after_cache=any(is_after(key) for key in python_maps),
        shuffle_before_cache=count("shuffle", is_before) > 0,
        shuffle_after_cache=count("shuffle", is_after) > 0,
        take_after_cache=count("take", is_after) > 0,
        repeat_before_cache=any(
            is_before(key) and endless_repeat(key) for key in nodes
        ),
        batch_size=_static_batch_size(dataset, chain),
        cardinality=cardinality if cardinality >= 0 else None,
        infinite=cardinality == int(tf.data.INFINITE_CARDINALITY),
    )


def file_cache_files(path: str | os.PathLike[str]) -> list[str]:
    """Returns the files that `Dataset.cache(path)` writes, as they are now.

    TensorFlow writes `<path>.index` and `<path>.data-00000-of-00001` when the
    cache is complete, and `<path>_<shard>.lockfile` plus temporary data files
    while it fills it.

    Args:
        path: the cache's path prefix, as given to `cache()`.

    Returns:
        The paths, sorted.
    """
    prefix = os.fspath(path)
    found: set[str] = set()
    for pattern in (".index", ".data-*", "_*.lockfile", "_*.data-*"):
        found.update(glob.glob(glob.escape(prefix) + pattern))
    return sorted(found)


def file_cache_complete(path: str | os.PathLike[str]) -> bool:
    """Returns whether a complete file cache exists at `path` (its index does).

    Args:
        path: the cache's path prefix, as given to `cache()`.

    Returns:
        `True` if `<path>.index` exists.
    """
    return os.path.exists(os.fspath(path) + ".index")
