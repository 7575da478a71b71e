"""A fixed bonus on the scores of the session's own items, chosen on validation.

Trained by likelihood, neither repeat head ranks a session's own items as well as counting
them does (S-POP): likelihood pays for probability mass, the metrics for places in a short
list. The prior is the ranking-time alternative: the score of each item already in the
prefix gets

    bonus + count_bonus * log(n_i) + recency_bonus * log(1 + r_i),

n_i the item's clicks in the prefix and r_i the real positions after its last one. With a
lift limit m > 0 only the m prefix items of highest score plus bonus get it (the others
keep the model's score): lifting every item of a long session above the catalogue pushes
new targets out of a short list for items that are seldom clicked again. It is
never trained: `tune_repeat_prior` picks the four numbers for a trained model on the
validation split, and retrieval adds them wherever it ranks (in-training validation, test,
the export), so the served lists are the evaluated ones (DESIGN.md section 2, step 9).
"""

import dataclasses

import numpy as np
import tensorflow as tf

# The model settings that carry the prior (`models.model_settings`), in `RepeatPrior`'s order.
REPEAT_PRIOR_SETTINGS = ("repeat_bonus", "repeat_count_bonus", "repeat_recency_bonus",
                         "repeat_lift_limit")


@dataclasses.dataclass(frozen=True)
class RepeatPrior:
    """The prior's three weights, in score units (a model's scores, before any softmax),
    and how many prefix items at most get them (0: all)."""

    bonus: float = 0.0
    count_bonus: float = 0.0
    recency_bonus: float = 0.0
    lift_limit: int = 0

    @classmethod
    def from_settings(cls, values):
        """From {setting name: value} named as `REPEAT_PRIOR_SETTINGS`, in its order
        (missing ones are 0)."""
        *weights, limit = (values.get(name, 0) for name in REPEAT_PRIOR_SETTINGS)
        return cls(*(float(weight) for weight in weights), int(limit))

    def as_settings(self):
        return dict(zip(REPEAT_PRIOR_SETTINGS, dataclasses.astuple(self)))

    @property
    def active(self):
        """Whether it moves any score (a limit alone moves none)."""
        return any((self.bonus, self.count_bonus, self.recency_bonus))

    def bonuses(self, log_count, log_later):
        """The bonus of items with these `prefix_features` (tensors or NumPy arrays alike)."""
        return self.bonus + self.count_bonus * log_count + self.recency_bonus * log_later


def prefix_features(item_ids):
    """What the prior reads of each position of int [batch, len] right-padded prefixes.

    Returns:
      (last: bool [batch, len], whether the position holds its item's last click;
       log_count: float32 [batch, len], log of the item's clicks in the prefix;
       log_later: float32 [batch, len], log(1 + real positions after this one)).
    """
    item_ids = tf.cast(item_ids, tf.int32)
    real = item_ids > 0
    same = (tf.equal(item_ids[:, :, None], item_ids[:, None, :])
            & real[:, :, None] & real[:, None, :])  # [batch, len, len]
    length = tf.shape(item_ids)[1]
    after = tf.range(length)[None, :] > tf.range(length)[:, None]  # [len, len]: j > i
    last = real & tf.logical_not(tf.reduce_any(same & after[None], axis=2))
    count = tf.reduce_sum(tf.cast(same, tf.float32), axis=2)
    later = tf.cumsum(tf.cast(real, tf.float32), axis=1, exclusive=True, reverse=True)
    return last, tf.math.log(tf.maximum(count, 1.0)), tf.math.log1p(later)


def lifted_positions(last, lifted_scores, limit):
    """bool [batch, len]: the `last` positions among the `limit` of highest
    `lifted_scores` in their row (equal scores: the earlier position first); every `last`
    position for a limit of 0. NumPy arrays or tensors alike, with the same choice."""
    if not limit:
        return last
    if isinstance(last, np.ndarray):
        order = np.argsort(-np.where(last, lifted_scores, -np.inf), axis=1, kind="stable")
        rank = np.argsort(order, axis=1, kind="stable")
    else:
        order = tf.argsort(tf.where(last, lifted_scores, -np.inf), axis=1,
                           direction="DESCENDING", stable=True)
        rank = tf.argsort(order, axis=1, stable=True)
    return last & (rank < limit)


def position_bonuses(item_ids, prior, prefix_scores=None):
    """float32 [batch, len]: each item's bonus at the position of its last click, 0 at
    every other position (so each distinct item gets it once); with a lift limit, only
    at the positions `lifted_positions` keeps by `prefix_scores` (float32 [batch, len],
    each position's item's score without the prior)."""
    last, log_count, log_later = prefix_features(item_ids)
    bonuses = prior.bonuses(log_count, log_later)
    if prior.lift_limit:
        last = lifted_positions(last, prefix_scores + bonuses, prior.lift_limit)
    return tf.where(last, bonuses, 0.0)


def add_repeat_prior(scores, item_ids, first_item, prior, prefix_scores=None):
    """`scores` (float32 [batch, width], column j = item first_item + j) with each prefix
    item's bonus added to its own column; items outside the slice are left alone. A prior
    with a lift limit needs `prefix_scores` (`position_bonuses`), the same for every slice."""
    item_ids = tf.cast(item_ids, tf.int32)
    bonuses = position_bonuses(item_ids, prior, prefix_scores)
    columns = item_ids - first_item
    inside = (item_ids > 0) & (columns >= 0) & (columns < tf.shape(scores)[1])
    positions = tf.where(inside & (bonuses != 0.0))  # [n, 2]: (row, position)
    indices = tf.stack([tf.cast(positions[:, 0], tf.int32),
                        tf.gather_nd(columns, positions)], axis=1)
    return tf.tensor_scatter_nd_add(scores, indices, tf.gather_nd(bonuses, positions))
