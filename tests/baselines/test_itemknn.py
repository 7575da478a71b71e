"""Item-KNN: cosine over session incidence, against a dense brute force on tiny data."""

import itertools

import numpy as np
import pytest
from scipy import sparse

from mtd_tf import baselines
from mtd_tf.baselines.itemknn import ItemKNN
from mtd_tf.data import registry
from mtd_tf.data.sessions import Sessions


def brute_force_similarities(sessions, num_items):
    """Dense sim(i, j) = |S_i ∩ S_j| / sqrt(|S_i| |S_j|) from Python sets; 0 on the diagonal."""
    containing = [{s for s, session in enumerate(sessions) if item in session}
                  for item in range(1, num_items + 1)]
    similarities = np.zeros((num_items, num_items))
    for i, j in itertools.permutations(range(num_items), 2):
        if containing[i] and containing[j]:
            similarities[i, j] = (len(containing[i] & containing[j])
                                  / np.sqrt(len(containing[i]) * len(containing[j])))
    return similarities


def test_hand_computed_cosine():
    # S_1 = {0, 1}, S_2 = {0}, S_3 = {1, 2}, S_4 = {} (never seen).
    knn = ItemKNN(Sessions.from_lists([[1, 2, 1], [3, 1], [3]]), num_items=4)
    scores = knn.score(Sessions.from_lists([[2, 1], [4, 3]]))
    # From item 1: sim(1,2) = 1/sqrt(2*1), sim(1,3) = 1/sqrt(2*2); itself 0.
    np.testing.assert_allclose(scores[0], [0, 1 / np.sqrt(2), 0.5, 0])
    # From item 3: sim(3,1) = 1/2, the rest 0.
    np.testing.assert_allclose(scores[1], [0.5, 0, 0, 0])


@pytest.mark.parametrize("seed", range(3))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    num_items = 9
    lists = [list(rng.integers(1, num_items + 1, size=rng.integers(1, 6))) for _ in range(30)]
    knn = ItemKNN(Sessions.from_lists(lists), num_items)
    assert sparse.issparse(knn.similarities)
    expected = brute_force_similarities(lists, num_items)
    prefixes = Sessions.from_lists([[item] for item in range(1, num_items + 1)])
    np.testing.assert_allclose(knn.score(prefixes), expected, atol=1e-12)


def test_only_the_last_item_counts_and_empty_prefix_is_a_miss():
    knn = ItemKNN(Sessions.from_lists([[1, 2], [2, 3], [3, 4]]), num_items=4)
    prefixes = Sessions.from_lists([[4, 1], [1], [], [3]])
    scores = knn.score(prefixes)
    np.testing.assert_array_equal(scores[0], scores[1])
    assert np.isnan(scores[2]).all()
    # Targets: 2 (sim(1,2) = 1/sqrt(2), the only non-zero: rank 1), again 2, 2 after an empty
    # prefix (a miss), 4 from item 3 (sim 1/sqrt(2) beats item 2's 1/2: rank 1).
    result = baselines.evaluate(knn, prefixes, np.array([2, 2, 2, 4]), ks=(1,))
    assert result["P@1"] == 75.0


def test_yoochoose_regression(shared_data_dir):
    """Pins our yoochoose1_64 numbers; the paper's Table 2 has 43.40 / 21.39 at K = 10."""
    dataset = registry.load_dataset("yoochoose", shared_data_dir)
    knn = ItemKNN(dataset.train, dataset.num_items)
    result = baselines.evaluate(knn, dataset.test_prefixes, dataset.test_targets, ks=(10, 20))
    assert result["P@10"] == pytest.approx(43.7888, abs=1e-4)
    assert result["MRR@10"] == pytest.approx(21.5447, abs=1e-4)
    assert result["P@20"] == pytest.approx(53.6859, abs=1e-4)
