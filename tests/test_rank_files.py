"""Per-pair test ranks on disk: written atomically, read back exactly, refused when wrong."""

import pickle

import numpy as np
import pytest

from mtd_tf import rank_files
from mtd_tf.errors import DataError


def test_ranks_round_trip_as_int32(tmp_path):
    path = tmp_path / "run" / rank_files.TEST_RANKS_FILE
    rank_files.write_ranks(path, np.array([[1], [20], [2**31 - 1]], dtype=np.int64))
    ranks = rank_files.read_ranks(path, num_pairs=3)
    np.testing.assert_array_equal(ranks, [1, 20, 2**31 - 1])
    assert np.load(path).dtype == np.int32
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]  # no temp file left


@pytest.mark.parametrize("content, problem", [
    (b"not an array", "not a ranks file"),
    (None, "integer ranks >= 1"),  # a 2-D array
    (np.array([1.5, 2.0]), "integer ranks >= 1"),
    (np.array([3, 0]), "integer ranks >= 1"),
    (np.array([1, 2, 3]), "3 ranks, but the split has 4 pairs"),
])
def test_a_wrong_ranks_file_is_one_error_naming_it(tmp_path, content, problem):
    path = tmp_path / rank_files.TEST_RANKS_FILE
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, np.ones((2, 2), np.int32) if content is None else content)
    with pytest.raises(DataError, match=f"^{path}: .*{problem}"):
        rank_files.read_ranks(path, num_pairs=4)


def test_a_pickled_file_is_never_loaded(tmp_path):
    path = tmp_path / rank_files.TEST_RANKS_FILE
    np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a ranks file"):
        rank_files.read_ranks(path)
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="not a ranks file"):
        rank_files.read_ranks(path)
