"""A repeat-aware output head: the next item as a gated mixture of clicking again an item of
the prefix and exploring the whole catalogue (RepeatNet, Ren et al., AAAI 2019, eq. 2-12).

A large share of next clicks return to an item already in the session (`mtd_tf.repeats`),
and one softmax over the catalogue under-serves them. The head works on any model behind
the next-item protocol (`mtd_tf.models`): it reads only the prefix ids, the session vector
and the candidate vectors, and the model's own scores stay the explore distribution.
"""

import keras
import tensorflow as tf

from mtd_tf.layers import precision

NEG_INF = float("-inf")
# Stands for -inf where a gradient flows: exp of it is 0, and its gradient is finite.
VERY_NEGATIVE = -1e30
# The largest log of the prefix's mass the head takes, so that log(1 - mass) stays finite.
MAX_LOG_PREFIX_MASS = -1e-7


@keras.saving.register_keras_serializable(package="mtd_tf")
class RepeatExploreHead(keras.layers.Layer):
    """log P(v) of every item v under the repeat/explore mixture.

    For a prefix v_1..v_I (right-padded with 0) with h_i = C[v_i] (the model's candidate
    vector of item v_i), session vector s and the model's scores z = s C^T over all M items:

      e_i = u^T tanh(W_r h_i + U_r s),  a = softmax(e) over the real positions  (repeat attention)
      P_r(v) = sum_{i: v_i = v} a_i                                  (repeated items pooled)
      P_e(v) = softmax(z)_v                                          (explore: the model's)
      [g_r, g_e] = softmax(W_g s + b_g)    (mode gate; [0, 1] for a prefix without items)
      P(v) = g_r P_r(v) + g_e P_e(v)

    With `from_scores` (beyond RepeatNet) both parts start from the model's own ranking,
    so the head can only re-weigh it: with m = sum of softmax(z)_v over the prefix's
    distinct items and r_i the number of real positions after i,

      e_i = u^T tanh(W_r h_i + U_r s) + alpha z_{v_i} + beta log(1 + r_i)
      P_e(v) = softmax(z)_v / (1 - m) for v outside the prefix, 0 inside  (RepeatNet's explore)
      [g_r, g_e] = softmax(W_g s + b_g + [log m, log(1 - m)])

    Initialised with u = 0, W_g = 0, b_g = 0, alpha = 1, beta = 0, it is the model's own
    softmax (up to a prefix item's count), and training moves it from there.

    The result is log P, computed as logaddexp(log g_r + log P_r(v), log g_e + log P_e(v)),
    so it is exact (and ranks like z) where P_r(v) = 0, and training takes
    -log P(target) as its loss. The mixture is computed in float32 under a mixed policy.

    Args:
      from_scores: the variant above.
      **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
      inputs: `(item_ids, session, candidates, scores)`: item_ids int `[batch, len]` in
        0..M (0 = padding), session float `[batch, d]`, candidates float `[M, d]` (row j =
        item j+1), scores float `[batch, M]`, session @ candidates^T.

    Returns:
      `[batch, M]` log-probabilities in the compute dtype (column j = item j+1).
    """

    def __init__(self, from_scores=False, **kwargs):
        super().__init__(**kwargs)
        self.from_scores = bool(from_scores)

    def build(self, input_shape):
        _, session_shape, candidates_shape, _ = input_shape
        session_dim, item_dim = session_shape[-1], candidates_shape[-1]
        # From the model's scores, the head starts as the model's softmax (zero attention
        # vector and gate kernel).
        starts_neutral = "zeros" if self.from_scores else "glorot_uniform"
        self.item_kernel = self.add_weight(name="w_r", shape=(item_dim, session_dim),
                                           initializer="glorot_uniform")
        self.session_kernel = self.add_weight(name="u_r", shape=(session_dim, session_dim),
                                              initializer="glorot_uniform")
        self.attention_vector = self.add_weight(name="u", shape=(session_dim,),
                                                initializer=starts_neutral)
        self.gate_kernel = self.add_weight(name="w_g", shape=(session_dim, 2),
                                           initializer=starts_neutral)
        self.gate_bias = self.add_weight(name="b_g", shape=(2,), initializer="zeros")
        if self.from_scores:
            self.score_weight = self.add_weight(name="alpha", shape=(), initializer="ones")
            self.recency_weight = self.add_weight(name="beta", shape=(), initializer="zeros")

    def mode_and_position_log_weights(self, item_ids, session, candidates, log_normalizer):
        """(log [g_r, g_e] float32 [batch, 2], log a float32 [batch, len], -inf at padding).

        `log_normalizer` (float32 [batch], logsumexp of z over all M items) is read only
        `from_scores` (None will do otherwise); there the explore weight is
        log g_e - log(1 - m), the renormalisation of P_e folded in.
        """
        item_ids = tf.cast(item_ids, tf.int32)
        mask = item_ids > 0  # [batch, len]
        items = tf.gather(candidates, tf.maximum(item_ids - 1, 0))  # [batch, len, d]
        hidden = tf.tanh(tf.einsum("bld,de->ble", items, self.item_kernel)
                         + tf.matmul(session, self.session_kernel)[:, None, :])
        energies = tf.einsum("ble,e->bl", hidden, self.attention_vector)  # [batch, len]
        wide = precision.at_least_float32(energies.dtype)
        energies = tf.cast(energies, wide)
        gate_logits = tf.cast(tf.matmul(session, self.gate_kernel) + self.gate_bias, wide)
        if self.from_scores:
            prefix_scores = tf.cast(tf.einsum("bld,bd->bl", items, session), wide)  # z_{v_i}
            later = tf.cumsum(tf.cast(mask, wide), axis=1, exclusive=True, reverse=True)
            energies += (tf.cast(self.score_weight, wide) * prefix_scores
                         + tf.cast(self.recency_weight, wide) * tf.math.log1p(later))
            log_mass = tf.minimum(self._log_prefix_mass(item_ids, prefix_scores)
                                  - tf.cast(log_normalizer, wide), MAX_LOG_PREFIX_MASS)
            log_rest = tf.math.log(-tf.math.expm1(log_mass))  # log(1 - m)
            gate_logits += tf.stack([log_mass, log_rest], axis=1)
        energies = tf.where(mask, energies, NEG_INF)
        # A row without items (served by popularity upstream) cannot repeat: every position
        # weighs 0 and the gate sends everything to exploring, P = P_e.
        has_items = tf.reduce_any(mask, axis=1, keepdims=True)  # [batch, 1]
        position_log_weights = tf.where(
            has_items, tf.nn.log_softmax(tf.where(has_items, energies, 0.0), axis=1), NEG_INF)
        log_modes = tf.nn.log_softmax(gate_logits, axis=1)
        if self.from_scores:
            log_modes -= tf.stack([tf.zeros_like(log_rest), log_rest], axis=1)
        log_modes = tf.where(has_items, log_modes, tf.constant([NEG_INF, 0.0], wide))
        return log_modes, position_log_weights

    @staticmethod
    def _log_prefix_mass(item_ids, prefix_scores):
        """logsumexp [batch] of z over the prefix's distinct items (each item's first
        position); VERY_NEGATIVE for a prefix without items."""
        positions = tf.range(tf.shape(item_ids)[1])
        earlier = positions[None, :] < positions[:, None]  # [len, len]: j before i
        seen_before = tf.reduce_any(
            tf.equal(item_ids[:, :, None], item_ids[:, None, :]) & earlier[None], axis=2)
        first = (item_ids > 0) & ~seen_before
        return tf.reduce_logsumexp(tf.where(first, prefix_scores, VERY_NEGATIVE), axis=1)

    def call(self, inputs):
        item_ids, session, candidates, scores = inputs
        log_normalizer = tf.reduce_logsumexp(
            tf.cast(scores, precision.at_least_float32(scores.dtype)), axis=1)
        log_modes, position_log_weights = self.mode_and_position_log_weights(
            item_ids, session, candidates, log_normalizer)
        return tf.cast(self.log_probabilities(item_ids, log_modes, position_log_weights, scores,
                                              1, log_normalizer), self.compute_dtype)

    def log_probabilities(self, item_ids, log_modes, position_log_weights, scores, first_item,
                          log_normalizer):
        """log P float32 [batch, n] of items `first_item`..`first_item` + n - 1 (a slice of
        the catalogue, so that a large one is scored a chunk at a time).

        Args:
          item_ids: int [batch, len], the prefixes.
          log_modes, position_log_weights: `mode_and_position_log_weights`.
          scores: float [batch, n], the model's scores of those items.
          first_item: the item id of column 0 (an int or a scalar tensor).
          log_normalizer: float32 [batch], logsumexp of the scores over all M items.
        """
        wide = log_modes.dtype
        item_ids = tf.cast(item_ids, tf.int32)
        batch, length = tf.shape(item_ids)[0], tf.shape(item_ids)[1]
        width = tf.shape(scores)[1]
        # P_r over the slice: each position's weight added to its item's column; padding
        # and items outside the slice go to one extra segment that is dropped.
        columns = item_ids - tf.cast(first_item, tf.int32)
        inside = (item_ids > 0) & (columns >= 0) & (columns < width)
        rows = tf.repeat(tf.range(batch)[:, None], length, axis=1)  # [batch, len]
        segments = tf.reshape(tf.where(inside, rows * width + columns, batch * width), [-1])

        def per_column(values):  # [batch, len] -> [batch, width], summed per item
            return tf.reshape(tf.math.unsorted_segment_sum(
                tf.reshape(values, [-1]), segments, batch * width + 1)[:-1], [batch, width])

        repeat_probability = per_column(tf.exp(position_log_weights))
        log_explore = tf.cast(scores, wide) - log_normalizer[:, None]
        if self.from_scores:  # the prefix's items are the repeat part's alone
            in_prefix = per_column(tf.cast(inside, wide)) > 0
            log_explore = tf.where(in_prefix, NEG_INF, log_explore)
        return self._mix(log_modes, repeat_probability, log_explore)

    def target_log_likelihood(self, item_ids, session, candidates, target_log_explore, targets):
        """log P(target) [batch] float32, for the loss.

        Args:
          item_ids, session, candidates: as for `call`.
          target_log_explore: float [batch], log softmax(z)[target] (the negative of the
            full-softmax cross-entropy, which computes it without a [batch, M] gradient here).
          targets: int [batch], items 1..M.
        """
        targets = tf.cast(targets, tf.int32)
        wide = precision.at_least_float32(session.dtype)
        log_explore = tf.cast(target_log_explore, wide)
        log_normalizer = None  # read only from scores: z_target - log softmax(z)_target
        if self.from_scores:
            target_scores = tf.reduce_sum(session * tf.gather(candidates, targets - 1), axis=1)
            log_normalizer = tf.cast(target_scores, wide) - log_explore
        log_modes, position_log_weights = self.mode_and_position_log_weights(
            item_ids, session, candidates, log_normalizer)
        is_target = tf.equal(tf.cast(item_ids, tf.int32), targets[:, None])
        repeat_probability = tf.reduce_sum(
            tf.where(is_target, tf.exp(position_log_weights), 0.0), axis=1)  # [batch]
        if self.from_scores:
            log_explore = tf.where(tf.reduce_any(is_target, axis=1), NEG_INF, log_explore)
        return self._mix(log_modes, repeat_probability, log_explore)

    @staticmethod
    def _mix(log_modes, repeat_probability, log_explore):
        """log(g_r P_r + g_e P_e) for P_r given as a probability (0 where no repeat) and
        P_e as a log-probability (-inf where it is 0); shapes [batch] or [batch, M]."""
        expand = (lambda t: t[:, None]) if log_explore.shape.rank == 2 else (lambda t: t)
        repeats = repeat_probability > 0
        # log of a clipped value: finite in the branch tf.where does not take, so its
        # gradient there is 0, not NaN.
        log_repeat = tf.where(repeats, tf.math.log(tf.maximum(repeat_probability, 1e-30)),
                              NEG_INF)
        repeat_term = expand(log_modes[:, 0]) + log_repeat
        explore_term = expand(log_modes[:, 1]) + log_explore
        high = tf.maximum(repeat_term, explore_term)
        low = tf.minimum(repeat_term, explore_term)
        # Both terms -inf (an item neither part gives mass to): -inf, without a NaN.
        finite_high = tf.where(tf.math.is_finite(high), high, 0.0)
        return high + tf.math.log1p(tf.exp(low - finite_high))

    def get_config(self):
        config = super().get_config()
        config.update(from_scores=self.from_scores)
        return config

    def compute_output_shape(self, input_shape):
        return input_shape[3]
