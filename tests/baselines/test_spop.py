"""S-POP: in-session counts first, global popularity for ties and the rest."""

import numpy as np
import pytest

from mtd_tf import baselines
from mtd_tf.baselines.spop import SessionPop
from mtd_tf.data import registry
from mtd_tf.data.sessions import Sessions

# Global counts: item 1: 1, item 2: 3, item 3: 2, item 4: 0, item 5: 1.
TRAIN = Sessions.from_lists([[1, 2, 2], [3, 2, 5], [3]])


def ranking(scores_row):
    """Item ids best first (the test's own view: a stable sort of the negated scores)."""
    return list(np.argsort(-scores_row, kind="stable") + 1)


def test_session_item_counts_sums_repeats():
    counts = baselines.session_item_counts(Sessions.from_lists([[2, 2, 3], [1]]), num_items=4)
    np.testing.assert_array_equal(counts.toarray(), [[0, 2, 1, 0], [1, 0, 0, 0]])


def test_session_counts_first_then_global_popularity():
    spop = SessionPop(TRAIN, num_items=5)
    scores = spop.score(Sessions.from_lists([[5, 1, 5], [4, 1], [2]]))
    # Prefix 1: 5 twice, then 1 once; the unseen rest by global count 2 (3) > 3 (2) > 4 (0).
    assert ranking(scores[0]) == [5, 1, 2, 3, 4]
    # Prefix 2: 4 and 1 once each, tie broken by global count (1 > 0); then 2, 3, 5.
    assert ranking(scores[1]) == [1, 4, 2, 3, 5]
    # Prefix 3: 2, then global order 3 (2), 1 and 5 (1 each, stable by id), 4 (0).
    assert ranking(scores[2]) == [2, 3, 1, 5, 4]


def test_empty_prefix_falls_back_to_global_popularity():
    spop = SessionPop(TRAIN, num_items=5)
    scores = spop.score(Sessions.from_lists([[]]))
    np.testing.assert_array_equal(scores, [[1, 3, 2, 0, 1]])


def test_yoochoose_regression(shared_data_dir):
    """Pins our yoochoose1_64 numbers; the paper's Table 2 has 28.61 / 18.45 at K = 10."""
    dataset = registry.load_dataset("yoochoose", shared_data_dir)
    spop = SessionPop(dataset.train, dataset.num_items)
    result = baselines.evaluate(spop, dataset.test_prefixes, dataset.test_targets, ks=(10, 20))
    assert result["P@10"] == pytest.approx(28.6191, abs=1e-4)
    assert result["MRR@10"] == pytest.approx(18.4620, abs=1e-4)
    assert result["P@20"] == pytest.approx(31.1390, abs=1e-4)
