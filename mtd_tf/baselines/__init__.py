"""Non-neural baselines, one per module: the paper's Table 2 (POP, S-POP, Item-KNN) and the
strong simple methods of the reproducibility studies (SKNN, V-SKNN, STAN, VSTAN, SR).

Each baseline is fit on training sessions and scores every item 1..M for a batch of test
prefixes: `score(prefixes: Sessions) -> float [len(prefixes), M]`, column j = item j + 1.
`evaluate` ranks the targets among those scores exactly as the model is evaluated
(`mtd_tf.metrics`, DESIGN.md section 5), so the numbers are comparable. POP, S-POP and
Item-KNN have no settings; the others have a `Settings` record and a tuning grid that
`mtd_tf.baselines.tuning` searches on the validation split (DESIGN.md section 1).
"""

import numpy as np
from scipy import sparse

from mtd_tf import metrics

# Scores are float64 [batch, M]: 256 x 43,097 (Diginetica) is about 90 MB.
DEFAULT_BATCH_SIZE = 256


def session_item_counts(sessions, num_items):
    """How often each item occurs in each session.

    Args:
      sessions: `Sessions` with ids in 1..num_items.
      num_items: M.

    Returns:
      float64 `scipy.sparse.csr_matrix` [len(sessions), M]; entry (s, m - 1) counts item m
      in session s (repeats summed).
    """
    rows = np.repeat(np.arange(len(sessions)), sessions.lengths)
    columns = sessions.values.astype(np.int64) - 1
    return sparse.csr_matrix((np.ones(len(columns)), (rows, columns)),
                             shape=(len(sessions), num_items))


def last_positions(sessions, num_items):
    """Where each distinct item of each session occurs last (1-based).

    Args:
      sessions: `Sessions` with ids in 1..num_items.
      num_items: M.

    Returns:
      int64 `scipy.sparse.csr_matrix` [len(sessions), M], sorted indices; entry (s, m - 1) is
      the position of item m's last occurrence in session s, counted from 1.
    """
    rows = np.repeat(np.arange(len(sessions)), sessions.lengths)
    positions = np.arange(len(rows)) - sessions.row_splits[rows] + 1
    keys = rows * num_items + sessions.values.astype(np.int64) - 1
    # Positions rise along a session, so the last entry of a key holds its largest position.
    unique_keys, first_from_end = np.unique(keys[::-1], return_index=True)
    last = len(keys) - 1 - first_from_end
    return sparse.csr_matrix(
        (positions[last], (unique_keys // num_items, unique_keys % num_items)),
        shape=(len(sessions), num_items))


def first_per_row(rows, order_keys, limit):
    """The first `limit` entries of each row, in the order `order_keys` give within a row.

    Args:
      rows: int [n], each entry's row.
      order_keys: tuple of [n] arrays, as for `np.lexsort` (the last key is the primary one).
      limit: entries kept per row.

    Returns:
      int [<= n], indices of the kept entries, in no particular order.
    """
    counts = np.bincount(rows)
    if counts.max(initial=0) <= limit:
        return np.arange(len(rows))
    order = np.lexsort((*order_keys, rows))
    rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    return order[rank < limit]


def evaluate(baseline, prefixes, targets, batch_size=DEFAULT_BATCH_SIZE, ks=(5, 10, 20),
             accumulator=None):
    """Full-ranking P@K, MRR@K and NDCG@K (percent) of a fitted baseline on (prefix, target) pairs.

    Args:
      baseline: object with `score(prefixes) -> float [len(prefixes), M]`; when it also has
        `target_ranks(prefixes, targets)` (`SparseScorer`), the ranks come from that,
        without a dense score matrix.
      prefixes: `Sessions`, one prefix per pair.
      targets: int [num_pairs]; ids outside 1..M count as misses.
      batch_size: prefixes scored at once (memory is batch_size x M floats).
      ks: cut-offs.
      accumulator: a `metrics.RankingMetrics` to fill instead of a fresh one with `ks`
        (one that keeps the ranks, for a paired comparison).

    Returns:
      `metrics.RankingMetrics.result()` over all pairs.
    """
    accumulator = accumulator or metrics.RankingMetrics(ks=ks)
    for start in range(0, len(targets), batch_size):
        stop = min(start + batch_size, len(targets))
        batch = prefixes.take(start, stop)
        if hasattr(baseline, "target_ranks"):
            ranks = baseline.target_ranks(batch, targets[start:stop])
        else:
            ranks = metrics.target_ranks(baseline.score(batch), targets[start:stop])
        accumulator.update(ranks)
    return accumulator.result()
