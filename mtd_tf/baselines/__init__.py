"""Non-neural baselines of the paper's Table 2 (POP, S-POP, Item-KNN), one per module.

Each baseline is fit on all training sessions (it has no hyper-parameters to select, so
no validation split) and scores every item 1..M for a batch of test prefixes:
`score(prefixes: Sessions) -> float [len(prefixes), M]`, column j = item j + 1.
`evaluate` ranks the targets among those scores exactly as the model is evaluated
(`mtd_tf.metrics`, DESIGN.md section 5), so the numbers are comparable.
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


def evaluate(baseline, prefixes, targets, batch_size=DEFAULT_BATCH_SIZE, ks=(5, 10, 20)):
    """Full-ranking P@K, MRR@K and NDCG@K (percent) of a fitted baseline on (prefix, target) pairs.

    Args:
      baseline: object with `score(prefixes) -> float [len(prefixes), M]`.
      prefixes: `Sessions`, one prefix per pair.
      targets: int [num_pairs]; ids outside 1..M count as misses.
      batch_size: prefixes scored at once (memory is batch_size x M floats).
      ks: cut-offs.

    Returns:
      `metrics.RankingMetrics.result()` over all pairs.
    """
    accumulator = metrics.RankingMetrics(ks=ks)
    for start in range(0, len(targets), batch_size):
        stop = min(start + batch_size, len(targets))
        scores = baseline.score(prefixes.take(start, stop))
        accumulator.update(metrics.target_ranks(scores, targets[start:stop]))
    return accumulator.result()
