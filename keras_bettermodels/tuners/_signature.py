"""The mixin's `__init__` signature: the tuner's arguments, then its own (private).

A tuner class that mixes `RetrainOnFullData` in gets a generated `__init__`
whose `inspect.signature` shows keras-tuner's arguments in their positions
and the mixin's keyword-only ones after, so that IDEs and `help()` show them.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["bind_parent_arguments", "hypermodel_and_objective", "init_with_signature"]


def _parent_init(cls: type, mixin: type) -> Any:
    """The `__init__` the mixin hands over to: the tuner's own."""
    mro = cls.__mro__
    for klass in mro[mro.index(mixin) + 1 :]:
        if "__init__" in vars(klass):
            return vars(klass)["__init__"]
    return object.__init__


def bind_parent_arguments(
    cls: type, mixin: type, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> inspect.BoundArguments | None:
    """Binds the tuner's arguments, or `None` if they do not bind (the tuner
    then raises its own `TypeError`)."""
    try:
        return inspect.signature(_parent_init(cls, mixin)).bind(None, *args, **kwargs)
    except (TypeError, ValueError):
        return None


def hypermodel_and_objective(bound: inspect.BoundArguments) -> tuple[Any, ...]:
    """`(hypermodel,)`, and the objective a built-in tuner's oracle reads."""
    hypermodel = bound.arguments.get("hypermodel")
    if "objective" not in bound.signature.parameters:
        return (hypermodel,)  # a user's Tuner: its oracle is built already
    default = bound.signature.parameters["objective"].default
    return hypermodel, bound.arguments.get("objective", default)


def init_with_signature(cls: type, mixin: type) -> Any:
    """An `__init__` for `cls` whose signature is the tuner's plus the mixin's.

    The mixin's own parameters are its keyword-only ones, after the tuner's.
    """
    owner: Any = cls  # any tuner class: `super` hands over along its MRO

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        super(owner, self).__init__(*args, **kwargs)

    own = vars(mixin)["__init__"]
    signature = inspect.signature(_parent_init(cls, mixin))
    ours = inspect.signature(own).parameters.values()
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    params += [p for p in ours if p.kind is p.KEYWORD_ONLY]
    params.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    vars(__init__)["__signature__"] = signature.replace(
        parameters=params, return_annotation=None
    )
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = own.__doc__
    return __init__
