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


@keras.saving.register_keras_serializable(package="mtd_tf")
class RepeatExploreHead(keras.layers.Layer):
    """log P(v) of every item v under the repeat/explore mixture.

    For a prefix v_1..v_I (right-padded with 0) with h_i = C[v_i] (the model's candidate
    vector of item v_i), session vector s and the model's scores z over all M items:

      e_i = u^T tanh(W_r h_i + U_r s),  a = softmax(e) over the real positions  (repeat attention)
      P_r(v) = sum_{i: v_i = v} a_i                                  (repeated items pooled)
      P_e(v) = softmax(z)_v                                          (explore: the model's)
      [g_r, g_e] = softmax(W_g s + b_g)    (mode gate; [0, 1] for a prefix without items)
      P(v) = g_r P_r(v) + g_e P_e(v)

    The result is log P, computed as logaddexp(log g_r + log P_r(v), log g_e + log_softmax(z)_v),
    so it is exact (and ranks like z) where P_r(v) = 0, and training takes
    -log P(target) as its loss. The mixture is computed in float32 under a mixed policy.

    Args:
      **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
      inputs: `(item_ids, session, candidates, scores)`: item_ids int `[batch, len]` in
        0..M (0 = padding), session float `[batch, d]`, candidates float `[M, d]` (row j =
        item j+1), scores float `[batch, M]`.

    Returns:
      `[batch, M]` log-probabilities in the compute dtype (column j = item j+1).
    """

    def build(self, input_shape):
        _, session_shape, candidates_shape, _ = input_shape
        session_dim, item_dim = session_shape[-1], candidates_shape[-1]
        self.item_kernel = self.add_weight(name="w_r", shape=(item_dim, session_dim),
                                           initializer="glorot_uniform")
        self.session_kernel = self.add_weight(name="u_r", shape=(session_dim, session_dim),
                                              initializer="glorot_uniform")
        self.attention_vector = self.add_weight(name="u", shape=(session_dim,),
                                                initializer="glorot_uniform")
        self.gate_kernel = self.add_weight(name="w_g", shape=(session_dim, 2),
                                           initializer="glorot_uniform")
        self.gate_bias = self.add_weight(name="b_g", shape=(2,), initializer="zeros")

    def mode_and_position_log_weights(self, item_ids, session, candidates):
        """(log [g_r, g_e] float32 [batch, 2], log a float32 [batch, len], -inf at padding)."""
        item_ids = tf.cast(item_ids, tf.int32)
        mask = item_ids > 0  # [batch, len]
        items = tf.gather(candidates, tf.maximum(item_ids - 1, 0))  # [batch, len, d]
        hidden = tf.tanh(tf.einsum("bld,de->ble", items, self.item_kernel)
                         + tf.matmul(session, self.session_kernel)[:, None, :])
        energies = tf.einsum("ble,e->bl", hidden, self.attention_vector)  # [batch, len]
        wide = precision.at_least_float32(energies.dtype)
        energies = tf.where(mask, tf.cast(energies, wide), NEG_INF)
        # A row without items (served by popularity upstream) cannot repeat: every position
        # weighs 0 and the gate sends everything to exploring, P = P_e.
        has_items = tf.reduce_any(mask, axis=1, keepdims=True)  # [batch, 1]
        position_log_weights = tf.where(
            has_items, tf.nn.log_softmax(tf.where(has_items, energies, 0.0), axis=1), NEG_INF)
        gate_logits = tf.matmul(session, self.gate_kernel) + self.gate_bias  # [batch, 2]
        log_modes = tf.where(has_items, tf.nn.log_softmax(tf.cast(gate_logits, wide), axis=1),
                             tf.constant([NEG_INF, 0.0], wide))
        return log_modes, position_log_weights

    def call(self, inputs):
        item_ids, session, candidates, scores = inputs
        log_modes, position_log_weights = self.mode_and_position_log_weights(
            item_ids, session, candidates)
        log_normalizer = tf.reduce_logsumexp(tf.cast(scores, log_modes.dtype), axis=1)
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
        segments = tf.where(inside, rows * width + columns, batch * width)
        repeat_probability = tf.reshape(tf.math.unsorted_segment_sum(
            tf.reshape(tf.exp(position_log_weights), [-1]), tf.reshape(segments, [-1]),
            batch * width + 1)[:-1], [batch, width])
        log_explore = tf.cast(scores, wide) - log_normalizer[:, None]
        return self._mix(log_modes, repeat_probability, log_explore)

    def target_log_likelihood(self, item_ids, session, candidates, target_log_explore, targets):
        """log P(target) [batch] float32, for the loss.

        Args:
          item_ids, session, candidates: as for `call`.
          target_log_explore: float [batch], log softmax(z)[target] (the negative of the
            full-softmax cross-entropy, which computes it without a [batch, M] gradient here).
          targets: int [batch], items 1..M.
        """
        log_modes, position_log_weights = self.mode_and_position_log_weights(
            item_ids, session, candidates)
        is_target = tf.equal(tf.cast(item_ids, tf.int32), tf.cast(targets, tf.int32)[:, None])
        repeat_probability = tf.reduce_sum(
            tf.where(is_target, tf.exp(position_log_weights), 0.0), axis=1)  # [batch]
        return self._mix(log_modes, repeat_probability,
                         tf.cast(target_log_explore, log_modes.dtype))

    @staticmethod
    def _mix(log_modes, repeat_probability, log_explore):
        """log(g_r P_r + g_e P_e) for P_r given as a probability (0 where no repeat) and
        P_e as a log-probability; shapes [batch] or [batch, M]."""
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
        return high + tf.math.log1p(tf.exp(low - high))

    def compute_output_shape(self, input_shape):
        return input_shape[3]
