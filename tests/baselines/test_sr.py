"""SR: rules to later items weighted by their gap, pruned, read from the last item."""

import numpy as np
import pytest

from mtd_tf.baselines.sr import SequentialRules
from mtd_tf.baselines.sr import SRSettings
from mtd_tf.data.sessions import Sessions
from tests.baselines import knn_reference



@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("setting", [
    SRSettings(), SRSettings(steps=1, weighting="linear", pruning=0),
    SRSettings(steps=3, weighting="quadratic", pruning=2), SRSettings(steps=12, weighting="log"),
    SRSettings(steps=12, weighting="linear", pruning=0),
    # Integer weights: exact ties at the pruning cut, kept by smaller item id.
    SRSettings(weighting="same", pruning=3)])
def test_matches_reference(seed, setting):
    train, prefixes, num_items = knn_reference.random_case(seed)
    rules = SequentialRules(Sessions.from_lists(train), num_items, setting)
    knn_reference.check_against_reference(
        rules, train, prefixes, num_items,
        lambda prefix: knn_reference.sequential_rule_scores(
            train, prefix, setting.steps, knn_reference.DISTANCE_WEIGHTS[setting.weighting],
            setting.pruning))


def test_hand_computed_rules():
    # [1, 2, 1, 3] with steps 2, div: 1->2 (1), 2->1 (1), 1->3 (1), 1->1 (1/2), 2->3 (1/2).
    rules = SequentialRules(Sessions.from_lists([[1, 2, 1, 3]]), num_items=4,
                            setting=SRSettings(steps=2))
    scores = rules.score(Sessions.from_lists([[4, 1], [2]]))
    np.testing.assert_allclose(scores[0, :3], [0.5, 1.0, 1.0])
    np.testing.assert_allclose(scores[1, [0, 2]], [1.0, 0.5])
    # Unscored items follow popularity (1: 2 clicks, 2 and 3: 1, 4: none) below zero.
    assert scores[0, 3] < 0 and scores[1, 1] > scores[1, 3]
