"""The frontend's files (`_static`): only the plugin's own, never a path out.

A path that leaves `static/` or goes into the other plugin's folder is a 404
through the route and `None` from `static_path`.
"""

from __future__ import annotations

import os

import pytest

from keras_bettermodels.tensorboard.gradient_check_plugin import GradientCheckPlugin
from tests.tensorboard._app import serve

pytestmark = pytest.mark.backend_independent


@pytest.mark.parametrize(
    "path",
    [
        "static/../_plugin_base.py",
        "static/%2e%2e/_plugin_base.py",
        "static/..%2f..%2ftensorboard%2fmetadata.py",
        "static/gradient_check/../../summary.py",
        "static//etc/passwd",
        "static/%2Fetc%2Fpasswd",
        "static/..\\_plugin_base.py",
        "static/common.js%00.py",
        "static/input_timing/index.js",  # the other plugin's folder
        "static/gradient_check",  # a folder
        "static/",
        "static/nope.js",
    ],
)
def test_static_routes_refuse_path_traversal_with_a_404(tmp_path, path):
    served = serve(tmp_path, GradientCheckPlugin)
    response = served.client.get(served.url(path))
    assert response.status_code == 404
    assert b"import" not in response.get_data()  # no source file came back


def test_static_path_resolves_only_inside_the_static_folder(tmp_path):
    plugin = serve(tmp_path, GradientCheckPlugin).plugin
    assert plugin.static_path("common.js").endswith(os.path.join("static", "common.js"))
    for relative in ["../metadata.py", "/etc/passwd", "gradient_check/../../x.py", ""]:
        assert plugin.static_path(relative) is None
