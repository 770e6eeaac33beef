"""The house rules of docs/architecture.md, checked on the package's source.

The page's table is the rule: which part may import which. Besides it: no
module over 600 lines, and no Keras or keras-tuner internals outside `_compat/`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "keras_bettermodels"
PAGE = REPO / "docs" / "architecture.md"
MAX_LINES = 600
EVERYTHING = "everything"

_ROW = re.compile(r"^\|\s*(base|work|adapters|apps)\s*\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def _rules() -> dict[str, set[str] | str]:
    """Part -> the parts it may import, read from the page's table."""
    rules: dict[str, set[str] | str] = {}
    for line in PAGE.read_text().splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        part = match.group(2).removesuffix("/").removesuffix(".py")
        allowed = match.group(3)
        assert part not in rules, f"{part} is listed twice in {PAGE.name}"
        if EVERYTHING in allowed:
            rules[part] = EVERYTHING
        else:
            rules[part] = set(re.findall(r"`([^`]+)`", allowed))
    return rules


def _part(path: Path) -> str:
    """The top-level part a source file belongs to: `timing`, `demo`, ..."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imported_parts(path: Path) -> set[str]:
    """The package's own top-level parts that a file imports."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "keras_bettermodels":
                names = [f"keras_bettermodels.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "keras_bettermodels" and len(pieces) > 1:
                parts.add(pieces[1])
    return parts


def _outside_compat(path: Path) -> bool:
    return "_compat" not in path.relative_to(PACKAGE).parts


def test_the_page_lists_every_part_of_the_package_once():
    on_disk = {
        _part(path)
        for path in PACKAGE.iterdir()
        if path.suffix == ".py" or (path / "__init__.py").exists()
    }
    assert set(_rules()) == on_disk


def test_no_part_imports_what_the_architecture_page_does_not_allow():
    rules = _rules()
    wrong = []
    for path in _modules():
        part = _part(path)
        allowed = rules[part]
        if allowed == EVERYTHING:
            continue
        for imported in _imported_parts(path) - {part} - set(allowed):
            wrong.append(f"{path.relative_to(REPO)} imports {imported}")
    assert not wrong, "imports the page does not allow:\n" + "\n".join(wrong)


def test_no_module_is_over_600_lines():
    long = {
        str(path.relative_to(REPO)): n
        for path in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long


def test_keras_internals_are_imported_in_compat_only():
    internal = re.compile(r"^(keras|keras_tuner|tf_keras)\.src(\.|$)")
    found = []
    for path in filter(_outside_compat, _modules()):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.Attribute) and node.attr == "src":
                names = [ast.unparse(node)]
            found += [
                f"{path.relative_to(REPO)}:{node.lineno}: {name}"
                for name in names
                if internal.match(name)
            ]
    assert not found


def _names_the_package_defines() -> set[str]:
    names = set()
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


def test_private_attributes_we_read_outside_compat_are_our_own():
    # A `_name` read outside `_compat/` that the package never defines can only
    # be somebody else's private attribute: Keras', keras-tuner's, a backend's.
    ours = _names_the_package_defines()
    found = []
    for path in filter(_outside_compat, _modules()):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in ours
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: .{node.attr}")
    assert not found


def _public_modules_outside_compat() -> list[str]:
    names = []
    for path in filter(_outside_compat, _modules()):
        relative = path.relative_to(REPO).with_suffix("")
        if relative.name in {"__main__", "demo"}:
            continue
        names.append(".".join(relative.parts).removesuffix(".__init__"))
    return names


@pytest.mark.any_backend
@pytest.mark.parametrize("module_name", _public_modules_outside_compat())
def test_no_class_overrides_a_private_hook_of_keras_or_keras_tuner(module_name):
    # Overriding `Tuner._configure_tensorboard_dir` is a touch of keras-tuner's
    # internals like any other: it belongs in `_compat/`.
    module = importlib.import_module(module_name)
    found = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module_name:
            continue
        for name in vars(cls):
            if not name.startswith("_") or name.startswith("__"):
                continue
            for base in cls.__mro__[1:]:
                root = base.__module__.split(".")[0]
                if root in {"keras", "keras_tuner", "tensorflow"} and name in vars(
                    base
                ):
                    found.append(
                        f"{cls.__name__}.{name} overrides {base.__qualname__}'s"
                    )
    assert not found
