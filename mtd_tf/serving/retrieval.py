"""Scores, ranks and top-K lists of a next-item model, one path for evaluation and serving.

A session with no item the model knows (all ids unknown to training, dropped upstream)
would get all-zero scores, which rank every target first under the tie rule of DESIGN.md
section 5. Such a session is ranked by training popularity instead, in evaluation exactly
as in serving: in-training validation and test (`training.session_step`) and the
SavedModel (`serving.export`) both go through `TopKRetrieval`.
"""

import numpy as np
import tensorflow as tf

from mtd_tf import metrics


class TopKRetrieval:
    """Brute-force retrieval over all M items of a model behind the next-item protocol.

    Args:
      model: any model of `mtd_tf.models` (`query_vectors`, `candidate_vectors`).
      item_popularity: float [M], training counts of items 1..M: the fallback ranking.
    """

    def __init__(self, model, item_popularity):
        self.model = model
        self.popularity = tf.constant(np.asarray(item_popularity, dtype=np.float32))  # [M]

    def scores(self, item_ids):
        """[batch, M] scores (column j = item j+1) of int [batch, len] right-padded prefixes
        with ids in 0..M."""
        query, candidates = (self.model.query_vectors(item_ids, training=False),
                             self.model.candidate_vectors())
        scores = tf.matmul(query, candidates, transpose_b=True)  # [batch, M]
        head = getattr(self.model, "repeat_head", None)
        if head is not None:  # log P of the repeat/explore mixture
            scores = head((item_ids, query, candidates, scores))
        scores = tf.cast(scores, tf.float32)  # a mixed-precision model ranks in float32 too
        has_items = tf.reduce_any(item_ids > 0, axis=1)  # [batch]
        return tf.where(has_items[:, None], scores, self.popularity[None, :])

    def target_ranks(self, item_ids, targets):
        """int32 [batch]: each target's rank among all M items (`metrics.target_ranks`)."""
        return metrics.target_ranks(self.scores(item_ids), targets)

    def top_k(self, item_ids, k):
        """(item ids int64 [batch, k'] best first, their scores [batch, k']), k' = min(k, M)."""
        values, indices = tf.math.top_k(self.scores(item_ids), k=min(k, self.model.num_items))
        return tf.cast(indices, tf.int64) + 1, values
