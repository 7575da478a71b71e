"""Masked multi-head scaled dot-product attention over right-padded sessions: the part the
self-attention blocks share (`SelfAttentionBlock`, MTD's eq. 1; `SASRecBlock`).

The blocks differ in what they project, normalise and add back; the attention itself (which
keys a query may see, the per-head softmax, the dropout on its weights) and the checks of
its arguments are the same, so they live here once.
"""

import math
import numbers

import tensorflow as tf

from mtd_tf.layers.masking import masked_softmax


def check_heads_and_dropout(num_heads, dropout):
    """Raises `ValueError` quoting the bad value unless `num_heads` is a positive integer and
    `dropout` a rate in `[0, 1)`: a self-attention block's constructor arguments."""
    if (isinstance(num_heads, bool) or not isinstance(num_heads, numbers.Integral)
            or num_heads < 1):
        raise ValueError(f"num_heads must be a positive integer, got {num_heads!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


def model_width(input_shape, num_heads):
    """The input width d of a self-attention block, from its build shape `[..., d]`; raises
    `ValueError` unless d is known and `num_heads` divides it (each head reads d / H
    columns)."""
    model_dim = input_shape[-1]
    if model_dim is None:
        raise ValueError(f"the last input dimension must be known, got {input_shape}")
    if model_dim % num_heads:
        raise ValueError(f"input width d={model_dim} is not divisible by num_heads={num_heads}")
    return model_dim


def attention_mask(mask, causal):
    """Which key each query may attend to.

    Args:
      mask: bool `[batch, max_len]`, True = real item.
      causal: also hide the keys after the query (item `i` then sees items `1..i`).

    Returns:
      bool `[batch, 1, max_len, max_len]` (query, key): True where the query and the key
      are real items (and, when `causal`, key <= query); broadcasts over heads.
    """
    mask = tf.cast(mask, tf.bool)
    allowed = mask[:, tf.newaxis, :, tf.newaxis] & mask[:, tf.newaxis, tf.newaxis, :]
    if causal:
        positions = tf.range(tf.shape(mask)[1])
        allowed &= positions[:, tf.newaxis] >= positions[tf.newaxis, :]
    return allowed


def multi_head_attention(query, key, value, allowed, num_heads, weights_dropout,
                         training=None):
    """`softmax(Q_h K_h^T / sqrt(d_head) + masks) V_h` per head, heads concatenated.

    Args:
      query, key, value: float `[batch, max_len, d]`, already projected; `d` divisible by
        `num_heads`, head `h` reads columns `h*d_head .. (h+1)*d_head - 1`.
      allowed: bool broadcastable to `[batch, num_heads, max_len, max_len]`
        (`attention_mask`); a query with no allowed key gets all-zero weights, never NaN.
      num_heads: number of heads H.
      weights_dropout: a dropout layer applied to the weights before they mix the values.
      training: enables the dropout.

    Returns:
      context `[batch, max_len, d]` (no output projection) and the weights
      `[batch, H, max_len, max_len]` before dropout.
    """
    head_dim = query.shape[-1] // num_heads
    query, key, value = (_split_heads(x, num_heads, head_dim) for x in (query, key, value))
    scale = tf.cast(1.0 / math.sqrt(head_dim), query.dtype)
    scores = tf.matmul(query, key, transpose_b=True) * scale  # [B, H, L, L]
    weights = masked_softmax(scores, allowed)
    context = tf.matmul(weights_dropout(weights, training=training), value)  # [B, H, L, d_head]
    context = tf.transpose(context, [0, 2, 1, 3])  # [B, L, H, d_head]
    shape = tf.shape(context)
    return tf.reshape(context, [shape[0], shape[1], num_heads * head_dim]), weights


def _split_heads(projected, num_heads, head_dim):
    """`[B, L, d]` -> `[B, H, L, d_head]`."""
    shape = tf.shape(projected)
    projected = tf.reshape(projected, [shape[0], shape[1], num_heads, head_dim])
    return tf.transpose(projected, [0, 2, 1, 3])
