"""V-SKNN: position-weighted overlap, step decay and IDF, against a plain-Python loop."""

import math

import numpy as np
import pytest

from mtd_tf.baselines.vsknn import VSKNN
from mtd_tf.baselines.vsknn import VSKNNSettings
from mtd_tf.data.sessions import Sessions
from tests.baselines import knn_reference

# session-rec's `weighting(i, length)` and `weighting_score(step)`, linear clipped at 0.
POSITION_WEIGHTS = {
    "same": lambda i, length: 1.0,
    "div": lambda i, length: i / length,
    "linear": lambda i, length: max(0.0, 1 - 0.1 * (length - i)),
    "quadratic": lambda i, length: (i / length)**2,
    "log": lambda i, length: 1 / math.log10(length - i + 1.7),
}


def reference(train, setting):
    def position_map(prefix):
        # Later occurrences overwrite earlier ones, as session-rec's pos_map.
        return {item: POSITION_WEIGHTS[setting.weighting](i, len(prefix))
                for i, item in enumerate(prefix, 1)}

    def similarity(prefix, neighbour, index):
        del index
        weights = position_map(prefix)
        return sum(weights[item] for item in set(prefix) & set(neighbour)) / len(weights)

    def vote(prefix, neighbour, value, item):
        step = next(step for step, seen in enumerate(reversed(prefix), 1) if seen in neighbour)
        idf = knn_reference.idf(train, item) if setting.idf_weighting else 0.0
        return (value * knn_reference.DISTANCE_WEIGHTS[setting.weighting_score](step)
                * (1 + setting.idf_weighting * idf))

    return lambda prefix: knn_reference.knn_scores(train, prefix, setting.k,
                                                   setting.sample_size, similarity, vote)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("setting", [
    VSKNNSettings(k=100, sample_size=100),
    VSKNNSettings(k=100, sample_size=4, weighting="linear", weighting_score="quadratic"),
    VSKNNSettings(k=100, sample_size=100, weighting="log", weighting_score="log",
                  idf_weighting=2.0),
    VSKNNSettings(k=100, sample_size=100, weighting="quadratic", weighting_score="linear"),
    VSKNNSettings(k=100, sample_size=100, weighting="same", weighting_score="same"),
])
def test_matches_reference(seed, setting):
    train, prefixes, num_items = knn_reference.random_case(seed)
    vsknn = VSKNN(Sessions.from_lists(train), num_items, setting)
    knn_reference.check_against_reference(vsknn, train, prefixes, num_items,
                                          reference(train, setting))


def test_hand_computed_scores():
    # Prefix [1, 2] (div: w(1) = 1/2, w(2) = 1); sessions 0: [1, 3], 1: [2, 3, 4].
    train = Sessions.from_lists([[1, 3], [2, 3, 4]])
    vsknn = VSKNN(train, num_items=4, setting=VSKNNSettings(k=1, sample_size=10))
    # sim(0) = 0.5 / 2, sim(1) = 1 / 2: k = 1 keeps session 1, matched at the last item
    # (step 1, div 1): items 2, 3, 4 get 0.5.
    scores = vsknn.score(Sessions.from_lists([[1, 2]]))[0]
    np.testing.assert_allclose(scores[1:], [0.5, 0.5, 0.5])
    assert scores[0] < 0
