"""Repeat and new targets: the flags against a plain Python count, the split against NumPy."""

import numpy as np
import pytest
from scipy import stats

from mtd_tf import metrics
from mtd_tf import repeats
from mtd_tf.data import sessions

PREFIXES = [[5, 3, 5], [1], [2, 7], [9, 9, 9, 4], [8]]
TARGETS = [5, 2, 7, 4, 3]


def test_a_target_is_a_repeat_when_it_is_anywhere_in_its_own_prefix():
    flags = repeats.repeat_targets(sessions.Sessions.from_lists(PREFIXES), TARGETS)
    assert flags.tolist() == [target in prefix for prefix, target in zip(PREFIXES, TARGETS)]
    assert flags.tolist() == [True, False, True, True, False]
    with pytest.raises(ValueError, match="5 prefixes but 4 targets"):
        repeats.repeat_targets(sessions.Sessions.from_lists(PREFIXES), TARGETS[:4])


@pytest.mark.parametrize("seed", range(3))
def test_random_flags_match_a_python_count(seed):
    rng = np.random.default_rng(seed)
    prefixes = [rng.integers(1, 12, size=rng.integers(1, 8)).tolist() for _ in range(200)]
    targets = rng.integers(1, 12, size=200)
    flags = repeats.repeat_targets(sessions.Sessions.from_lists(prefixes), targets)
    assert flags.tolist() == [int(t) in p for p, t in zip(prefixes, targets)]


def test_the_split_is_each_parts_metrics_share_and_standard_error():
    ranks = np.array([1, 30, 2, 4, 21, 15, metrics.UNRANKED])
    repeat = np.array([True, False, True, True, False, False, False])
    report = repeats.split_report(ranks, repeat)
    for part, members in (("repeat", repeat), ("new", ~repeat)):
        hits = (ranks[members] <= 20).astype(float)
        reciprocal = np.where(ranks[members] <= 10, 1.0 / ranks[members], 0.0)
        assert report[part]["pairs"] == members.sum()
        assert report[part]["share"] == pytest.approx(100 * members.mean())
        assert report[part]["metrics"]["P@20"] == pytest.approx(100 * hits.mean())
        assert report[part]["metrics"]["MRR@10"] == pytest.approx(100 * reciprocal.mean())
        assert report[part]["standard_error"]["P@20"] == pytest.approx(100 * stats.sem(hits))
    assert report["repeat"]["metrics"]["P@5"] == 100.0  # ranks 1, 2, 4


def test_a_part_without_pairs_has_no_metrics():
    report = repeats.split_report(np.array([3, 4]), np.array([False, False]))
    assert report["repeat"]["pairs"] == 0 and report["repeat"]["share"] == 0.0
    assert set(report["repeat"]["metrics"].values()) == {None}
    one = repeats.split_report(np.array([3, 4]), np.array([True, False]))
    assert one["repeat"]["metrics"]["P@5"] == 100.0
    assert set(one["repeat"]["standard_error"].values()) == {None}
    with pytest.raises(ValueError, match="2 ranks but 1 repeat flags"):
        repeats.split_report(np.array([3, 4]), np.array([True]))
