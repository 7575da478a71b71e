"""STAN and VSTAN: the three decays, VSTAN's step decay and IDF, against a plain-Python loop."""

import math

import numpy as np
import pytest

from mtd_tf.baselines.stan import STAN
from mtd_tf.baselines.stan import STANSettings
from mtd_tf.baselines.vstan import VSTAN
from mtd_tf.baselines.vstan import VSTANSettings
from mtd_tf.data.sessions import Sessions
from tests.baselines import knn_reference


def reference(train, setting):
    """session-rec's STAN (and VSKNN_STAN for a `VSTANSettings`), with age = N - index."""

    def similarity(prefix, neighbour, index):
        weights = {item: math.exp((i - len(prefix)) / setting.lambda_1)
                   for i, item in enumerate(prefix, 1)}
        shared = set(prefix) & set(neighbour)
        cosine = (sum(weights[item] for item in shared)
                  / (math.sqrt(sum(w * w for w in weights.values()))
                     * math.sqrt(len(set(neighbour)))))
        age = len(train) - index
        return cosine * math.exp(-age / (setting.lambda_2 * len(train)))

    def vote(prefix, neighbour, value, item):
        anchor = max(i for i, seen in enumerate(neighbour, 1) if seen in prefix)
        distance = abs(knn_reference.last_position(neighbour, item) - anchor)
        result = value * math.exp(-distance / setting.lambda_3)
        if isinstance(setting, VSTANSettings):
            recent = max(i for i, seen in enumerate(prefix, 1) if seen in neighbour)
            result *= math.exp((recent - len(prefix)) / setting.lambda_ipw)
            result *= 1 + setting.lambda_idf * knn_reference.idf(train, item)
        return result

    return lambda prefix: knn_reference.knn_scores(train, prefix, setting.k,
                                                   setting.sample_size, similarity, vote)


SETTINGS = [
    STANSettings(k=100, sample_size=100),
    STANSettings(k=3, sample_size=6, lambda_1=0.5, lambda_2=0.05, lambda_3=8.0),
    STANSettings(k=2, sample_size=100, lambda_1=4.0, lambda_2=1.0, lambda_3=0.5),
    VSTANSettings(k=100, sample_size=100),
    VSTANSettings(k=3, sample_size=5, lambda_1=2.0, lambda_2=0.2, lambda_3=1.0,
                  lambda_ipw=0.5, lambda_idf=0.0),
]


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("setting", SETTINGS)
def test_matches_reference(seed, setting):
    train, prefixes, num_items = knn_reference.random_case(seed)
    method = (VSTAN if isinstance(setting, VSTANSettings) else STAN)(
        Sessions.from_lists(train), num_items, setting)
    knn_reference.check_against_reference(method, train, prefixes, num_items,
                                          reference(train, setting))


def test_no_decay_is_plain_cosine_votes():
    # lambda = inf switches every decay off: STAN is then SKNN's cosine over item sets
    # (with every prefix item weighing 1).
    train = Sessions.from_lists([[1, 3], [2, 4, 4], [1, 2, 5]])
    stan = STAN(train, num_items=5, setting=STANSettings(
        k=10, sample_size=10, lambda_1=math.inf, lambda_2=math.inf, lambda_3=math.inf))
    scores = stan.score(Sessions.from_lists([[1, 2, 1]]))[0]
    # cos: session 0 and 1: 1/sqrt(2*2); session 2: 2/sqrt(2*3).
    high, low = 2 / math.sqrt(6), 0.5
    np.testing.assert_allclose(scores, [high + low, high + low, low, low, high])


def test_item_distance_decay_by_hand():
    # One neighbour [7, 1, 8, 9] of prefix [1]: anchor = position 2 (item 1); sim = 1 / 2
    # times the recency exp(-1 / (0.5 * 1)). Votes: exp(-|pos - 2| / 1) for 7, 1, 8, 9.
    stan = STAN(Sessions.from_lists([[7, 1, 8, 9]]), num_items=9,
                setting=STANSettings(lambda_2=0.5, lambda_3=1.0))
    scores = stan.score(Sessions.from_lists([[1]]))[0]
    sim = 0.5 * math.exp(-2)
    np.testing.assert_allclose(scores[[6, 0, 7, 8]],
                               sim * np.exp(-np.array([1.0, 0.0, 1.0, 2.0])))
