"""Single-head graph attention over the item-transition graph (the `ga` ablation of DESIGN.md section 4)."""

import keras
import tensorflow as tf

from mtd_tf.layers.precision import at_least_float32, wide_sparse_dense_matmul
from mtd_tf.layers.sparse_gcn import LAYER_NORM_EPSILON


@keras.saving.register_keras_serializable(package="mtd_tf")
class GraphAttention(keras.layers.Layer):
    """GAT layer (Velickovic et al., ICLR 2018) over the adjacency's non-zero pattern plus self-loops.

    With `N(i)` = the non-zero columns of row `i` of the adjacency, plus `i` itself:

        z_i      = h_i W
        e_ij     = LeakyReLU(a^T [z_i ; z_j])                 for j in N(i)
        alpha_ij = exp(e_ij) / sum_{k in N(i)} exp(e_ik)
        out_i    = tanh(LayerNorm(sum_{j in N(i)} alpha_ij z_j))

    It replaces the GCN's fixed weights `A_norm[i, j]` of eq. 6 by learned ones and keeps the
    same output non-linearity, so the `ga` and `mtd` variants differ only in how neighbours
    are weighted. The adjacency's values are ignored (only its pattern matters), so the
    normalised `A_norm` and the binary `A` give the same result.

    Args:
      negative_slope: slope of the LeakyReLU for negative scores (0.2 in the GAT paper).
      **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
      inputs: `(features, adjacency)`: features float `[M, d]`; adjacency
        `tf.sparse.SparseTensor` `[M, M]` (any index order; explicit zeros are not edges).
      training: passed to the LayerNorm.

    Returns:
      `[M, d]` in the compute dtype (under a mixed-precision policy the softmax over each
      row's edges and the sparse product run in float32: `mtd_tf.layers.precision`).
    """

    def __init__(self, negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) or (
                negative_slope < 0):
            raise ValueError(f"negative_slope must be a non-negative number, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def build(self, input_shape):
        features_shape, _ = input_shape
        dim = features_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(dim, dim), initializer="glorot_uniform")
        # a = [a_target ; a_source], stored split so that a^T [z_i ; z_j] = z_i.a_target + z_j.a_source.
        self.attention_target = self.add_weight(
            name="attention_target", shape=(dim,), initializer="glorot_uniform")
        self.attention_source = self.add_weight(
            name="attention_source", shape=(dim,), initializer="glorot_uniform")
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, name="layer_norm", dtype=self.dtype_policy)
        self.layer_norm.build((None, dim))

    def call(self, inputs, training=None):
        features, adjacency = inputs
        num_nodes = tf.shape(features, out_type=tf.int64)[0]
        rows, cols = _edges_with_self_loops(adjacency, num_nodes)  # [E] each, int64
        transformed = tf.matmul(features, self.kernel)  # [M, d]
        # The softmax over a row's edges sums as many terms as the node has neighbours.
        softmax_dtype = at_least_float32(transformed.dtype)
        target_scores = tf.cast(
            tf.linalg.matvec(transformed, self.attention_target), softmax_dtype)  # [M]
        source_scores = tf.cast(
            tf.linalg.matvec(transformed, self.attention_source), softmax_dtype)  # [M]
        scores = tf.nn.leaky_relu(
            tf.gather(target_scores, rows) + tf.gather(source_scores, cols),
            alpha=self.negative_slope)  # [E]
        # Softmax per row; subtracting the row maximum keeps exp finite.
        row_max = tf.math.unsorted_segment_max(scores, rows, num_nodes)  # [M]
        weights = tf.exp(scores - tf.gather(row_max, rows))  # [E]
        row_sum = tf.math.unsorted_segment_sum(weights, rows, num_nodes)  # [M], >= 1 (self-loop)
        alpha = weights / tf.gather(row_sum, rows)  # [E]
        attention = tf.sparse.SparseTensor(
            tf.stack([rows, cols], axis=1), alpha, dense_shape=tf.stack([num_nodes, num_nodes]))
        aggregated = wide_sparse_dense_matmul(attention, transformed)  # [M, d]
        return tf.tanh(self.layer_norm(aggregated, training=training))

    def compute_output_shape(self, input_shape):
        features_shape, _ = input_shape
        return features_shape

    def get_config(self):
        config = super().get_config()
        config.update({"negative_slope": self.negative_slope})
        return config


def _edges_with_self_loops(adjacency, num_nodes):
    """(rows, cols) of the off-diagonal non-zeros of `adjacency` and of every `(i, i)`.

    Diagonal entries already present (e.g. in `A + I`) are dropped first so a self-loop is
    never counted twice in the softmax.
    """
    rows, cols = adjacency.indices[:, 0], adjacency.indices[:, 1]
    is_edge = tf.logical_and(tf.not_equal(rows, cols), tf.not_equal(adjacency.values, 0))
    nodes = tf.range(num_nodes, dtype=tf.int64)
    return (tf.concat([tf.boolean_mask(rows, is_edge), nodes], axis=0),
            tf.concat([tf.boolean_mask(cols, is_edge), nodes], axis=0))
