"""SKNN: cosine over item sets, recent candidates, k neighbours, against a plain-Python loop."""

import math

import numpy as np
import pytest

from mtd_tf import baselines
from mtd_tf.baselines.sknn import SKNN
from mtd_tf.baselines.sknn import SKNNSettings
from mtd_tf.data.sessions import Sessions
from mtd_tf.errors import ConfigError
from tests.baselines import knn_reference


def cosine(prefix, neighbour, index):
    del index
    return len(set(prefix) & set(neighbour)) / math.sqrt(len(set(prefix)) * len(set(neighbour)))


def vote(prefix, neighbour, similarity, item):
    del prefix, neighbour, item
    return similarity


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k,sample_size", [(100, 100), (3, 100), (100, 4), (2, 5)])
def test_matches_reference(seed, k, sample_size):
    train, prefixes, num_items = knn_reference.random_case(seed)
    sknn = SKNN(Sessions.from_lists(train), num_items, SKNNSettings(k=k, sample_size=sample_size))
    knn_reference.check_against_reference(
        sknn, train, prefixes, num_items,
        lambda prefix: knn_reference.knn_scores(train, prefix, k, sample_size, cosine, vote))


def test_hand_computed_scores():
    # Sessions 0..3 (index = time). Prefix [1, 2, 1]: distinct {1, 2}.
    train = Sessions.from_lists([[1, 3], [2, 4, 4], [1, 2, 5], [6]])
    sknn = SKNN(train, num_items=7, setting=SKNNSettings(k=2, sample_size=3))
    scores = sknn.score(Sessions.from_lists([[1, 2, 1]]))[0]
    # Candidates 0, 1, 2: cos = 1/sqrt(2*2), 1/sqrt(2*2), 2/sqrt(2*3). k = 2 keeps session 2
    # (0.816) and, of the tied 0 and 1 (0.5), the more recent 1.
    high, low = 2 / math.sqrt(6), 0.5
    np.testing.assert_allclose(scores[[0, 1, 3, 4]], [high, high + low, low, high])
    # Items 3 (in the dropped session 0), 6 and 7 are unscored: popularity, below zero.
    assert (scores[[2, 5, 6]] < 0).all()


def test_most_recent_candidates_only():
    # Item 1 is in sessions 0..3; with sample_size 2 only sessions 2 and 3 can vote.
    train = Sessions.from_lists([[1, 2], [1, 3], [1, 4], [1, 5]])
    sknn = SKNN(train, num_items=5, setting=SKNNSettings(k=10, sample_size=2))
    scores = sknn.score(Sessions.from_lists([[1]]))[0]
    assert (scores[[3, 4]] > 0).all() and (scores[[1, 2]] < 0).all()


def test_target_wins_ties():
    # From [1]: items 2 and 3 each in one neighbour of equal cosine: they tie, and a tied
    # target ranks first (rank = 1 + items scoring strictly higher; DESIGN.md section 5).
    train = Sessions.from_lists([[1, 2], [1, 3], [4], [4]])
    sknn = SKNN(train, num_items=4, setting=SKNNSettings(k=10, sample_size=10))
    prefixes = Sessions.from_lists([[1], [1], [1]])
    # Item 1 scores most (in both neighbours): rank 1; items 2 and 3: rank 2 each.
    result = baselines.evaluate(sknn, prefixes, np.array([2, 3, 1]), ks=(1, 2))
    assert result["P@1"] == pytest.approx(100 / 3) and result["P@2"] == 100.0


def test_bad_setting_names_the_field():
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        SKNNSettings(k=0)
