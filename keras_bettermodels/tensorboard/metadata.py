"""Plugin names and content versions of the package's TensorBoard summaries.

Each custom summary carries `plugin_data.plugin_name` (so TensorBoard routes it
to our plugin) and, in `plugin_data.content`, a small JSON header with the
version of the payload's format, so a newer plugin can still read older logs.
Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import json
from typing import Any

from tensorboard.compat.proto import summary_pb2

from keras_bettermodels import _validation

__all__ = [
    "GRADIENT_CHECK_PLUGIN",
    "INPUT_TIMING_PLUGIN",
    "PROTOCOL_VERSION",
    "create_summary_metadata",
    "parse_plugin_content",
]

#: The Gradient check tab: one `GradientCheckReport.to_dict()` per summary.
GRADIENT_CHECK_PLUGIN = "bettermodels_gradient_check"
#: The Input timing tab: one `TimingReport` dict per summary.
INPUT_TIMING_PLUGIN = "bettermodels_input_timing"
#: Version of the JSON payload format; bump when a payload's fields change.
PROTOCOL_VERSION = 1
# The header is `{"version": N}`: anything much longer is not ours.
_MAX_HEADER_BYTES = 4096
# Messages quote at most this much of unreadable content.
_SHOWN_BYTES = 100


def create_summary_metadata(
    plugin_name: str, *, version: int = PROTOCOL_VERSION, description: str = ""
) -> summary_pb2.SummaryMetadata:
    """Returns metadata for a JSON payload that TensorBoard lists for `plugin_name`.

    `data_class=DATA_CLASS_TENSOR` is required: without it TensorBoard's data
    provider never lists the summary.

    Raises:
        ValueError: if `version` is not a positive integer.
    """
    if type(version) is not int or version < 1:
        raise ValueError(
            _validation.invalid_value("version", "a positive integer", version)
        )
    content = json.dumps({"version": version}).encode()
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
