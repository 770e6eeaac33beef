"""Reading one stored report: from its tensor to a JSON object, within limits (private).

`summary.write_json` stores each report as a string tensor holding a JSON
document, with a small headline beside it (`metadata.report_headline`). A
report that cannot be read — not a string, not UTF-8, not JSON, not an object,
larger than `MAX_REPORT_BYTES`, nested deeper than `MAX_REPORT_DEPTH` — raises
`Unreadable`, whose message the tab shows in place of the report.

Nothing here imports Keras, TensorFlow or a backend: TensorBoard imports the
plugins when it starts.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from tensorboard.data import provider

from keras_bettermodels.tensorboard import metadata

__all__ = [
    "MAX_REPORT_BYTES",
    "MAX_REPORT_DEPTH",
    "Unreadable",
    "decode",
    "headline",
    "payload",
    "read_headline",
    "too_large",
]

#: The largest report, in bytes of JSON, that the plugins decode and serve.
#: The package's reports weigh kilobytes (a 200-variable gradient check is
#: about 30 kB); a larger one is listed with an error instead.
MAX_REPORT_BYTES = 8 * 2**20
#: The deepest nesting of JSON arrays and objects a report may have. The
#: package's reports are 4 levels deep; a deeper one is listed with an error
#: (JSON nested ~1000 deep makes Python's decoder raise `RecursionError`).
MAX_REPORT_DEPTH = 64
# A headline (`metadata.report_headline`) is a few hundred bytes; anything
# much larger, or nested at all deeper, is not one.
_MAX_HEADLINE_BYTES = 64 * 2**10
_MAX_HEADLINE_DEPTH = 2


class Unreadable(ValueError):
    """A report that the plugin does not decode; the message says why."""


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _depth_over(document: Any, limit: int) -> bool:
    """Whether `document` nests arrays and objects deeper than `limit`.

    Walks the document with a stack of its own, not by recursion, so that any
    depth that the decoder accepted is measured.
    """
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def payload(datum: provider.TensorDatum) -> bytes:
    """Returns the bytes `write_json` stored in one tensor datum."""
    values = np.asarray(datum.numpy, dtype=object).reshape(-1)
    if not values.size:
        raise Unreadable("The tensor holds no JSON document (no string).")
    raw = values[0]
    if isinstance(raw, str):
        return raw.encode()
    if not isinstance(raw, bytes):
        raise Unreadable(
            f"Expected a string tensor holding a JSON document. Received a "
            f"tensor of {np.asarray(datum.numpy).dtype}."
        )
    return raw


def too_large(size: int, max_bytes: int) -> str:
    """Why a report of `size` bytes of JSON is not shown, and what to do."""
    return (
        f"It is {_megabytes(size)} of JSON, over the plugins' limit of "
        f"{_megabytes(max_bytes)} for one report, so it is not shown. Write "
        "smaller reports (fewer variables or epochs per report)."
    )


def decode(raw: bytes, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """Returns the JSON object in `raw`, or raises `Unreadable` saying why."""
    if len(raw) > max_bytes:
        raise Unreadable(too_large(len(raw), max_bytes))
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise Unreadable(f"It is not UTF-8 text: {error}.") from None
    except json.JSONDecodeError as error:
        raise Unreadable(f"It is not JSON: {error}.") from None
    except RecursionError:
        raise Unreadable(
            f"Its JSON is nested too deeply to decode (the limit is "
            f"{max_depth} levels)."
        ) from None
    if not isinstance(document, dict):
        raise Unreadable(
            f"Expected a JSON object. Received a JSON {type(document).__name__}."
        )
    if _depth_over(document, max_depth):
        raise Unreadable(
            f"Its JSON is nested deeper than the limit of {max_depth} levels."
        )
    return document


def headline(document: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields of `document` named in `fields` whose values are scalars
    (strings cut as in `metadata.report_headline`)."""
    found: dict[str, Any] = {}
    for name in fields:
        value = document.get(name)
        if isinstance(value, str):
            found[name] = value[: metadata.HEADLINE_CHARS]
        elif value is None or isinstance(value, bool | int | float):
            found[name] = value
    return found


def read_headline(datum: provider.TensorDatum) -> tuple[int, dict[str, Any], bool]:
    """`(bytes, fields, complete)` of a headline datum; `ValueError` if it is none."""
    try:
        document = decode(payload(datum), _MAX_HEADLINE_BYTES, _MAX_HEADLINE_DEPTH)
    except Unreadable as error:
        raise ValueError(str(error)) from None
    return metadata.parse_headline(document)
