"""Evaluation of served top-K lists: metrics, their standard errors and paired gaps, against
NumPy/SciPy references computed from the ranks by hand."""

import numpy as np
import pytest
from scipy import stats

from mtd_tf.data import sessions
from mtd_tf.serving import evaluation

TOP_K = 10


class ListedRecommender:
    """Serves a fixed top-K list per test pair, in the order the pairs are asked for."""

    def __init__(self, target_ranks, targets):
        # A list holding each target at its rank (11 = absent), other slots filled with
        # ids no target uses.
        self.lists = np.full((len(targets), TOP_K), 999, dtype=np.int64)
        for row, (rank, target) in enumerate(zip(target_ranks, targets)):
            if rank <= TOP_K:
                self.lists[row, rank - 1] = target
        self.served = 0

    def recommend(self, item_ids):
        rows = self.lists[self.served:self.served + len(item_ids)]
        self.served += len(item_ids)
        return rows, np.zeros(rows.shape, np.float32)


@pytest.fixture(name="dataset")
def fixture_dataset():
    targets = np.arange(1, 10, dtype=np.int32)
    prefixes = sessions.Sessions.from_lists([[50 + i, 60] for i in range(len(targets))])
    return sessions.SessionDataset(name="listed", train=prefixes, test_prefixes=prefixes,
                                   test_targets=targets, num_items=100)


RANKS = np.array([1, 2, 11, 5, 6, 3, 10, 11, 1])
BASELINE_RANKS = np.array([2, 2, 4, 11, 6, 8, 11, 11, 1])


def test_a_single_export_reports_each_metric_and_its_standard_error(dataset):
    report = evaluation.evaluate_export(
        ListedRecommender(RANKS, dataset.test_targets), dataset, batch_size=4)
    hits_at_5 = (RANKS <= 5).astype(float)  # 1, 1, 0, 1, 0, 1, 0, 0, 1
    reciprocal_at_10 = np.where(RANKS <= 10, 1.0 / RANKS, 0.0)
    assert report["test"]["P@5"] == pytest.approx(100 * 5 / 9)
    assert report["test"]["MRR@10"] == pytest.approx(
        100 * (1 + 1 / 2 + 1 / 5 + 1 / 6 + 1 / 3 + 1 / 10 + 1) / 9)
    assert report["test_standard_error"]["P@5"] == pytest.approx(100 * stats.sem(hits_at_5))
    assert report["test_standard_error"]["MRR@10"] == pytest.approx(
        100 * stats.sem(reciprocal_at_10))
    assert set(report["test"]) == {"P@5", "MRR@5", "NDCG@5", "P@10", "MRR@10", "NDCG@10"}


def test_the_gap_of_two_exports_has_a_paired_standard_error(dataset):
    report = evaluation.compare_exports(
        ListedRecommender(RANKS, dataset.test_targets),
        ListedRecommender(BASELINE_RANKS, dataset.test_targets), dataset, batch_size=4)
    hits = (RANKS <= 10).astype(float)
    baseline_hits = (BASELINE_RANKS <= 10).astype(float)
    # P@10 7/9 against 6/9; they disagree on the 3rd, 4th and 7th pairs (-1, +1, +1).
    assert report["gap"]["P@10"] == pytest.approx(100 * (7 - 6) / 9)
    assert report["test"]["P@10"] - report["baseline_test"]["P@10"] == pytest.approx(
        report["gap"]["P@10"])
    assert report["gap_standard_error"]["P@10"] == pytest.approx(
        100 * stats.sem(hits - baseline_hits))
    # Paired: smaller than the two figures' own errors would make an unpaired gap.
    unpaired = np.hypot(report["test_standard_error"]["P@10"],
                        report["baseline_test_standard_error"]["P@10"])
    assert report["gap_standard_error"]["P@10"] < unpaired


def test_ranks_compare_as_the_exports_serving_them_do(dataset):
    served = evaluation.compare_exports(
        ListedRecommender(RANKS, dataset.test_targets),
        ListedRecommender(BASELINE_RANKS, dataset.test_targets), dataset, batch_size=4)
    compared = evaluation.compare_ranks(RANKS, BASELINE_RANKS, ks=(5, 10))
    assert compared == {key: served[key] for key in compared}
    assert set(served) - set(compared) == {"test_by_target", "baseline_test_by_target"}
    with pytest.raises(ValueError, match="do not pair up"):
        evaluation.compare_ranks(RANKS, BASELINE_RANKS[:-1])


def test_an_export_compared_with_itself_has_no_gap_and_no_noise(dataset):
    report = evaluation.compare_exports(
        ListedRecommender(RANKS, dataset.test_targets),
        ListedRecommender(RANKS, dataset.test_targets), dataset, batch_size=5)
    assert set(report["gap"].values()) == {0.0}
    assert set(report["gap_standard_error"].values()) == {0.0}
