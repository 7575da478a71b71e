"""Padding-mask helpers shared by the session layers and the model.

Sessions arrive right-padded: `mask` is `[batch, max_len]`, True (or non-zero) marks a
real item and the real items of a row are a prefix of it. The paper counts positions
from the end of a session (its eq. 4 and the position embedding both use `I - i + 1`),
and several parts of the model read the *last real* item `x_I`, which is not the last
column of a padded batch. These helpers compute both from the mask alone so every layer
agrees on them.
"""

import tensorflow as tf

from mtd_tf.layers.precision import at_least_float32


def positions_from_end(mask):
    """Position of each real item counted from the end of its session: `I - i + 1`.

    Counted as "real items at or after this one", so it needs no lengths and is exact
    for any mask, not only right-padded ones.

    Args:
      mask: `[batch, max_len]` bool (or 0/1), True = real item.

    Returns:
      int32 `[batch, max_len]`: 1 for the last real item, 2 for the one before, ...;
      0 at padding.
    """
    real = tf.cast(tf.cast(mask, tf.bool), tf.int32)  # [B, L]
    return tf.cumsum(real, axis=1, reverse=True) * real


def last_real_index(mask):
    """Column of the last real item of each row (`I - 1`, 0-based).

    Args:
      mask: `[batch, max_len]` bool (or 0/1), True = real item.

    Returns:
      int32 `[batch]`; 0 for a row with no real item.
    """
    mask = tf.cast(mask, tf.bool)
    columns = tf.range(tf.shape(mask)[1], dtype=tf.int32)  # [L]
    return tf.reduce_max(tf.where(mask, columns[tf.newaxis, :], 0), axis=1)


def gather_last(x, mask):
    """Row of `x` at the last real item of each session (`x_I` in the paper).

    Args:
      x: `[batch, max_len, d]`.
      mask: `[batch, max_len]` bool (or 0/1), True = real item.

    Returns:
      `[batch, d]`; for a row with no real item, `x[b, 0]`.
    """
    return tf.gather(x, last_real_index(mask), axis=1, batch_dims=1)


def masked_softmax(logits, mask):
    """Softmax over the last axis restricted to positions where `mask` is True.

    Masked logits are replaced (not offset) by the dtype's lowest value, so their
    weight underflows to exactly 0 and a fully masked row never sees `-inf - -inf`;
    the result is then zeroed where masked, so a fully masked row gets all-zero
    weights instead of NaN. float16 and bfloat16 logits (mixed-precision policies) are
    normalised in float32 (`mtd_tf.layers.precision`); only the weights are rounded back.

    Args:
      logits: float `[..., n]`.
      mask: bool broadcastable to `logits`, True = may receive weight.

    Returns:
      `[..., n]` weights in the dtype of `logits`, summing to 1 over the unmasked
      positions of each row.
    """
    mask = tf.broadcast_to(tf.cast(mask, tf.bool), tf.shape(logits))
    wide_logits = tf.cast(logits, at_least_float32(logits.dtype))
    lowest = tf.constant(wide_logits.dtype.min, dtype=wide_logits.dtype)
    weights = tf.nn.softmax(tf.where(mask, wide_logits, lowest), axis=-1)
    return tf.cast(tf.where(mask, weights, tf.zeros_like(weights)), logits.dtype)
