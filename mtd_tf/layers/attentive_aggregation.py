"""Attentive aggregation: the session's main interest, queried by its last item (eq. 3)."""

import keras
import tensorflow as tf

from mtd_tf.layers.masking import gather_last, masked_softmax


@keras.saving.register_keras_serializable(package="mtd_tf")
class AttentiveAggregation(keras.layers.Layer):
    """Pools a session's item representations with weights set by its last item.

    Eq. 3, over the real positions `i = 1..I` of each session:

        alpha_i = softmax_i(g^T sigmoid(W3 x_I + W4 x_i)),   x* = sum_i alpha_i x_i

    `x_I` is the row of the last *real* item (not the last column of the padded batch),
    `W3`, `W4` are `d x d` without bias and `g` is a `d` vector. With `use_product=True`
    the gate is `sigmoid((W3 x_I) * (W4 x_i))`, as in the authors' code.

    Args:
      use_product: multiply instead of add inside the sigmoid (the reference's form).
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      x: float `[batch, max_len, d]`, right-padded.
      mask: bool `[batch, max_len]`, True = real item (a prefix of each row); None
        means every position is real. Also taken from a Keras mask, which is consumed.
      training: unused (no dropout); accepted for a uniform call signature.
      return_attention_scores: also return `alpha`.

    Returns:
      `x*`, `[batch, d]`; with `return_attention_scores`, also `alpha` `[batch, max_len]`
      (zero at padding; all zero, with `x* = 0`, for a row with no real item).

    Reference: Huang et al., AAAI 2021, eq. 3.
    """

    def __init__(self, use_product=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(use_product, bool):
            raise ValueError(f"use_product must be a bool, got {use_product!r}")
        self.use_product = use_product

    def build(self, input_shape):
        model_dim = input_shape[-1]
        if model_dim is None:
            raise ValueError(f"the last input dimension must be known, got {input_shape}")
        self.last_item_kernel = self.add_weight(
            name="last_item_kernel", shape=(model_dim, model_dim), initializer="glorot_uniform"
        )  # W3
        self.item_kernel = self.add_weight(
            name="item_kernel", shape=(model_dim, model_dim), initializer="glorot_uniform"
        )  # W4
        self.score_vector = self.add_weight(
            name="score_vector", shape=(model_dim,), initializer="glorot_uniform"
        )  # g

    def call(self, x, mask=None, training=None, return_attention_scores=False):
        if mask is None:
            mask = tf.ones(tf.shape(x)[:2], tf.bool)
        mask = tf.cast(mask, tf.bool)  # [B, L]
        last_query = tf.matmul(gather_last(x, mask), self.last_item_kernel)  # [B, d]
        item_keys = tf.einsum("bld,de->ble", x, self.item_kernel)  # [B, L, d]
        if self.use_product:
            gate = tf.sigmoid(last_query[:, tf.newaxis, :] * item_keys)
        else:
            gate = tf.sigmoid(last_query[:, tf.newaxis, :] + item_keys)
        logits = tf.einsum("ble,e->bl", gate, self.score_vector)  # [B, L]
        alpha = masked_softmax(logits, mask)
        pooled = tf.einsum("bl,bld->bd", alpha, x)  # [B, d]
        if return_attention_scores:
            return pooled, alpha
        return pooled

    def compute_mask(self, inputs, previous_mask):
        # The time axis is pooled away.
        return None

    def get_config(self):
        config = super().get_config()
        config.update(use_product=self.use_product)
        return config
