"""target_ranks and RankingMetrics against an independent sort-based NumPy reference."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import metrics


def reference_rank(row_scores, target):
    """Position of `target` (1-based) after sorting items best first, ties broken for it."""
    num_items = len(row_scores)
    if not 1 <= target <= num_items or np.isnan(row_scores[target - 1]):
        return None
    order = sorted(range(1, num_items + 1),
                   key=lambda item: (-row_scores[item - 1], item != target))
    return order.index(target) + 1


def reference_metrics(ranks, ks):
    """Per-pair loop; `None` ranks are misses."""
    result = {}
    for k in ks:
        hits = [rank for rank in ranks if rank is not None and rank <= k]
        result[f"P@{k}"] = 100.0 * len(hits) / len(ranks)
        result[f"MRR@{k}"] = 100.0 * sum(1.0 / rank for rank in hits) / len(ranks)
        result[f"NDCG@{k}"] = 100.0 * sum(1.0 / math.log2(rank + 1) for rank in hits) / len(ranks)
    return result


def random_pairs(seed, batch=40, num_items=7):
    """Integer-valued scores (many ties) and targets that include unknown ids 0 and M + 1."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(batch, num_items)).astype(np.float32)
    targets = rng.integers(0, num_items + 2, size=batch).astype(np.int32)
    return scores, targets


@pytest.mark.parametrize("seed", range(5))
def test_ranks_match_sorting_reference_with_ties(seed):
    scores, targets = random_pairs(seed)
    ranks = metrics.target_ranks(scores, targets)
    expected = [reference_rank(row, target) for row, target in zip(scores, targets)]
    expected = [metrics.UNRANKED if rank is None else rank for rank in expected]
    np.testing.assert_array_equal(ranks, expected)


def test_ties_favour_the_target():
    # Item 2 and 3 tie with target 3 at 5.0; only item 1 (9.0) is strictly higher -> rank 2.
    scores = np.array([[9.0, 5.0, 5.0, 1.0]])
    np.testing.assert_array_equal(metrics.target_ranks(scores, np.array([3])), [2])


def test_unknown_targets_and_nan_scores_are_misses_at_every_k():
    scores = np.array([[1.0, 2.0], [1.0, 2.0], [np.nan, 2.0], [1.0, np.nan]])
    targets = np.array([0, 3, 1, 1])
    ranks = metrics.target_ranks(scores, targets)
    # A NaN elsewhere is never "strictly higher": the last pair ranks first.
    np.testing.assert_array_equal(ranks, [metrics.UNRANKED] * 3 + [1])
    accumulator = metrics.RankingMetrics(ks=(1, 2, 1000))
    accumulator.update(ranks)
    assert accumulator.result() == {
        "P@1": 25.0, "MRR@1": 25.0, "NDCG@1": 25.0, "P@2": 25.0, "MRR@2": 25.0, "NDCG@2": 25.0,
        "P@1000": 25.0, "MRR@1000": 25.0, "NDCG@1000": 25.0}


def test_hand_computed_metrics():
    accumulator = metrics.RankingMetrics(ks=(1, 3))
    accumulator.update([1, 2, 4, metrics.UNRANKED])
    result = accumulator.result()
    assert accumulator.num_pairs == 4
    assert result["P@1"] == 25.0 and result["MRR@1"] == 25.0 and result["NDCG@1"] == 25.0
    assert result["P@3"] == 50.0
    assert result["MRR@3"] == pytest.approx(100 * (1 + 1 / 2) / 4)  # 37.5
    assert result["NDCG@3"] == pytest.approx(100 * (1 + 1 / math.log2(3)) / 4)
    assert list(result) == ["P@1", "MRR@1", "NDCG@1", "P@3", "MRR@3", "NDCG@3"]


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_reference_including_k_beyond_catalogue(seed):
    scores, targets = random_pairs(seed, num_items=7)
    ks = (1, 5, 10, 20)  # 10 and 20 exceed M = 7: every known target is a hit there
    accumulator = metrics.RankingMetrics(ks=ks)
    accumulator.update(metrics.target_ranks(scores, targets))
    expected = reference_metrics(
        [reference_rank(row, target) for row, target in zip(scores, targets)], ks)
    result = accumulator.result()
    assert result.keys() == expected.keys()
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    known_share = 100.0 * np.mean((targets >= 1) & (targets <= 7))
    assert result["P@10"] == pytest.approx(known_share)


@pytest.mark.parametrize("seed", range(3))
def test_streaming_equals_one_shot(seed):
    scores, targets = random_pairs(seed, batch=101, num_items=30)
    ranks = metrics.target_ranks(scores, targets)
    one_shot = metrics.RankingMetrics()
    one_shot.update(ranks)
    streamed = metrics.RankingMetrics()
    for start, stop in [(0, 1), (1, 40), (40, 40), (40, 101)]:
        streamed.update(metrics.target_ranks(scores[start:stop], targets[start:stop]))
    assert streamed.num_pairs == one_shot.num_pairs == 101
    for name, value in one_shot.result().items():
        assert streamed.result()[name] == pytest.approx(value, rel=1e-12), name


def test_kept_ranks_are_every_pair_in_the_order_added():
    streamed = metrics.RankingMetrics(keep_ranks=True)
    assert streamed.ranks().shape == (0,)
    for batch in ([3, 1], [], [[7], [metrics.UNRANKED]]):
        streamed.update(np.asarray(batch, dtype=np.int64))
    np.testing.assert_array_equal(streamed.ranks(), [3, 1, 7, metrics.UNRANKED])
    assert streamed.ranks().dtype == np.int32
    with pytest.raises(ValueError, match="keep_ranks=True"):
        metrics.RankingMetrics().ranks()


@pytest.mark.parametrize("seed", range(3))
def test_tf_function_matches_numpy(seed):
    scores, targets = random_pairs(seed)
    scores[0, 2] = np.nan
    targets[0] = 3

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def ranks_in_graph(batch_scores, batch_targets):
        return metrics.target_ranks(batch_scores, batch_targets)

    in_graph = ranks_in_graph(tf.constant(scores), tf.constant(targets))
    assert in_graph.dtype == tf.int32
    np.testing.assert_array_equal(in_graph.numpy(), metrics.target_ranks(scores, targets))
    eager = metrics.target_ranks(tf.constant(scores), targets)
    np.testing.assert_array_equal(eager.numpy(), in_graph.numpy())


def test_numpy_inputs_stay_numpy():
    ranks = metrics.target_ranks(np.zeros((2, 3)), np.array([1, 3]))
    assert isinstance(ranks, np.ndarray)
    np.testing.assert_array_equal(ranks, [1, 1])


@pytest.mark.parametrize("ks", [(), (0, 5), (5, 5), (2.5,)])
def test_rejects_bad_ks(ks):
    with pytest.raises(ValueError, match="ks"):
        metrics.RankingMetrics(ks=ks)


def test_rejects_ranks_below_one_and_empty_result():
    accumulator = metrics.RankingMetrics()
    with pytest.raises(ValueError, match="ranks start at 1"):
        accumulator.update([0])
    with pytest.raises(ValueError, match="empty"):
        accumulator.result()


def test_per_pair_gains_are_each_pairs_share_of_every_metric():
    gains = metrics.per_pair_gains(np.array([1, 3, 25]), ks=(5, 20))
    assert list(gains) == ["P@5", "MRR@5", "NDCG@5", "P@20", "MRR@20", "NDCG@20"]
    np.testing.assert_allclose(gains["P@5"], [1, 1, 0])
    np.testing.assert_allclose(gains["MRR@20"], [1, 1 / 3, 0])
    np.testing.assert_allclose(gains["NDCG@5"], [1, 1 / 2, 0])  # 1 / log2(3 + 1)
