import numpy as np
import pytest

from mtd_tf.data.sessions import Sessions
from mtd_tf.data.sessions import prefix_target_pairs
from mtd_tf.data.sessions import row_splits_from_lengths


def _reference_pairs(sequences, min_prefix_len):
    pairs = []
    for sequence in sequences:
        for cut in range(len(sequence) - 1, min_prefix_len - 1, -1):
            pairs.append((sequence[:cut], sequence[cut]))
    return pairs


@pytest.mark.parametrize("min_prefix_len", [1, 2, 3])
def test_prefix_target_pairs_match_a_loop_over_cuts(min_prefix_len):
    sequences = [[5, 6, 7, 8], [9], [1, 2], [], [3, 3, 4], [10, 11, 12, 13, 14]]
    prefixes, targets = prefix_target_pairs(Sessions.from_lists(sequences), min_prefix_len)
    expected = _reference_pairs(sequences, min_prefix_len)
    assert list(zip(prefixes.to_lists(), targets.tolist())) == expected
    assert prefixes.values.dtype == np.int32 and targets.dtype == np.int32


def test_row_splits_from_lengths():
    np.testing.assert_array_equal(row_splits_from_lengths(np.array([2, 0, 3])), [0, 2, 2, 5])
    splits = row_splits_from_lengths(np.zeros(0, np.int64))
    np.testing.assert_array_equal(splits, [0])
    assert splits.dtype == np.int64
