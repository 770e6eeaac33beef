"""The generated `__init__`: the tuner's signature, then the mixin's arguments.

On the real tuners: `test_random_search.py` and `test_tuners.py`.
"""

from __future__ import annotations

import inspect

import pytest

from keras_bettermodels.tuners import _signature

pytestmark = pytest.mark.backend_independent


class Parent:
    def __init__(self, hypermodel=None, objective="val_loss", max_trials=10, **kwargs):
        self.received = (hypermodel, objective, max_trials, kwargs)


class Mixin:
    def __init__(self, *args, mine: bool = True, **kwargs):
        """The mixin's own documentation."""
        self.mine = mine
        super().__init__(*args, **kwargs)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" not in vars(cls):
            init = _signature.init_with_signature(cls, Mixin)
            type.__setattr__(cls, "__init__", init)


class Tuner(Mixin, Parent):
    pass


class Own:
    def __init__(self, oracle, hypermodel=None):
        self.received = (oracle, hypermodel)


class OwnTuner(Mixin, Own):
    pass


def test_the_signature_is_the_parents_then_the_mixins_keyword_only_arguments():
    parameters = inspect.signature(Tuner.__init__).parameters
    assert list(parameters) == [
        "self",
        "hypermodel",
        "objective",
        "max_trials",
        "mine",
        "kwargs",
    ]
    assert parameters["mine"].kind is inspect.Parameter.KEYWORD_ONLY
    assert Tuner.__init__.__qualname__ == "Tuner.__init__"
    assert Tuner.__init__.__doc__ == "The mixin's own documentation."


def test_the_generated_init_hands_every_argument_on():
    tuner = Tuner("build", max_trials=3, mine=False, directory="d")
    assert tuner.received == ("build", "val_loss", 3, {"directory": "d"})
    assert tuner.mine is False


def test_the_hypermodel_and_the_objective_the_oracle_reads():
    bound = _signature.bind_parent_arguments(Tuner, Mixin, ("build",), {})
    assert _signature.hypermodel_and_objective(bound) == ("build", "val_loss")
    bound = _signature.bind_parent_arguments(Tuner, Mixin, (), {"objective": "x"})
    assert _signature.hypermodel_and_objective(bound) == (None, "x")
    bound = _signature.bind_parent_arguments(OwnTuner, Mixin, ("oracle", "b"), {})
    assert _signature.hypermodel_and_objective(bound) == ("b",)


def test_arguments_that_do_not_bind_are_left_to_the_tuner():
    assert _signature.bind_parent_arguments(OwnTuner, Mixin, (), {}) is None
    with pytest.raises(TypeError):
        OwnTuner()
