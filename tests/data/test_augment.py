"""Prefix augmentation and padding against a plain Python loop, and Table 1's sample counts."""

import numpy as np
import pytest

from mtd_tf.data import formats
from mtd_tf.data.augment import (
    augment_prefixes, count_samples, pad_prefixes, split_validation)
from mtd_tf.data.sessions import Sessions


def reference_rows(prefixes, max_len):
    """The obvious loop: last max_len items of each prefix, right-padded with 0."""
    item_ids = np.zeros((len(prefixes), max_len), dtype=np.int32)
    for row, prefix in enumerate(prefixes):
        kept = prefix[-max_len:] if prefix else []
        item_ids[row, :len(kept)] = kept
    return item_ids, np.array([min(len(p), max_len) for p in prefixes], dtype=np.int32)


def reference_augment(sequences, min_prefix_len, max_len):
    prefixes, targets = [], []
    for session in sequences:
        for cut in range(min_prefix_len, len(session)):
            prefixes.append(session[:cut])
            targets.append(session[cut])
    item_ids, lengths = reference_rows(prefixes, max_len)
    return item_ids, lengths, np.array(targets, dtype=np.int32)


def random_sequences(seed, num_sessions=40, longest=12, num_items=30, allow_empty=False):
    rng = np.random.default_rng(seed)
    shortest = 0 if allow_empty else 1
    return [rng.integers(1, num_items + 1, size=rng.integers(shortest, longest + 1)).tolist()
            for _ in range(num_sessions)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("min_prefix_len, max_len", [(1, 50), (2, 50), (1, 4), (2, 3), (3, 1)])
def test_augment_matches_loop(seed, min_prefix_len, max_len):
    sequences = random_sequences(seed)
    samples = augment_prefixes(Sessions.from_lists(sequences), min_prefix_len, max_len)
    item_ids, lengths, targets = reference_augment(sequences, min_prefix_len, max_len)
    np.testing.assert_array_equal(samples.item_ids, item_ids)
    np.testing.assert_array_equal(samples.lengths, lengths)
    np.testing.assert_array_equal(samples.targets, targets)
    assert samples.item_ids.dtype == samples.lengths.dtype == samples.targets.dtype == np.int32
    assert len(samples) == count_samples(Sessions.from_lists(sequences), min_prefix_len)


def test_augment_small_example_by_hand():
    # [1,2,3,4] with max_len 2: cuts 1..3 -> [1], [1,2], [2,3] (truncated to the last 2);
    # [5] has no cut; [6,7] -> [6].
    samples = augment_prefixes(Sessions.from_lists([[1, 2, 3, 4], [5], [6, 7]]), max_len=2)
    np.testing.assert_array_equal(samples.item_ids, [[1, 0], [1, 2], [2, 3], [6, 0]])
    np.testing.assert_array_equal(samples.lengths, [1, 2, 2, 1])
    np.testing.assert_array_equal(samples.targets, [2, 3, 4, 7])


def test_augment_no_samples():
    samples = augment_prefixes(Sessions.from_lists([[3], [4]]), max_len=5)
    assert samples.item_ids.shape == (0, 5)
    assert len(samples) == 0


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("max_len", [1, 3, 50])
def test_pad_prefixes_matches_loop(seed, max_len):
    prefixes = random_sequences(seed, allow_empty=True)
    targets = np.arange(1, len(prefixes) + 1)
    samples = pad_prefixes(Sessions.from_lists(prefixes), targets, max_len)
    item_ids, lengths = reference_rows(prefixes, max_len)
    np.testing.assert_array_equal(samples.item_ids, item_ids)
    np.testing.assert_array_equal(samples.lengths, lengths)
    np.testing.assert_array_equal(samples.targets, targets)


def test_pad_prefixes_empty_prefix_is_all_padding():
    samples = pad_prefixes(Sessions.from_lists([[], [7, 8, 9]]), [4, 5], max_len=2)
    np.testing.assert_array_equal(samples.item_ids, [[0, 0], [8, 9]])
    np.testing.assert_array_equal(samples.lengths, [0, 2])


def test_pad_prefixes_rejects_mismatched_targets():
    with pytest.raises(ValueError, match="2 prefixes but 1 targets"):
        pad_prefixes(Sessions.from_lists([[1], [2]]), [3])


@pytest.mark.parametrize("bad", [{"min_prefix_len": 0}, {"max_len": 0}])
def test_augment_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match=f"{next(iter(bad))} must be >= 1"):
        augment_prefixes(Sessions.from_lists([[1, 2]]), **bad)


@pytest.mark.parametrize("num_sessions, fraction, num_valid", [
    (20, 0.1, 2), (25, 0.1, 2), (15, 0.1, 2), (7, 0.0, 0), (3, 0.5, 2)])
def test_split_validation_takes_the_last_sessions(num_sessions, fraction, num_valid):
    # 25 * 0.1 = 2.5 rounds to 2 (half to even); 15 * 0.1 = 1.5 rounds to 2; 3 * 0.5 -> 2.
    sequences = [[i + 1, i + 2] for i in range(num_sessions)]
    train, valid = split_validation(Sessions.from_lists(sequences), fraction)
    assert train.to_lists() == sequences[:num_sessions - num_valid]
    assert valid.to_lists() == sequences[num_sessions - num_valid:]


def test_split_validation_rejects_bad_fraction():
    with pytest.raises(ValueError, match="1.0"):
        split_validation(Sessions.from_lists([[1, 2]]), 1.0)


@pytest.mark.parametrize("name, min_prefix_len, expected", [
    ("yoochoose1_64", 1, 369_859), ("diginetica", 1, 719_470), ("retailrocket", 2, 433_648)])
def test_sample_counts_match_table_1(require_shared, name, min_prefix_len, expected):
    sessions = formats.read_train_pickle(require_shared(name) / name / formats.TRAIN_PICKLE)
    assert count_samples(sessions, min_prefix_len) == expected
    samples = augment_prefixes(sessions, min_prefix_len)
    assert len(samples) == expected
    assert samples.lengths.min() >= min_prefix_len
    assert samples.lengths.max() == 50
    assert samples.targets.min() >= 1
