"""SASRec's self-attention block, as the authors' released code computes it."""

import keras
import tensorflow as tf

from mtd_tf.layers.dot_product_attention import attention_mask
from mtd_tf.layers.dot_product_attention import check_heads_and_dropout
from mtd_tf.layers.dot_product_attention import model_width
from mtd_tf.layers.dot_product_attention import multi_head_attention

# The released code's hand-written layer norm (`modules.normalize`) uses 1e-8.
_LAYER_NORM_EPSILON = 1e-8


@keras.saving.register_keras_serializable(package="mtd_tf")
class SASRecBlock(keras.layers.Layer):
    """Causal self-attention plus a point-wise feed-forward network, layer norm first.

    Per block (kang205/SASRec `model.py` and `modules.py`; paper Sec. III-B, III-C):

        q = LayerNorm_1(x)                              (only the queries are normalised)
        A = softmax((q Wq + bq)(x Wk + bk)^T / sqrt(d_head) + masks)   per head
        h = q + dropout(A) (x Wv + bv)                  (heads concatenated, no output
                                                         projection; residual on q)
        f = LayerNorm_2(h)
        out = f + dropout(dropout(ReLU(f W1 + b1)) W2 + b2)

    The masks: a key may receive attention only if it is a real item and not after the
    query (causal). Output rows at padding are set to zero (the code's `seq *= mask`), so
    padding never reaches a real row of a later block; a row without real items yields
    zeros, never NaN.

    Differences between the paper and the code it was run with, where this layer follows
    the code: the projections have biases; keys and values are read from the
    un-normalised input; the attention residual adds the normalised queries `q` (the paper's
    eq. `x + Dropout(g(LayerNorm(x)))` adds `x`); dropout acts on the attention weights
    rather than on the attention output. The FFN width is d (the code's
    `num_units=[hidden_units, hidden_units]`).

    Args:
      num_heads: number of attention heads; must divide the input width `d`.
      dropout: dropout rate in `[0, 1)` (attention weights, both FFN layers).
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      x: float `[batch, max_len, d]`, right-padded.
      mask: bool `[batch, max_len]`, True = real item; None means every position is real.
        Also taken from a Keras mask.
      training: enables dropout.
      return_attention_scores: also return the attention weights `A`.

    Returns:
      `[batch, max_len, d]`, zero at padding; with `return_attention_scores`, also
      `[batch, num_heads, max_len, max_len]` weights (before dropout, zero for padded
      queries and masked keys).

    Reference: Kang and McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018;
    code github.com/kang205/SASRec.
    """

    def __init__(self, num_heads=1, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        check_heads_and_dropout(num_heads, dropout)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.supports_masking = True

    def build(self, input_shape):
        model_dim = model_width(input_shape, self.num_heads)
        policy = self.dtype_policy

        def dense(name, **kwargs):
            # Glorot-uniform kernels and zero biases: tf.layers.dense's and conv1d's defaults.
            return keras.layers.Dense(model_dim, name=name, dtype=policy, **kwargs)

        def layer_norm(name):
            return keras.layers.LayerNormalization(epsilon=_LAYER_NORM_EPSILON, name=name,
                                                   dtype=policy)

        self.attention_norm = layer_norm("attention_norm")  # LayerNorm_1
        self.query_dense = dense("query")  # Wq, bq
        self.key_dense = dense("key")  # Wk, bk
        self.value_dense = dense("value")  # Wv, bv
        self.ffn_norm = layer_norm("ffn_norm")  # LayerNorm_2
        self.ffn_inner = dense("ffn_inner", activation="relu")  # W1, b1
        self.ffn_outer = dense("ffn_outer")  # W2, b2
        for layer in (self.attention_norm, self.query_dense, self.key_dense, self.value_dense,
                      self.ffn_norm, self.ffn_inner, self.ffn_outer):
            layer.build(input_shape)
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout",
                                                      dtype=policy)
        self.ffn_inner_dropout = keras.layers.Dropout(self.dropout, name="ffn_inner_dropout",
                                                      dtype=policy)
        self.ffn_outer_dropout = keras.layers.Dropout(self.dropout, name="ffn_outer_dropout",
                                                      dtype=policy)

    def call(self, x, mask=None, training=None, return_attention_scores=False):
        if mask is None:
            mask = tf.ones(tf.shape(x)[:2], tf.bool)
        mask = tf.cast(mask, tf.bool)  # [B, L]

        queries = self.attention_norm(x)  # [B, L, d]
        context, weights = multi_head_attention(
            self.query_dense(queries), self.key_dense(x), self.value_dense(x),
            attention_mask(mask, causal=True), self.num_heads, self.attention_dropout,
            training=training)  # [B, L, d]
        hidden = self.ffn_norm(queries + context)
        feed_forward = self.ffn_inner_dropout(self.ffn_inner(hidden), training=training)
        feed_forward = self.ffn_outer_dropout(self.ffn_outer(feed_forward), training=training)
        outputs = hidden + feed_forward  # [B, L, d]
        outputs = tf.where(mask[:, :, tf.newaxis], outputs, tf.zeros_like(outputs))
        if return_attention_scores:
            return outputs, weights
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, dropout=self.dropout)
        return config
