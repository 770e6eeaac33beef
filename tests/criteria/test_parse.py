"""`criteria.get`: criteria from shorthands and from their own repr."""

from __future__ import annotations

import pytest

from keras_bettermodels import criteria
from keras_bettermodels.criteria import GL, PQ, UP, Patience

pytestmark = pytest.mark.backend_independent


class TestShorthand:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("GL5", GL(5)), ("PQ0.5", PQ(0.5)), ("UP3", UP(3)), ("gl2.5", GL(2.5))],
    )
    def test_parses_prechelts_names(self, text, expected):
        assert criteria.get(text) == expected

    @pytest.mark.parametrize("text", ["GL", "XY5", "GL-1", "UP1.5", ""])
    def test_refuses_other_strings(self, text):
        with pytest.raises(ValueError, match="Invalid value for argument `criterion`"):
            criteria.get(text)

    def test_refuses_other_types(self):
        with pytest.raises(TypeError, match="Received: criterion=5"):
            criteria.get(5)


class TestCriterionStrings:
    """`get` reads a criterion the way it prints itself (issue 19)."""

    CRITERIA = [
        GL(5),
        GL(2.5),
        UP(3),
        PQ(0.5),
        UP(3, strip_length=2),
        PQ(0.5, strip_length=3),
        Patience(3),
        Patience(3, min_delta=0.1),
        UP(3) | GL(2),
        GL(2) & UP(2),
        GL(5) | (UP(2) & PQ(0.5)),
    ]

    @pytest.mark.parametrize("criterion", CRITERIA, ids=repr)
    def test_round_trips_through_its_repr(self, criterion):
        assert criteria.get(repr(criterion)) == criterion

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("GL(5)", GL(5)),
            ("UP(3)", UP(3)),
            ("PQ(0.5)", PQ(0.5)),
            (" gl( 5 ) ", GL(5)),
            ("UP3 | GL2", UP(3) | GL(2)),
            ("PQ0.5 & UP(2)", PQ(0.5) & UP(2)),
            ("GL(alpha=5)", GL(5)),
        ],
    )
    def test_reads_calls_shorthands_and_combinations(self, text, expected):
        assert criteria.get(text) == expected

    @pytest.mark.parametrize(
        ("text", "because"),
        [
            ("GL()", "The criterion refused it"),
            ("GL(0)", "The criterion refused it: .*`alpha`"),
            ("UP(1.5)", "The criterion refused it: .*`s`"),
            ("UP(3, foo=1)", "The criterion refused it"),
            ("GL(5) + UP(3)", r"Received: criterion='GL\(5\) \+ UP\(3\)'$"),
            ("__import__('os')", "Received: criterion="),
            ("GL(x)", "Received: criterion="),
            ("GL(5) |", "Received: criterion="),
            ("(" * 600 + "GL(5)" + ")" * 600, "Received: criterion="),
        ],
    )
    def test_refuses_anything_else_clearly(self, text, because):
        with pytest.raises(
            ValueError, match="Invalid value for argument `criterion`"
        ) as caught:
            criteria.get(text)
        assert __import__("re").search(because, str(caught.value))
