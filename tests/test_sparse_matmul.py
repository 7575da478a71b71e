"""`sparse_dense_matmul` against dense NumPy products, gradients included."""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.sparse_matmul import sparse_dense_matmul


def random_coo(rng, num_rows, num_cols, nnz, shuffle=True):
    """COO indices (int64 [nnz, 2], with repeats) and float32 values, and the dense matrix."""
    indices = np.stack([rng.integers(0, num_rows, nnz), rng.integers(0, num_cols, nnz)], axis=1)
    if not shuffle:
        indices = indices[np.lexsort((indices[:, 1], indices[:, 0]))]
    values = rng.normal(size=nnz).astype(np.float32)
    dense = np.zeros((num_rows, num_cols), np.float64)
    np.add.at(dense, (indices[:, 0], indices[:, 1]), values)  # repeats add up, as in TF
    return indices.astype(np.int64), values, dense


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shuffle", [True, False])
def test_product_and_gradients_match_numpy(seed, shuffle):
    rng = np.random.default_rng(seed)
    indices, values, matrix = random_coo(rng, num_rows=9, num_cols=6, nnz=25, shuffle=shuffle)
    dense = rng.normal(size=(6, 4)).astype(np.float32)
    upstream = rng.normal(size=(9, 4)).astype(np.float32)
    values_tensor, dense_tensor = tf.constant(values), tf.constant(dense)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([values_tensor, dense_tensor])
        product = sparse_dense_matmul(
            tf.sparse.SparseTensor(indices, values_tensor, [9, 6]), dense_tensor)
        loss = tf.reduce_sum(product * upstream)
    np.testing.assert_allclose(product.numpy(), matrix @ dense, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss, dense_tensor).numpy(), matrix.T @ upstream,
                               atol=1e-5)
    # d loss / d values[e] for e = (i, k): upstream[i] . dense[k], once per entry.
    expected_values_gradient = np.einsum("ed,ed->e", upstream[indices[:, 0]], dense[indices[:, 1]])
    np.testing.assert_allclose(tape.gradient(loss, values_tensor).numpy(),
                               expected_values_gradient, atol=1e-5)


def test_matches_tf_sparse_dense_matmul_on_a_canonical_graph():
    rng = np.random.default_rng(3)
    indices, values, _ = random_coo(rng, num_rows=50, num_cols=50, nnz=300, shuffle=False)
    sparse = tf.sparse.reorder(tf.sparse.SparseTensor(indices, values, [50, 50]))
    dense = rng.normal(size=(50, 8)).astype(np.float32)
    np.testing.assert_allclose(sparse_dense_matmul(sparse, dense).numpy(),
                               tf.sparse.sparse_dense_matmul(sparse, dense).numpy(), atol=1e-5)


def test_empty_rows_and_an_empty_matrix_give_zeros():
    dense = np.ones((4, 3), np.float32)
    only_row_two = tf.sparse.SparseTensor([[2, 1]], [5.0], [4, 4])
    np.testing.assert_array_equal(sparse_dense_matmul(only_row_two, dense).numpy(),
                                  [[0, 0, 0], [0, 0, 0], [5, 5, 5], [0, 0, 0]])
    empty = tf.sparse.SparseTensor(np.zeros((0, 2), np.int64), np.zeros(0, np.float32), [4, 4])
    np.testing.assert_array_equal(sparse_dense_matmul(empty, dense).numpy(), np.zeros((4, 3)))


def test_traces_with_a_sparse_signature_and_keeps_the_column_count():
    @tf.function(input_signature=[tf.SparseTensorSpec([None, None], tf.float32),
                                  tf.TensorSpec([None, 4], tf.float32)])
    def product(sparse, dense):
        return sparse_dense_matmul(sparse, dense)

    output_shape = product.get_concrete_function().structured_outputs.shape
    assert output_shape.as_list() == [None, 4]
    sparse = tf.sparse.SparseTensor([[1, 0], [0, 1]], [2.0, 3.0], [2, 2])
    np.testing.assert_array_equal(product(sparse, np.eye(2, 4, dtype=np.float32)).numpy(),
                                  [[0, 3, 0, 0], [2, 0, 0, 0]])
