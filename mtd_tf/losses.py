"""L_in: softmax cross-entropy of the next item over the whole catalogue (DESIGN.md section 2.7),
and the L2 term that both L_in and L_co (eq. 8) add.

The three full-softmax matmuls (scores q E^T and the two gradients) and the softmax over
M items are the bulk of a training step, so the gradient is written by hand: the matmuls
run as plain `tf.matmul` (oneDNN, the fastest kernels on CPU), and the softmax, the loss
and `dL/dscores` are one XLA-fused kernel over `[batch, M]`, computed once in the forward
pass. The fused kernel's shapes do not depend on the session length, so it compiles once
per batch size. `matmul_dtype=tf.bfloat16` runs the three matmuls in bfloat16 (float32
accumulation; AMX/tensor cores); the softmax and the loss stay float32.
"""

import tensorflow as tf

MATMUL_DTYPES = {"float32": tf.float32, "bfloat16": tf.bfloat16}


@tf.function(jit_compile=True)
def _softmax_loss_and_score_gradient(scores, labels):
    """Loss `logsumexp(z) - z[label]` and `dloss/dz = softmax(z) - onehot(label)`.

    Args:
      scores: [batch, M] in the matmul dtype.
      labels: int32 [batch], columns 0..M-1.

    Returns:
      (float32 [batch], [batch, M] in the dtype of `scores`).
    """
    scores32 = tf.cast(scores, tf.float32)
    # One exp per score: exp(z - max) is kept and reused for both the normaliser and the
    # softmax (a logsumexp followed by exp(z - logsumexp) costs two, about 40% slower).
    row_max = tf.reduce_max(scores32, axis=1)  # [batch]
    shifted_exp = tf.exp(scores32 - row_max[:, None])  # [batch, M], in (0, 1]
    normalizer = tf.reduce_sum(shifted_exp, axis=1)  # [batch], >= 1
    target_scores = tf.gather(scores32, labels, axis=1, batch_dims=1)  # [batch]
    loss = tf.math.log(normalizer) + row_max - target_scores
    one_hot = tf.one_hot(labels, tf.shape(scores)[1], dtype=tf.float32)
    softmax = shifted_exp * (1.0 / normalizer)[:, None]
    return loss, tf.cast(softmax - one_hot, scores.dtype)


def full_softmax_cross_entropy(session, item_embeddings, targets, matmul_dtype=tf.float32):
    """Per-example -log softmax(q E^T)[target], differentiable in `session` and the table.

    Args:
      session: float32 [batch, d], session vectors q.
      item_embeddings: float32 [M, d], row m-1 is item m.
      targets: int32 [batch], next items in 1..M.
      matmul_dtype: tf.float32 (exact) or tf.bfloat16 for the three matmuls.

    Returns:
      float32 [batch].
    """

    @tf.custom_gradient
    def cross_entropy(session, item_embeddings):
        session_cast = tf.cast(session, matmul_dtype)
        table_cast = tf.cast(item_embeddings, matmul_dtype)
        scores = tf.matmul(session_cast, table_cast, transpose_b=True)  # [batch, M]
        loss, score_gradient = _softmax_loss_and_score_gradient(scores, targets - 1)

        def gradient(upstream):  # upstream: [batch]
            # Row weights are applied to the [batch, d] operands, never to [batch, M].
            grad_session = upstream[:, None] * tf.cast(
                tf.matmul(score_gradient, table_cast), tf.float32)  # [batch, d]
            weighted_session = tf.cast(upstream[:, None] * session, matmul_dtype)
            grad_table = tf.cast(tf.matmul(score_gradient, weighted_session, transpose_a=True),
                                 tf.float32)  # [M, d]
            return grad_session, grad_table

        return loss, gradient

    return cross_entropy(session, item_embeddings)


def l2_penalty(variables):
    """||Theta||^2, the sum of squares of every entry of `variables` (scalar float32)."""
    return tf.add_n([tf.reduce_sum(tf.square(variable)) for variable in variables])
