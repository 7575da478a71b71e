"""Sparse ranks equal the dense ranks of `metrics.target_ranks`, for every sparse scorer."""

import numpy as np
import pytest

from mtd_tf import metrics
from mtd_tf.baselines.methods import METHODS
from mtd_tf.data.sessions import Sessions
from tests.baselines import knn_reference


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("method", ["sknn", "vsknn", "stan", "vstan", "sr"])
def test_ranks_equal_dense_ranks(seed, method):
    train, prefixes, num_items = knn_reference.random_case(seed)
    baseline = METHODS[method](Sessions.from_lists(train), num_items)
    prefixes = Sessions.from_lists(prefixes)
    # Targets: scored and unscored items, items never seen, and ids outside 1..M.
    targets = np.random.default_rng(seed).integers(0, num_items + 3, size=len(prefixes))
    np.testing.assert_array_equal(baseline.target_ranks(prefixes, targets),
                                  metrics.target_ranks(baseline.score(prefixes), targets))


def test_empty_prefix_ranks_by_popularity():
    # Clicks: item 1: 2, item 2: 1, item 3: 1, item 4: 0.
    baseline = METHODS["sknn"](Sessions.from_lists([[1, 2], [1, 3]]), num_items=4)
    ranks = baseline.target_ranks(Sessions.from_lists([[], [], [], []]), [1, 2, 3, 4])
    np.testing.assert_array_equal(ranks, [1, 2, 2, 4])
