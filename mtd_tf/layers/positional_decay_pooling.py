"""Positional decay pooling: recent items weigh more, with no learned weights (eq. 4)."""

import math
import numbers

import keras
import tensorflow as tf

from mtd_tf.layers.masking import masked_softmax, positions_from_end
from mtd_tf.layers.precision import at_least_float32


@keras.saving.register_keras_serializable(package="mtd_tf")
class PositionalDecayPooling(keras.layers.Layer):
    """Pools a session with weights that decay exponentially with distance from its end.

    Eq. 4 (the printed exponent is a typo; this is the reference's form), over the real
    positions `i = 1..I` of each session:

        omega_i = softmax_i(-decay * (I - i + 1)),   p = sum_i omega_i x_i

    so the last real item has the largest weight and each step back divides it by
    `exp(decay)`. `decay = 0` gives the mean of the real items.

    Args:
      decay: the paper's `lambda`, `>= 0`; 0.75 is the reference's value.
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      x: float `[batch, max_len, d]`, right-padded.
      mask: bool `[batch, max_len]`, True = real item (a prefix of each row); None
        means every position is real. Also taken from a Keras mask, which is consumed.
      training: unused; accepted for a uniform call signature.
      return_attention_scores: also return `omega`.

    Returns:
      `p`, `[batch, d]`; with `return_attention_scores`, also `omega` `[batch, max_len]`
      (zero at padding; all zero, with `p = 0`, for a row with no real item).

    Reference: Huang et al., AAAI 2021, eq. 4.
    """

    def __init__(self, decay=0.75, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(decay, bool)
            or not isinstance(decay, numbers.Real)
            or not math.isfinite(decay)
            or decay < 0
        ):
            raise ValueError(f"decay must be a finite number >= 0, got {decay!r}")
        self.decay = float(decay)

    def call(self, x, mask=None, training=None, return_attention_scores=False):
        if mask is None:
            mask = tf.ones(tf.shape(x)[:2], tf.bool)
        mask = tf.cast(mask, tf.bool)  # [B, L]
        # The weights depend on the mask alone: in float32 at least, so that a 16-bit
        # policy rounds omega once rather than the decay, its products and the softmax.
        positions = tf.cast(positions_from_end(mask), at_least_float32(x.dtype))  # [B, L]
        omega = tf.cast(masked_softmax(-self.decay * positions, mask), x.dtype)
        pooled = tf.einsum("bl,bld->bd", omega, x)  # [B, d]
        if return_attention_scores:
            return pooled, omega
        return pooled

    def compute_mask(self, inputs, previous_mask):
        # The time axis is pooled away.
        return None

    def get_config(self):
        config = super().get_config()
        config.update(decay=self.decay)
        return config
