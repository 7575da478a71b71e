"""MTD's intra-session network: from a right-padded prefix to scores over all items (its
hyper-parameters are `mtd_config.MTDConfig`).

Composes the layers of `mtd_tf.layers` (DESIGN.md section 2). The cross-session graph
module (`mtd_tf.models.graph_infomax`) talks to this model only through the item table
(`item_embeddings`), which it reads as GCN input and overwrites with the GCN output.
Scoring and the protocol methods come from `next_item.NextItemModel`.
"""

import keras
import tensorflow as tf

from mtd_tf.layers import AttentiveAggregation
from mtd_tf.layers import PositionalDecayPooling
from mtd_tf.layers import SelfAttentionBlock
from mtd_tf.layers import masking
from mtd_tf.models.mtd_config import MTDConfig
from mtd_tf.models.next_item import NextItemModel


@keras.saving.register_keras_serializable(package="mtd_tf")
class MTDModel(NextItemModel):
    """Scores every item 1..M as the next click of a session prefix.

    For a prefix v_1..v_I (right-padded with 0):
      e_i = E[v_i] + P[I - i + 1]                      (input, dropout)
      x = SelfAttentionBlock^num_blocks(e)              (eq. 1-2)
      x* = AttentiveAggregation(x), p = PositionalDecayPooling(x)   (eq. 3-4)
      q = dropout(W_c [x_I ; x* ; p])                   (session vector)
      z_m = q . E[m] for m = 1..M                       (scores)
    With `score_scale = s > 0` (an option beyond the paper), scores are scaled cosines
    z_m = s * q.E[m] / (|q| |E[m]|): item popularity then cannot ride on embedding norms,
    and s sets the softmax temperature.
    Session encoders: `vanilla` drops self-attention, positions and pooling
    (q = W_c [e_I ; x*] over plain embeddings; the `va` variant); `vanilla_decay` is
    `vanilla` plus positional-decay pooling (`at`); `self_attention` is the full encoder
    (`mtd`, `lo` and `ga`, which differ in the graph module only).

    Args:
      num_items: M, the catalogue size; ids are 1..M and 0 is padding.
      embedding_dim: d.
      max_len: longest prefix the position table covers (older items are cut by the data).
      num_blocks: stacked self-attention blocks.
      num_heads: attention heads per block.
      dropout: rate for input, attention, FFN and session vector.
      decay: lambda of the positional decay pooling.
      session_encoder: one of `SESSION_ENCODERS`.
      aggregation_product: the reference's multiplicative aggregation instead of eq. 3's sum.
      score_scale: 0 for the paper's dot-product scores, s > 0 for s times their cosine.
      repeat_head: add a `RepeatExploreHead` (`repeat_head` attribute; None without): the
        model then outputs log-probabilities of its repeat/explore mixture.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, num_blocks=1, num_heads=1,
                 dropout=0.2, decay=0.75, session_encoder="self_attention",
                 aggregation_product=False, score_scale=0.0, repeat_head=False, **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, max_len=max_len,
                         score_scale=score_scale, repeat_head=repeat_head, **kwargs)
        # The one set of range checks, shared with the CLI (a ConfigError is a ValueError).
        MTDConfig(embedding_dim=embedding_dim, max_len=max_len, num_blocks=num_blocks,
                  num_heads=num_heads, dropout=dropout, decay=decay,
                  session_encoder=session_encoder, aggregation_product=aggregation_product,
                  score_scale=score_scale, repeat_head=repeat_head)
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.dropout = dropout
        self.decay = decay
        self.session_encoder = session_encoder
        self.aggregation_product = aggregation_product

        self.uses_full_encoder = session_encoder == "self_attention"
        self.uses_decay_pooling = session_encoder != "vanilla"
        # Every sublayer computes under this model's dtype policy (mixed precision included).
        policy = self.dtype_policy
        self.input_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.session_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.set_attention_blocks([
            SelfAttentionBlock(num_heads=num_heads, dropout=dropout, name=f"self_attention_{i}",
                               dtype=policy)
            for i in range(num_blocks if self.uses_full_encoder else 0)])
        self.aggregation = AttentiveAggregation(use_product=aggregation_product,
                                                name="aggregation", dtype=policy)
        self.decay_pooling = (PositionalDecayPooling(decay=decay, name="decay_pooling",
                                                     dtype=policy)
                              if self.uses_decay_pooling else None)
        self.session_projection = keras.layers.Dense(embedding_dim, use_bias=False, name="w_c",
                                                     dtype=policy)

    def build_encoder(self):
        d = self.embedding_dim
        if self.uses_full_encoder:
            # Row 0 is the padding position, rows 1..max_len count from the session's end.
            self.position_embeddings = self.add_weight(
                name="position_embeddings", shape=(self.max_len + 1, d),
                initializer=keras.initializers.RandomNormal(stddev=d ** -0.5))
        sequence_shape = (None, None, d)
        for block in self.attention_blocks:
            block.build(sequence_shape)
        self.aggregation.build(sequence_shape)
        if self.decay_pooling is not None:
            self.decay_pooling.build(sequence_shape)
        parts = 3 if self.uses_decay_pooling else 2
        self.session_projection.build((None, parts * d))

    def encode_session(self, item_ids, training=None, return_attention_scores=False):
        """Session vector q.

        Args:
          item_ids: int [batch, len], right-padded with 0, ids in 0..M.
          training: dropout on or off.
          return_attention_scores: also return a dict of the layers' weights for inspection.

        Returns:
          q: float32 [batch, d] (and the dict of attention weights).
        """
        item_ids = tf.cast(item_ids, tf.int32)
        mask = item_ids > 0  # [batch, len], True = real item
        x = self.lookup(item_ids)  # [batch, len, d]
        weights = {}
        if self.uses_full_encoder:
            positions = masking.positions_from_end(mask)  # [batch, len], 0 at padding
            positions = tf.minimum(positions, self.max_len)
            x = x + tf.gather(self.position_embeddings, positions) * tf.cast(mask, x.dtype)[..., None]
        x = self.input_dropout(x, training=training)
        for index, block in enumerate(self.attention_blocks):
            x, weights[f"self_attention_{index}"] = block(
                x, mask=mask, training=training, return_attention_scores=True)
        last = masking.gather_last(x, mask)  # [batch, d]
        aggregated, weights["aggregation"] = self.aggregation(
            x, mask=mask, training=training, return_attention_scores=True)
        parts = [last, aggregated]
        if self.decay_pooling is not None:
            pooled, weights["decay_pooling"] = self.decay_pooling(
                x, mask=mask, training=training, return_attention_scores=True)
            parts.append(pooled)
        session = self.session_projection(tf.concat(parts, axis=-1))  # [batch, d]
        session = self.session_dropout(session, training=training)
        if return_attention_scores:
            return session, weights
        return session

    def get_config(self):
        config = super().get_config()
        config.update(
            num_blocks=self.num_blocks, num_heads=self.num_heads, dropout=self.dropout,
            decay=self.decay, session_encoder=self.session_encoder,
            aggregation_product=self.aggregation_product)
        return config
