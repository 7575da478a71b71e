"""Full-ranking evaluation: the rank of each target among all M items, and P/MRR/NDCG@K.

DESIGN.md section 5: every item 1..M is ranked (never a sampled subset), and the rank of a
target is `1 + #items scoring strictly higher`, so ties are resolved in the target's
favour. Ranks are computed where the scores are (NumPy for the baselines, TensorFlow inside
a `tf.function` for the model); the metrics are accumulated on the host from ranks alone,
so a whole split never has to fit in memory at once.
"""

import sys

import numpy as np

# The cut-offs every split is reported at, and the metrics of metrics.json's "test" block
# (DESIGN.md sections 5-6) in the paper's column order.
REPORT_KS = (5, 10, 20)
REPORTED_METRICS = ("P@5", "P@10", "P@20", "MRR@5", "MRR@10", "MRR@20", "NDCG@20")
# Every metric `per_pair_gains` gives a pair, by the names it uses.
GAIN_METRICS = tuple(f"{metric}@{k}" for k in REPORT_KS for metric in ("P", "MRR", "NDCG"))

# Rank of a pair that cannot be ranked: its target is not an item 1..M, or its own score is
# NaN. Larger than any K, so the pair counts as a miss at every cut-off.
UNRANKED = np.iinfo(np.int32).max


def target_ranks(scores, targets):
    """Rank of each target among all M items: 1 + the number of items scoring strictly higher.

    Accepts NumPy arrays or TensorFlow tensors (eagerly or inside a `tf.function`) and
    answers in kind.

    Args:
      scores: float [batch, M]; column j scores item j + 1.
      targets: int [batch], item ids. A target outside 1..M (0 = padding, or an item the
        model does not know) or whose score is NaN gets `UNRANKED`, a miss for every K.

    Returns:
      int [batch] ranks in 1..M, or `UNRANKED`; int32 for tensors, int64 for arrays.
    """
    if _is_tensor(scores) or _is_tensor(targets):
        return _target_ranks_tf(scores, targets)
    return _target_ranks_numpy(np.asarray(scores), np.asarray(targets))


def _is_tensor(value):
    # Only code that already imported TensorFlow can hold a tensor, so the NumPy callers
    # (the baselines) never pay for importing it.
    tf = sys.modules.get("tensorflow")
    return tf is not None and tf.is_tensor(value)


def _target_ranks_numpy(scores, targets):
    num_items = scores.shape[1]
    targets = targets.astype(np.int64)
    columns = np.clip(targets - 1, 0, num_items - 1)
    target_scores = np.take_along_axis(scores, columns[:, None], axis=1)  # [batch, 1]
    higher = np.count_nonzero(scores > target_scores, axis=1)
    rankable = (targets >= 1) & (targets <= num_items) & ~np.isnan(target_scores[:, 0])
    return np.where(rankable, higher + 1, UNRANKED)


def _target_ranks_tf(scores, targets):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    scores = tf.convert_to_tensor(scores)
    targets = tf.cast(targets, tf.int32)
    num_items = tf.shape(scores)[1]
    columns = tf.clip_by_value(targets - 1, 0, num_items - 1)
    target_scores = tf.gather(scores, columns, axis=1, batch_dims=1)  # [batch]
    higher = tf.reduce_sum(tf.cast(scores > target_scores[:, None], tf.int32), axis=1)
    rankable = ((targets >= 1) & (targets <= num_items)
                & tf.logical_not(tf.math.is_nan(target_scores)))
    return tf.where(rankable, higher + 1, UNRANKED)


class RankingMetrics:
    """Streaming P@K, MRR@K and NDCG@K (in percent) over batches of ranks.

    P@K is the share of pairs with rank <= K (the paper's "Precision", also called HR@K or
    Recall@K); MRR@K the mean of 1/rank over those pairs, 0 for the others; NDCG@K the mean
    of 1/log2(rank + 1) likewise (one relevant item per pair, so the ideal DCG is 1).

    Attributes:
      ks: the cut-offs, in the order given.
      num_pairs: pairs accumulated so far.
    """

    def __init__(self, ks=(5, 10, 20), keep_ranks=False):
        ks = tuple(ks)
        if not ks or any(int(k) != k or not 1 <= k < UNRANKED for k in ks):
            raise ValueError(f"ks must be positive integers, got {ks!r}")
        if len(set(ks)) != len(ks):
            raise ValueError(f"ks must not repeat, got {ks!r}")
        self.ks = tuple(int(k) for k in ks)
        self.num_pairs = 0
        # The metric names in result order, from the gains of no pairs.
        self._sums = dict.fromkeys(per_pair_gains(np.ones(0, dtype=np.int64), self.ks), 0.0)
        self._kept = [] if keep_ranks else None

    def update(self, ranks):
        """Adds a batch of ranks (any shape; as returned by `target_ranks`)."""
        ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
        for name, gains in per_pair_gains(ranks, self.ks).items():
            self._sums[name] += float(gains.sum())
        self.num_pairs += ranks.size
        if self._kept is not None:
            self._kept.append(ranks.astype(np.int32))

    def ranks(self):
        """Every pair's rank in the order added (`keep_ranks=True`): two runs' ranks of
        the same split pair up one to one, for a paired gap."""
        if self._kept is None:
            raise ValueError("ranks were not kept: pass keep_ranks=True")
        return np.concatenate(self._kept) if self._kept else np.zeros(0, np.int32)

    def result(self):
        """{"P@K", "MRR@K", "NDCG@K" for each K} as floats in percent."""
        if not self.num_pairs:
            raise ValueError("no pairs were accumulated: the evaluated split is empty")
        return {name: total * 100.0 / self.num_pairs for name, total in self._sums.items()}


def per_pair_gains(ranks, ks):
    """Each pair's contribution to P@K, MRR@K and NDCG@K, for statistics over pairs.

    A metric is the mean of its gains; their spread gives its standard error, and the
    spread of two models' per-pair differences the standard error of their gap.

    Args:
      ranks: int [num_pairs] ranks, starting at 1 (`target_ranks`).
      ks: the cut-offs.

    Returns:
      {"P@K", "MRR@K", "NDCG@K" for each K, in that order}: float [num_pairs] in [0, 1],
      0 where rank > K.
    """
    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
    if np.any(ranks < 1):
        raise ValueError(f"ranks start at 1, got {ranks.min()}")
    gains = {}
    for k in ks:
        within = ranks <= k
        gains[f"P@{k}"] = within.astype(np.float64)
        gains[f"MRR@{k}"] = np.where(within, 1.0 / ranks, 0.0)
        gains[f"NDCG@{k}"] = np.where(within, 1.0 / np.log2(ranks + 1.0), 0.0)
    return gains


def summarize_gains(gains):
    """Each metric's mean of per-pair gains (`per_pair_gains`) and its standard error.

    Returns:
      ({metric: mean in percent}, {metric: standard error in points}); a mean is None
      for no pairs, an error None for fewer than two.
    """
    means, errors = {}, {}
    for name, values in gains.items():
        means[name] = 100.0 * float(np.mean(values)) if values.size else None
        errors[name] = (100.0 * float(np.std(values, ddof=1) / np.sqrt(values.size))
                        if values.size > 1 else None)
    return means, errors
