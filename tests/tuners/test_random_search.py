"""RandomSearch: a drop-in `keras_tuner.RandomSearch`, over the retrain mixin.

The retrain itself is tested in `test_retrain.py`.
"""

from __future__ import annotations

import inspect

import keras_tuner

from keras_bettermodels.tuners import RandomSearch


class TestTheParentsContract:
    def test_is_a_keras_tuner_random_search(self):
        assert issubclass(RandomSearch, keras_tuner.RandomSearch)
        assert RandomSearch.get_best_models is keras_tuner.RandomSearch.get_best_models
        assert (
            RandomSearch.get_best_hyperparameters
            is keras_tuner.RandomSearch.get_best_hyperparameters
        )

    def test_every_parent_argument_keeps_its_position_and_default(self):
        ours = list(inspect.signature(RandomSearch.__init__).parameters.values())
        theirs = list(
            inspect.signature(keras_tuner.RandomSearch.__init__).parameters.values()
        )
        positional = [p for p in theirs if p.kind is not p.VAR_KEYWORD]
        assert [(p.name, p.default, p.kind) for p in ours[: len(positional)]] == [
            (p.name, p.default, p.kind) for p in positional
        ]
        new = ours[len(positional) :]
        assert [(p.name, p.default, p.kind) for p in new] == [
            ("retrain_on_full_data", True, inspect.Parameter.KEYWORD_ONLY),
            ("retrain_epochs", None, inspect.Parameter.KEYWORD_ONLY),
            ("cv", None, inspect.Parameter.KEYWORD_ONLY),
            ("select", None, inspect.Parameter.KEYWORD_ONLY),
            ("kwargs", inspect.Parameter.empty, inspect.Parameter.VAR_KEYWORD),
        ]
