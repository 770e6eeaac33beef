"""PruningPolicy: a policy picks the layers of a model to prune, or refuses it."""

from __future__ import annotations

import keras
import pytest

from keras_bettermodels.pruning import (
    ConstantSparsity,
    PruneForLatencyOnXNNPack,
    PruningPolicy,
    prune_low_magnitude,
)
from tests.pruning._helpers import mlp

SCHEDULE = ConstantSparsity(0.5, begin_step=0)


class OnlyNamed(PruningPolicy):
    def __init__(self, *names, refuse=False):
        self.names = names
        self.refuse = refuse
        self.asked = []

    def allow_pruning(self, layer):
        self.asked.append(layer.name)
        return layer.name in self.names

    def ensure_model_supports_pruning(self, model):
        if self.refuse:
            raise ValueError(f"{model.name} is not for this policy")


def _kinds(model) -> dict[str, str]:
    return {layer.name: type(layer).__name__ for layer in model.layers}


def test_the_policy_picks_among_the_prunable_layers():
    policy = OnlyNamed("head")
    pruned = prune_low_magnitude(mlp(), SCHEDULE, pruning_policy=policy)
    kinds = _kinds(pruned)
    assert kinds["hidden"] == "Dense"
    assert kinds["prune_low_magnitude_head"] == "PruneLowMagnitude"
    assert policy.asked == ["hidden", "head"]  # only layers that can be pruned


def test_a_policy_that_refuses_the_model_or_allows_nothing():
    with pytest.raises(ValueError, match="mlp is not for this policy"):
        prune_low_magnitude(mlp(), SCHEDULE, pruning_policy=OnlyNamed(refuse=True))
    with pytest.raises(ValueError, match="no layer that the pruning policy allows"):
        prune_low_magnitude(mlp(), SCHEDULE, pruning_policy=OnlyNamed())


def test_a_policy_is_for_models_and_not_with_layers():
    with pytest.raises(TypeError, match="Invalid type for argument `pruning_policy`"):
        prune_low_magnitude(mlp(), SCHEDULE, pruning_policy="xnnpack")
    with pytest.raises(ValueError, match=r"`layers`\. Expected None when `pruning_"):
        prune_low_magnitude(mlp(), pruning_policy=OnlyNamed("head"), layers=["head"])
    with pytest.raises(ValueError, match=r"`pruning_policy`\. Expected None when"):
        prune_low_magnitude(keras.layers.Dense(2), pruning_policy=OnlyNamed())
    with pytest.raises(TypeError, match="abstract"):
        PruningPolicy()


def test_the_xnnpack_policy_says_why_it_is_missing_and_what_to_use():
    with pytest.raises(NotImplementedError, match=r"not available.*layers=\[\.\.\.\]"):
        PruneForLatencyOnXNNPack()
