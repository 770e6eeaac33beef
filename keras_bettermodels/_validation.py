"""Argument checks, worded the way Keras words them.

Every error the package raises about a bad argument is built here, so that the
wording stays the same everywhere:

    Invalid value for argument `patience`. Expected a non-negative integer.
    Received: patience=-1
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def invalid_value(name: str, expected: str, value: Any, fix: str | None = None) -> str:
    """Returns the message for an argument whose value is not allowed."""
    message = (
        f"Invalid value for argument `{name}`. Expected {expected}. "
        f"Received: {name}={value!r}"
    )
    return f"{message}. {fix}" if fix else message


def short_repr(value: Any) -> str:
    """`repr(value)`, but an array reads `ndarray(shape=(1797, 64), dtype=float32)`.

    Arrays inside a tuple, list or dict (`(x, y)`, `{"image": x}`) read so too.
    """
    if isinstance(value, tuple | list) and any(map(is_array, value)):
        items = ", ".join(short_repr(item) for item in value)
        return (
            f"({items}{',' * (len(value) == 1)})"
            if isinstance(value, tuple)
            else f"[{items}]"
        )
    if isinstance(value, dict) and any(map(is_array, value.values())):
        return (
            "{" + ", ".join(f"{k!r}: {short_repr(v)}" for k, v in value.items()) + "}"
        )
    if not is_array(value):
        return repr(value)
    try:
        dims = tuple(value.shape)
    except TypeError:  # a shape that does not iterate: show it as it is
        dims = value.shape
    return f"{type(value).__name__}(shape={dims}, dtype={value.dtype})"


def is_array(value: Any) -> bool:
    """Whether `value` has a shape and a dtype (a NumPy array or a tensor)."""
    return (
        getattr(value, "shape", None) is not None
        and getattr(value, "dtype", None) is not None
        and not isinstance(value, numbers.Number | str)
    )


def holds_arrays(value: Any) -> bool:
    """An array, or a tuple, list or dict of arrays (what `fit` takes as `x`)."""
    if isinstance(value, tuple | list):
        return bool(value) and all(map(holds_arrays, value))
    if isinstance(value, dict):
        return bool(value) and all(map(holds_arrays, value.values()))
    return is_array(value)


def invalid_type(name: str, expected: str, value: Any, fix: str | None = None) -> str:
    """Returns the message for an argument of the wrong type.

    Arrays are shown by shape and dtype (`short_repr`), never printed whole.
    """
    message = (
        f"Invalid type for argument `{name}`. Expected {expected}. "
        f"Received: {name}={short_repr(value)} of type {type(value).__name__}"
    )
    return f"{message}. {fix}" if fix else message


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_number(name: str, value: Any, *, strictly_positive: bool = False) -> float:
    """Checks that `value` is a finite real number (positive, if asked)."""
    if not _is_real(value):
        raise TypeError(invalid_type(name, "a number", value))
    if not math.isfinite(value):
        raise ValueError(invalid_value(name, "a finite number", value))
    if strictly_positive and value <= 0:
        raise ValueError(invalid_value(name, "a positive number", value))
    return float(value)


def check_optional_number(name: str, value: Any) -> float | None:
    """Checks that `value` is `None` or a finite real number."""
    return None if value is None else check_number(name, value)


def check_int(name: str, value: Any, *, minimum: int = 0) -> int:
    """Checks that `value` is an integer >= `minimum` (booleans are refused)."""
    expected = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )
    if not _is_int(value):
        raise TypeError(invalid_type(name, expected, value))
    if value < minimum:
        raise ValueError(invalid_value(name, expected, value))
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """Checks that `value` is a bool."""
    if not isinstance(value, bool):
        raise TypeError(invalid_type(name, "a boolean (True or False)", value))
    return value


def check_str(name: str, value: Any) -> str:
    """Checks that `value` is a non-empty string."""
    if not isinstance(value, str):
        raise TypeError(invalid_type(name, "a string", value))
    if not value:
        raise ValueError(invalid_value(name, "a non-empty string", value))
    return value


def suggest_keywords(*extra: str) -> Any:
    """Class decorator: a misspelt keyword names the nearest accepted one.

    Python's own `TypeError` for an unexpected keyword argument lists nothing;
    this one says `did you mean ...?`, as Keras' layers do for their
    arguments. `extra` are keywords a `**kwargs` of `__init__` accepts (such as
    `check_gradients`' arguments).
    """
    import difflib
    import functools
    import inspect

    def decorate(cls: Any) -> Any:
        init = cls.__init__
        parameters = inspect.signature(init).parameters
        named = [
            name
            for name, p in parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        accepted = [*named, *extra]

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            unknown = [k for k in kwargs if k not in accepted]
            if unknown and (extra or not takes_any):
                hints = []
                for name in unknown:
                    close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
                    hints.append(
                        f"`{name}` (did you mean `{close[0]}`?)"
                        if close
                        else f"`{name}`"
                    )
                raise TypeError(
                    f"Unrecognized keyword argument{'s' * (len(unknown) > 1)} "
                    f"passed to {cls.__name__}: {', '.join(hints)}. It accepts: "
                    f"{', '.join(accepted)}."
                )
            init(self, *args, **kwargs)

        cls.__init__ = __init__
        return cls

    return decorate
