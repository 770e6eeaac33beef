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


def create_summary_metadata(
    plugin_name: str, *, version: int = PROTOCOL_VERSION, description: str = ""
) -> summary_pb2.SummaryMetadata:
    """Returns metadata for a JSON payload that TensorBoard lists for `plugin_name`.

    `data_class=DATA_CLASS_TENSOR` is required: without it TensorBoard's data
    provider never lists the summary.
    """
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

    Raises:
        ValueError: if the content is not our header or its version is newer
            than this package understands.
    """
    try:
        header = json.loads(content.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"Unreadable plugin content. Received: {content!r}") from error
    version = header.get("version") if isinstance(header, dict) else None
    if not isinstance(version, int) or version > PROTOCOL_VERSION:
        raise ValueError(
            f"Unsupported plugin content version. Expected an integer <= "
            f"{PROTOCOL_VERSION}. Received: version={version!r}. Upgrade "
            "keras-bettermodels to read these logs."
        )
    return header
