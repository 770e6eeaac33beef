"""Plugin names and content versions of the package's TensorBoard summaries.

Each custom summary carries `plugin_data.plugin_name` (so TensorBoard routes it
to our plugin) and, in `plugin_data.content`, a small JSON header with the
version of the payload's format, so a newer plugin can still read older logs.

Beside each report, in the same event, goes its *headline*: a small JSON
document (`report_headline`) with the report's size and its top-level scalar
fields, under the tag `headline_tag(tag)` and the same plugin name, its header
naming the report's tag (`"headline_of"`). The plugins' listings read the
headlines, so that listing runs costs the same whatever the reports weigh.
Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tensorboard.compat.proto import summary_pb2

from keras_bettermodels import _validation

__all__ = [
    "GRADIENT_CHECK_PLUGIN",
    "HEADLINE_CHARS",
    "HEADLINE_MAX_FIELDS",
    "INPUT_TIMING_PLUGIN",
    "PROTOCOL_VERSION",
    "TRAINING_HEALTH_PLUGIN",
    "create_summary_metadata",
    "headline_of",
    "headline_tag",
    "parse_headline",
    "parse_plugin_content",
    "report_headline",
]

#: The Gradient check tab: one `GradientCheckReport.to_dict()` per summary.
GRADIENT_CHECK_PLUGIN = "bettermodels_gradient_check"
#: The Input timing tab: one `TimingReport` dict per summary.
INPUT_TIMING_PLUGIN = "bettermodels_input_timing"
#: The Training health tab: one `HealthReport.to_dict()` per summary.
TRAINING_HEALTH_PLUGIN = "bettermodels_training_health"
#: Version of the JSON payload format; bump when a payload's fields change.
PROTOCOL_VERSION = 1
# The header is `{"version": N}`: anything much longer is not ours.
_MAX_HEADER_BYTES = 4096
# Messages quote at most this much of unreadable content.
_SHOWN_BYTES = 100
#: Strings among a headline's fields are cut to this many characters.
HEADLINE_CHARS = 200
#: A headline holds at most this many fields (`complete` says if it is short).
HEADLINE_MAX_FIELDS = 64


def create_summary_metadata(
    plugin_name: str,
    *,
    version: int = PROTOCOL_VERSION,
    description: str = "",
    headline_of: str | None = None,
) -> summary_pb2.SummaryMetadata:
    """Returns metadata for a JSON payload that TensorBoard lists for `plugin_name`.

    `data_class=DATA_CLASS_TENSOR` is required: without it TensorBoard's data
    provider never lists the summary.

    Args:
        plugin_name: the plugin that renders the payload.
        version: the payload format's version. Defaults to `PROTOCOL_VERSION`.
        description: the summary's description. Defaults to `""`.
        headline_of: for a headline (`report_headline`), the tag of the report
            it summarizes; `None` for a report. Defaults to `None`.

    Raises:
        ValueError: if `version` is not a positive integer.
    """
    if type(version) is not int or version < 1:
        raise ValueError(
            _validation.invalid_value("version", "a positive integer", version)
        )
    header: dict[str, Any] = {"version": version}
    if headline_of is not None:
        header["headline_of"] = headline_of
    content = json.dumps(header).encode()
    return summary_pb2.SummaryMetadata(
        summary_description=description,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=plugin_name, content=content
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def parse_plugin_content(content: bytes) -> dict[str, Any]:
    """Returns the JSON header of a summary's `plugin_data.content`.

    The header is a JSON object whose `version` is a positive integer (not a
    boolean, not a string) no newer than `PROTOCOL_VERSION`.

    Raises:
        ValueError: if the content is not our header, its version is not a
            positive integer, or it is newer than this package understands.
    """
    shown = content[:_SHOWN_BYTES] + (b"..." if len(content) > _SHOWN_BYTES else b"")
    if len(content) > _MAX_HEADER_BYTES:
        raise ValueError(
            f"Unreadable plugin content: {len(content)} bytes, where a header "
            f"of at most {_MAX_HEADER_BYTES} bytes is expected. Received: {shown!r}"
        )
    try:
        header = json.loads(content.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"Unreadable plugin content. Received: {shown!r}") from error
    version = header.get("version") if isinstance(header, dict) else None
    if type(version) is not int or version < 1:
        raise ValueError(
            f"Invalid plugin content version. Expected a positive integer. "
            f"Received: version={version!r}"
        )
    if version > PROTOCOL_VERSION:
        raise ValueError(
            f"Unsupported plugin content version. Expected an integer <= "
            f"{PROTOCOL_VERSION}. Received: version={version!r}. Upgrade "
            "keras-bettermodels to read these logs."
        )
    return header


def headline_of(content: bytes) -> str | None:
    """The report's tag, if `content` is a headline's header; else `None`.

    Reads the header without checking its version, so that a headline written
    by a newer version is still told apart from a report.
    """
    if len(content) > _MAX_HEADER_BYTES:
        return None
    try:
        header = json.loads(content.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    tag = header.get("headline_of") if isinstance(header, dict) else None
    return tag if isinstance(tag, str) else None


def headline_tag(tag: str) -> str:
    """The tag of the headline of the report written under `tag`."""
    return f"{tag}/headline"


def report_headline(document: Mapping[str, Any], size: int) -> dict[str, Any]:
    """The headline written beside a report: its size and top-level scalars.

    Args:
        document: the report.
        size: the report's size, in bytes of JSON.

    Returns:
        `{"bytes": size, "fields": {...}, "complete": bool}`: `fields` holds
        the report's top-level fields whose values are numbers, strings (cut
        to `HEADLINE_CHARS` characters), booleans or null, at most
        `HEADLINE_MAX_FIELDS` of them; `complete` is `False` when some were
        left out for that limit.
    """
    fields: dict[str, Any] = {}
    complete = True
    for name, value in document.items():
        if isinstance(value, str):
            value = value[:HEADLINE_CHARS]
        elif not (value is None or isinstance(value, bool | int | float)):
            continue
        if len(fields) == HEADLINE_MAX_FIELDS:
            complete = False
            break
        fields[str(name)] = value
    return {"bytes": int(size), "fields": fields, "complete": complete}


def parse_headline(document: Any) -> tuple[int, dict[str, Any], bool]:
    """Returns `(bytes, fields, complete)` of a `report_headline` document.

    Raises:
        ValueError: if `document` is not a headline.
    """
    if not isinstance(document, dict):
        raise ValueError(f"A headline is a JSON object. Received: {document!r}")
    size, fields = document.get("bytes"), document.get("fields")
    complete = document.get("complete")
    if type(size) is not int or size < 0:
        raise ValueError(f"Invalid headline `bytes`. Received: bytes={size!r}")
    if not isinstance(fields, dict) or not all(
        value is None or isinstance(value, str | bool | int | float)
        for value in fields.values()
    ):
        raise ValueError("Invalid headline `fields`: expected an object of scalars.")
    if not isinstance(complete, bool):
        raise ValueError(
            f"Invalid headline `complete`. Received: complete={complete!r}"
        )
    return size, fields, complete
