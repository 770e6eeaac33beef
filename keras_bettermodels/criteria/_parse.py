"""`get`: a criterion from itself or from the string that names it."""

from __future__ import annotations

import ast
import re
from typing import Any

from keras_bettermodels import _validation
from keras_bettermodels.criteria._base import Criterion
from keras_bettermodels.criteria._patience import Patience
from keras_bettermodels.criteria._prechelt import GL, PQ, UP
from keras_bettermodels.criteria._time import TimeLimit

# Prechelt's shorthand, "GL5" or "PQ0.5", rewritten to a call before parsing.
_SHORTHAND = re.compile(r"\b(GL|PQ|UP)(\d+(?:\.\d*)?|\.\d+)(?![\w.])", re.IGNORECASE)
_CONSTRUCTORS: dict[str, type[Criterion]] = {
    "GL": GL,
    "PQ": PQ,
    "UP": UP,
    "PATIENCE": Patience,
    "TIMELIMIT": TimeLimit,
}
_EXPECTED = (
    'a Criterion, or a string naming one as it prints itself ("GL(5)", '
    '"UP(3) | GL(2)", "PQ(0.5, strip_length=3)") or in Prechelt\'s shorthand '
    '("GL5", "PQ0.5", "UP3")'
)
_MAX_TEXT = 1000


class _NotACriterion(Exception):
    """A string that does not name a criterion."""


def _number(node: ast.expr) -> float | int:
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise _NotACriterion


def _keyword(node: ast.expr) -> float | int | str:
    """A keyword's value: a number, or a string (`min_delta_mode="rel"`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return _number(node)


def _build(node: ast.expr) -> Criterion:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr | ast.BitAnd):
        left, right = _build(node.left), _build(node.right)
        return left | right if isinstance(node.op, ast.BitOr) else left & right
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.upper() in _CONSTRUCTORS
    ):
        args = [_number(arg) for arg in node.args]
        kwargs = {k.arg: _keyword(k.value) for k in node.keywords if k.arg}
        if len(kwargs) != len(node.keywords):
            raise _NotACriterion
        constructor: Any = _CONSTRUCTORS[node.func.id.upper()]
        return constructor(*args, **kwargs)
    raise _NotACriterion


def _parse(text: str) -> Criterion:
    if len(text) > _MAX_TEXT:
        raise _NotACriterion
    try:
        tree = ast.parse(_SHORTHAND.sub(r"\1(\2)", text.strip()), mode="eval")
    except SyntaxError as error:
        raise _NotACriterion from error
    return _build(tree.body)


def get(identifier: Criterion | str) -> Criterion:
    """Returns a criterion from itself or from a string that names it.

    Args:
        identifier: a `Criterion`, or a string: a criterion as it prints itself
            (`"GL(5)"`, `"PQ(0.5, strip_length=3)"`, `"Patience(3)"`,
            `"TimeLimit(3600)"`, and
            combinations such as `"UP(3) | GL(2)"` or `"GL(2) & UP(2)"`), or
            Prechelt's shorthand (`"GL5"`, `"PQ0.5"`, `"UP3"`). Names are
            case-insensitive; nothing in the string is executed.

    Returns:
        The criterion: `get(repr(c)) == c` for every criterion `c`.

    Raises:
        ValueError: for a string that names no criterion, or one whose numbers
            the criterion refuses (`"GL(0)"`, `"UP1.5"`).
        TypeError: for anything else.
    """
    if isinstance(identifier, Criterion):
        return identifier
    if isinstance(identifier, str):
        try:
            return _parse(identifier)
        except _NotACriterion:
            fix = None
        except (TypeError, ValueError) as error:
            fix = f"The criterion refused it: {error}"
        raise ValueError(
            _validation.invalid_value("criterion", _EXPECTED, identifier, fix)
        ) from None
    raise TypeError(_validation.invalid_type("criterion", _EXPECTED, identifier))
