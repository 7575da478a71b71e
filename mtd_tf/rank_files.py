"""Per-pair test ranks on disk: `test_ranks.npy` beside a run's metrics.json.

A metric is a mean over test pairs, so two runs can be compared pair by pair (a paired gap
and its standard error, `serving.evaluation.compare_ranks`) only if each keeps the rank of
every pair, in the split's pair order. Written atomically; read without pickle, so a
damaged or hostile file is an error, never code.
"""

import io

import numpy as np

from mtd_tf.errors import DataError
from mtd_tf.io_utils import atomic_output_file

TEST_RANKS_FILE = "test_ranks.npy"


def write_ranks(path, ranks):
    """Saves int ranks (1-based, `metrics.target_ranks`) to `path` as int32 .npy."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(ranks, dtype=np.int32).reshape(-1), allow_pickle=False)
    with atomic_output_file(path, "wb") as handle:
        handle.write(buffer.getvalue())


def read_ranks(path, num_pairs=None):
    """The ranks saved at `path`.

    Raises:
      DataError: the file is not a 1-D integer array of ranks >= 1, or it does not hold
        `num_pairs` of them (a run of another split).
    """
    try:
        ranks = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(path, f"not a ranks file ({error})") from None
    if ranks.ndim != 1 or not np.issubdtype(ranks.dtype, np.integer) or (
            ranks.size and ranks.min() < 1):
        raise DataError(path, "expected a 1-D array of integer ranks >= 1")
    if num_pairs is not None and ranks.size != num_pairs:
        raise DataError(path, f"{ranks.size} ranks, but the split has {num_pairs} pairs")
    return ranks.astype(np.int64)
