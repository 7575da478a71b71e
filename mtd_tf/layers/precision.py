"""Where the layers leave a mixed-precision policy's 16-bit compute dtype.

Under `mixed_float16` or `mixed_bfloat16` the layers compute in the policy's 16-bit dtype
(float16 keeps 11 significant bits, bfloat16 8) except in two places: softmax
normalisations, whose exponentials and sums are taken in float32 (as Keras's layer
normalisation does), and products with the sparse adjacency, whose CSR kernels take no
16-bit floats. Under float32 (and float64) these casts are the identity, so the numbers
are those of a layer without them.
"""

import tensorflow as tf

from mtd_tf.sparse_matmul import sparse_dense_matmul


def at_least_float32(dtype):
    """float32 for float16 and bfloat16; any other dtype unchanged."""
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


def wide_sparse_dense_matmul(sparse, dense):
    """`sparse @ dense` computed in `at_least_float32(dense.dtype)`, returned in `dense.dtype`.

    Args:
      sparse: `tf.sparse.SparseTensor` float `[N, K]` (any float dtype; Keras casts a
        layer's sparse inputs to its compute dtype).
      dense: float `[K, D]`.

    Returns:
      `[N, D]` in the dtype of `dense`.
    """
    wide = at_least_float32(dense.dtype)
    return tf.cast(sparse_dense_matmul(tf.cast(sparse, wide), tf.cast(dense, wide)), dense.dtype)
