"""POP: hand-sized counts, and the paper's Table 2 POP row reproduced on the real splits."""

import numpy as np
import pytest

from mtd_tf import baselines
from mtd_tf.baselines.pop import Pop
from mtd_tf.data import registry
from mtd_tf.data.sessions import Sessions


def test_scores_are_training_occurrence_counts():
    train = Sessions.from_lists([[1, 2, 2], [3, 2]])
    pop = Pop(train, num_items=4)  # item 4 never occurs
    scores = pop.score(Sessions.from_lists([[4], [1, 3]]))
    np.testing.assert_array_equal(scores, [[1, 3, 1, 0], [1, 3, 1, 0]])


def test_evaluate_by_hand():
    pop = Pop(Sessions.from_lists([[1, 2, 2], [3, 2]]), num_items=4)
    prefixes = Sessions.from_lists([[1], [2], [3], [1]])
    # Counts 1:1, 2:3, 3:1, 4:0 -> ranks: item 2 -> 1; items 1 and 3 tie -> 2; item 4 -> 4.
    result = baselines.evaluate(pop, prefixes, np.array([2, 1, 3, 4]), batch_size=3, ks=(1, 2))
    assert result["P@1"] == 25.0 and result["P@2"] == 75.0
    assert result["MRR@2"] == pytest.approx(100 * (1 + 0.5 + 0.5) / 4)  # 50.0


# The paper's Table 2, POP, K = 10: (P@10, MRR@10) in percent.
PAPER_POP_AT_10 = {"yoochoose": (4.59, 1.51), "diginetica": (0.58, 0.19),
                   "retailrocket": (1.59, 0.44)}


@pytest.mark.parametrize("name", sorted(PAPER_POP_AT_10))
def test_reproduces_paper_table_2(require_shared, name):
    dataset = registry.load_dataset(name, require_shared(name))
    pop = Pop(dataset.train, dataset.num_items)
    result = baselines.evaluate(pop, dataset.test_prefixes, dataset.test_targets, ks=(10,))
    assert (round(result["P@10"], 2), round(result["MRR@10"], 2)) == PAPER_POP_AT_10[name]
