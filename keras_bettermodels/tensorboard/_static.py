"""The plugins' frontend files: which file a `/static/` path serves (private).

Each plugin serves the files directly in `static/` (shared by the plugins) and
those in its own folder there, of a known type only. A path that would leave
that folder (`..`, an absolute path, an empty segment, a backslash, a NUL, a
symbolic link out of the folder) serves nothing, which the routes answer with
a 404. Nothing here imports Keras, TensorFlow or a backend.
"""

from __future__ import annotations

import os

__all__ = ["CONTENT_TYPES", "STATIC_ROOT", "content_type", "static_file"]

#: The folder that holds the plugins' frontends.
STATIC_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

#: The file types served, by extension.
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


def static_file(relative: str, folder: str) -> str | None:
    """Returns the file that `/static/<relative>` serves, or `None` (a 404).

    Args:
        relative: the part of the URL path after `/static/`, decoded.
        folder: the plugin's own folder under `static/`.

    Returns:
        An absolute path to an existing file of a known type, in `static/` or
        in `static/<folder>/`, or `None`.
    """
    parts = relative.split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts):
        return None
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != folder):
        return None
    root = os.path.realpath(STATIC_ROOT)
    path = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
        return None
    if os.path.splitext(path)[1] not in CONTENT_TYPES:
        return None
    return path


def content_type(path: str) -> str:
    """The `Content-Type` of a file that `static_file` returned."""
    return CONTENT_TYPES[os.path.splitext(path)[1]]
