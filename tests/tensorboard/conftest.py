"""Fixtures shared by the plugins' test modules."""

from __future__ import annotations

import pytest

from tests.tensorboard import _reports


@pytest.fixture
def gradient_check_logs(tmp_path):
    """`(root, reports)`: `mlp` checked at steps 0, 5 and 10 (a kink at 5),
    `buggy` once, `scalars_only` with no report; `reports` are `mlp`'s."""
    root = tmp_path / "logs"
    return root, _reports.write_gradient_check_logs(root)
