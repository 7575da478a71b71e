"""Sparse-times-dense products for the graph encoders, on TensorFlow's CSR kernels.

`tf.sparse.sparse_dense_matmul` walks COO indices one non-zero at a time: on this
project's 2-core CPU, diginetica's `A_norm` (762,715 non-zeros) times an `[M, 100]` table
took 330 ms, and its adjoint (the gradient) 506 ms, so one graph step took ~700 ms. The
CSR kernel (`SparseMatrixMatMul`) takes ~35 ms for the same product, and the step ~230 ms
(WORKSPACE.md, "Graph step"; `benchmarks/graph_step.py`).
"""

import tensorflow as tf


def sparse_dense_matmul(sparse, dense):
    """`sparse @ dense`, differentiable in both `dense` and `sparse.values`.

    A drop-in for `tf.sparse.sparse_dense_matmul(sparse, dense)` (no adjoint flags).
    Duplicate indices are summed, as there. The indices need not be ordered: they are put
    in row-major order first, because the CSR conversion silently mis-reads any other.

    Args:
      sparse: `tf.sparse.SparseTensor` float32 `[N, K]`.
      dense: float32 `[K, D]`.

    Returns:
      float32 `[N, D]`.
    """
    sparse = tf.sparse.reorder(sparse)  # the gradient to the caller's order is SparseReorder's
    indices, dense_shape = sparse.indices, sparse.dense_shape

    @tf.custom_gradient
    def matmul(values, dense):
        matrix = tf.raw_ops.SparseTensorToCSRSparseMatrix(
            indices=indices, values=values, dense_shape=dense_shape)

        def gradient(upstream):  # upstream: [N, D]
            dense_gradient = tf.raw_ops.SparseMatrixMatMul(a=matrix, b=upstream, transpose_a=True)
            # d out[i] / d values[e] for e = (i, k) is dense[k]. Inside a tf.function this
            # is pruned when nothing asks for it (the GCN's adjacency is a constant).
            values_gradient = tf.reduce_sum(
                tf.gather(upstream, indices[:, 0]) * tf.gather(dense, indices[:, 1]), axis=1)
            return values_gradient, dense_gradient

        product = tf.raw_ops.SparseMatrixMatMul(a=matrix, b=dense)
        product.set_shape([sparse.shape[0], dense.shape[1]])  # the raw op loses static shapes
        return product, gradient

    return matmul(sparse.values, tf.convert_to_tensor(dense, sparse.values.dtype))
