"""Scores as both evaluation and serving see them: the model, or popularity when it is blind.

A session with no item the model knows (all ids unknown to training, dropped upstream)
would get all-zero scores, which rank every target first under SPEC's tie rule. Such a
session is ranked by training popularity instead, in evaluation exactly as in serving.
"""

import tensorflow as tf


def scores_with_popularity_fallback(model, item_ids, popularity):
    """[batch, M] scores (column j = item j+1).

    Args:
      model: an `MTDModel`.
      item_ids: int [batch, len], right-padded with 0, ids in 0..M.
      popularity: float32 [M], training counts of items 1..M.
    """
    scores = model(item_ids, training=False)  # [batch, M]
    has_items = tf.reduce_any(item_ids > 0, axis=1)  # [batch]
    return tf.where(has_items[:, None], scores, popularity[None, :])
