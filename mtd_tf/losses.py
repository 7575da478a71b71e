"""L_in: softmax cross-entropy of the next item over the whole catalogue (SPEC section 2.7),
and the L2 term that both L_in and L_co (eq. 8) add.

The scoring matmul and the softmax over M items are the bulk of a training step; they are
compiled with XLA as one fused kernel. Their shapes ([batch, d] x [M, d]) do not depend on
the session length, so the kernel compiles once per batch size, not per padded width.
"""

import tensorflow as tf


@tf.function(jit_compile=True)
def full_softmax_cross_entropy(session, item_embeddings, targets):
    """Per-example -log softmax(q E^T)[target].

    Args:
      session: float32 [batch, d], session vectors q.
      item_embeddings: float32 [M, d], row m-1 is item m.
      targets: int32 [batch], next items in 1..M.

    Returns:
      float32 [batch].
    """
    scores = tf.matmul(session, item_embeddings, transpose_b=True)  # [batch, M]
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets - 1, logits=scores)


def l2_penalty(variables):
    """||Theta||^2, the sum of squares of every entry of `variables` (scalar float32)."""
    return tf.add_n([tf.reduce_sum(tf.square(variable)) for variable in variables])
