"""Masked self-attention block: the paper's intra-session encoder (eq. 1-2)."""

import keras
import tensorflow as tf

from mtd_tf.layers.dot_product_attention import attention_mask
from mtd_tf.layers.dot_product_attention import check_heads_and_dropout
from mtd_tf.layers.dot_product_attention import model_width
from mtd_tf.layers.dot_product_attention import multi_head_attention

# The reference's hand-written layer norm uses 1e-8; Keras's default (1e-3) is not small
# next to the variance of freshly initialised embeddings.
_LAYER_NORM_EPSILON = 1e-8


@keras.saving.register_keras_serializable(package="mtd_tf")
class SelfAttentionBlock(keras.layers.Layer):
    """Scaled dot-product self-attention plus a position-wise feed-forward network.

    Eq. 1 (attention; per head, no biases, `d_head = d / num_heads`):

        A = softmax(Q K^T / sqrt(d_head) + masks),  Q = x Wq, K = x Wk, V = x Wv
        h = LayerNorm(x + dropout(A V))

    with heads concatenated and projected by `Wo` only when `num_heads > 1` (with one
    head the output is `A V`, as in the reference). Dropout is also applied to `A`.

    Eq. 2 (feed-forward, dropout after both layers as in the reference):

        f = dropout(dropout(ReLU(h W1 + b1)) W2 + b2)
        out = LayerNorm(h + f)

    The masks: a key may receive attention only if it is a real item and, when
    `causal`, not after the query (so item `i` only sees items `1..i`, and a later
    click cannot leak into an earlier representation). Query rows at padding get no
    attention and their output rows are set to zero; a row with no real item yields
    zeros, never NaN.

    Args:
      num_heads: number of attention heads; must divide the input width `d`.
      dropout: dropout rate in `[0, 1)`.
      causal: whether position `i` may only attend to positions `<= i`.
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      x: float `[batch, max_len, d]`, right-padded.
      mask: bool `[batch, max_len]`, True = real item (the real items are a prefix of
        each row); None means every position is real. Also taken from a Keras mask.
      training: enables dropout.
      return_attention_scores: also return the attention weights `A`.

    Returns:
      `[batch, max_len, d]`, zero at padding; with `return_attention_scores`, also
      `[batch, num_heads, max_len, max_len]` weights (before dropout, zero for padded
      queries and masked keys).

    Reference: Huang et al., "Graph-Enhanced Multi-Task Learning of Multi-Level
    Transition Dynamics for Session-based Recommendation", AAAI 2021, eq. 1-2.
    """

    def __init__(self, num_heads=1, dropout=0.2, causal=True, **kwargs):
        super().__init__(**kwargs)
        check_heads_and_dropout(num_heads, dropout)
        if not isinstance(causal, bool):
            raise ValueError(f"causal must be a bool, got {causal!r}")
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.causal = causal
        self.supports_masking = True

    def build(self, input_shape):
        model_dim = model_width(input_shape, self.num_heads)

        def dense(name, **kwargs):
            return keras.layers.Dense(model_dim, name=name, dtype=self.dtype_policy, **kwargs)

        def layer_norm(name):
            return keras.layers.LayerNormalization(
                epsilon=_LAYER_NORM_EPSILON, name=name, dtype=self.dtype_policy
            )

        def dropout(name):
            return keras.layers.Dropout(self.dropout, name=name, dtype=self.dtype_policy)

        self.query_dense = dense("query", use_bias=False)  # Wq
        self.key_dense = dense("key", use_bias=False)  # Wk
        self.value_dense = dense("value", use_bias=False)  # Wv
        weighted = [self.query_dense, self.key_dense, self.value_dense]
        if self.num_heads > 1:
            self.output_dense = dense("attention_output", use_bias=False)  # Wo
            weighted.append(self.output_dense)
        self.ffn_inner = dense("ffn_inner", activation="relu")  # W1, b1
        self.ffn_outer = dense("ffn_outer")  # W2, b2
        self.attention_norm = layer_norm("attention_norm")
        self.ffn_norm = layer_norm("ffn_norm")
        weighted += [self.ffn_inner, self.ffn_outer, self.attention_norm, self.ffn_norm]
        for layer in weighted:
            layer.build(input_shape)
        self.attention_dropout = dropout("attention_dropout")
        self.attention_output_dropout = dropout("attention_output_dropout")
        self.ffn_inner_dropout = dropout("ffn_inner_dropout")
        self.ffn_outer_dropout = dropout("ffn_outer_dropout")

    def call(self, x, mask=None, training=None, return_attention_scores=False):
        batch_size, max_len = tf.shape(x)[0], tf.shape(x)[1]
        if mask is None:
            mask = tf.ones([batch_size, max_len], tf.bool)
        mask = tf.cast(mask, tf.bool)  # [B, L]

        allowed = attention_mask(mask, self.causal)  # [B, 1, L_query, L_key]
        context, weights = multi_head_attention(
            self.query_dense(x), self.key_dense(x), self.value_dense(x), allowed,
            self.num_heads, self.attention_dropout, training=training)  # [B, L, d]
        if self.num_heads > 1:
            context = self.output_dense(context)
        hidden = self.attention_norm(x + self.attention_output_dropout(context, training=training))

        feed_forward = self.ffn_inner_dropout(self.ffn_inner(hidden), training=training)
        feed_forward = self.ffn_outer_dropout(self.ffn_outer(feed_forward), training=training)
        outputs = self.ffn_norm(hidden + feed_forward)  # [B, L, d]
        outputs = tf.where(mask[:, :, tf.newaxis], outputs, tf.zeros_like(outputs))
        if return_attention_scores:
            return outputs, weights
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, dropout=self.dropout, causal=self.causal)
        return config
