"""The masks: unstructured by magnitude, whole blocks, M by N, and the 2:4 check."""

from __future__ import annotations

import keras
import numpy as np

from keras_bettermodels.pruning.masks import (
    block_mask,
    m_by_n_mask,
    m_by_n_violations,
    magnitude_mask,
)
from tests.pruning._helpers import nonzeros_per_group, numpy


def test_magnitude_mask_keeps_the_largest_magnitudes():
    weights = keras.ops.convert_to_tensor(
        np.array([[0.1, -5.0, 0.3], [-0.2, 4.0, 0.05]], "float32")
    )
    mask = numpy(magnitude_mask(weights, 0.5))
    assert mask.tolist() == [[0, 1, 1], [0, 1, 0]]
    assert numpy(magnitude_mask(weights, 0.0)).min() == 1  # nothing pruned
    assert numpy(magnitude_mask(weights, 0.99)).sum() == 1  # at least one kept


def test_m_by_n_mask_keeps_the_m_largest_of_every_n_along_the_input_axis():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(8, 3)).astype("float32")
    mask = numpy(m_by_n_mask(keras.ops.convert_to_tensor(weights), 2, 4))
    assert mask.shape == weights.shape
    for column in range(3):
        for start in (0, 4):
            group = np.abs(weights[start : start + 4, column])
            kept = set(np.flatnonzero(mask[start : start + 4, column]))
            assert kept == set(np.argsort(group)[-2:])
    conv = rng.normal(size=(3, 3, 8, 2)).astype("float32")
    conv_mask = numpy(m_by_n_mask(keras.ops.convert_to_tensor(conv), 2, 4))
    assert (nonzeros_per_group(conv_mask) == 2).all()


def test_m_by_n_violations_counts_groups_with_too_many_non_zeros():
    weights = np.ones((8, 2), "float32")
    assert m_by_n_violations(weights, 2, 4) == 4
    weights[[0, 1, 4, 5], :] = 0
    assert m_by_n_violations(weights, 2, 4) == 0
    weights[0, 1] = 3.0
    assert m_by_n_violations(weights, 2, 4) == 1


def test_block_mask_prunes_whole_blocks_by_their_mean_magnitude():
    weights = np.array(
        [[9, 9, 1, 1, 5], [9, 9, 1, 1, 5], [2, 2, 8, 8, 0], [2, 2, 8, 8, 0]],
        "float32",
    )
    mask = numpy(block_mask(keras.ops.convert_to_tensor(weights), 0.5, (2, 2)))
    # Six blocks (the last column padded): the three of largest mean are kept.
    expected = np.array(
        [[1, 1, 0, 0, 1], [1, 1, 0, 0, 1], [0, 0, 1, 1, 0], [0, 0, 1, 1, 0]],
        "float32",
    )
    np.testing.assert_array_equal(mask, expected)


def test_block_pooling_max_scores_a_block_by_its_largest_weight():
    weights = np.array([[9, 0, 4, 4], [0, 0, 4, 4]], "float32")
    tensor = keras.ops.convert_to_tensor(weights)
    # By mean, the 4s beat the lone 9 (2.25); by maximum, the 9 wins.
    average = numpy(block_mask(tensor, 0.5, (2, 2)))
    largest = numpy(block_mask(tensor, 0.5, (2, 2), pooling="MAX"))
    np.testing.assert_array_equal(average, [[0, 0, 1, 1], [0, 0, 1, 1]])
    np.testing.assert_array_equal(largest, [[1, 1, 0, 0], [1, 1, 0, 0]])


def test_edge_blocks_are_scored_by_the_weights_they_have():
    # Blocks of 1x4 over 5 columns: the last block holds one weight, a 3.
    weights = np.array([[1, 1, 1, 1, 3]], "float32")
    mask = numpy(block_mask(keras.ops.convert_to_tensor(weights), 0.5, (1, 4)))
    np.testing.assert_array_equal(mask, [[0, 0, 0, 0, 1]])
