"""docs/api.md documents each public class and function once, under one path."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.any_backend

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
# The packages whose `__all__` is the public surface the page must cover.
PUBLIC = (
    "callbacks",
    "criteria",
    "stopping",
    "gradient_check",
    "precision",
    "precision.loss_scale",
    "precision.hardware",
    "timing.report",
    "timing.analysis",
    "timing.pipeline",
    "timing.benchmark",
    "tuners",
    "layers",
    "pruning",
    "tensorboard.summary",
)

_ENTRY = re.compile(r"^::: (?P<path>[\w.]+)\s*$")
_MEMBERS = re.compile(r"^\s+members:\s*\[(?P<names>[^\]]*)\]\s*$")


def _entries() -> list[tuple[str, list[str] | None]]:
    """Each `::: path` of the page, with its `members:` list when it has one."""
    entries: list[tuple[str, list[str] | None]] = []
    for line in PAGE.read_text().splitlines():
        if entry := _ENTRY.match(line):
            entries.append((entry["path"], None))
        elif (members := _MEMBERS.match(line)) and entries:
            names = [name.strip() for name in members["names"].split(",")]
            entries[-1] = (entries[-1][0], names)
    return entries


def _resolve(path: str) -> Any:
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def _is_api(value: Any) -> bool:
    return inspect.isclass(value) or inspect.isfunction(value)


def _documented() -> dict[int, list[str]]:
    """id(object) -> the paths under which the page renders it."""
    where: dict[int, list[str]] = {}
    for path, members in _entries():
        target = _resolve(path)
        if inspect.ismodule(target):
            names = members if members is not None else list(target.__all__)
            unknown = set(names) - set(target.__all__)
            assert not unknown, f"{path} lists {sorted(unknown)}, not in its __all__"
            objects = {f"{path}.{name}": getattr(target, name) for name in names}
        else:
            objects = {path: target}
        for at, value in objects.items():
            if _is_api(value):
                where.setdefault(id(value), []).append(at)
    return where


def test_no_class_or_function_is_documented_twice():
    twice = [paths for paths in _documented().values() if len(paths) > 1]
    assert not twice


def test_every_public_class_and_function_is_documented():
    documented = _documented()
    missing = []
    for package in PUBLIC:
        module = importlib.import_module(f"keras_bettermodels.{package}")
        for name in module.__all__:
            value = getattr(module, name)
            if _is_api(value) and id(value) not in documented:
                missing.append(f"keras_bettermodels.{package}.{name}")
    assert not missing
