"""Graph convolution over the global item-transition graph (paper eq. 6)."""

import keras
import tensorflow as tf

from mtd_tf.layers.precision import wide_sparse_dense_matmul

# Keras's default (1e-3) is close to the variance of a row of small embeddings (entries
# about 0.05 give a variance of about 2.5e-3) and would shrink such rows instead of
# normalising them.
LAYER_NORM_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="mtd_tf")
class SparseGCN(keras.layers.Layer):
    """Stacked graph convolutions with a sparse, pre-normalised adjacency.

    Eq. 6, with the reference's non-linearity `phi` = LayerNorm then tanh:

        H_{l+1} = tanh(LayerNorm(A_norm H_l W_l)),   A_norm = D^-1/2 (A + I) D^-1/2

    `W_l` is `d x d` without bias; each layer has its own LayerNorm. The adjacency is an
    input (built once by `mtd_tf.graph`), so one layer serves any graph of matching `d`.

    Args:
      num_layers: number of convolutions `L` (the reference's `num_gcn`, default 1).
      **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
      inputs: `(features, adjacency)`: features float `[M, d]` (`H_0`, row m-1 = item m);
        adjacency `tf.sparse.SparseTensor` float `[M, M]`, normally `A_norm`.
      training: passed to the LayerNorms (no effect today; kept for the Keras contract).

    Returns:
      `[M, d]`, `H_L`, in the compute dtype (the sparse products run in float32 under a
      mixed-precision policy: `mtd_tf.layers.precision`).
    """

    def __init__(self, num_layers=1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        self.num_layers = num_layers

    def build(self, input_shape):
        features_shape, _ = input_shape
        dim = features_shape[-1]
        self.kernels = [
            self.add_weight(name=f"kernel_{layer}", shape=(dim, dim), initializer="glorot_uniform")
            for layer in range(self.num_layers)]
        self.layer_norms = []
        for layer in range(self.num_layers):
            norm = keras.layers.LayerNormalization(
                epsilon=LAYER_NORM_EPSILON, name=f"layer_norm_{layer}", dtype=self.dtype_policy)
            norm.build((None, dim))
            self.layer_norms.append(norm)
        # Keras 3 tracks weights and layers held in Python lists for its own saving, but
        # not as TensorFlow checkpoint dependencies: without an attribute each,
        # `tf.train.Checkpoint(layer=gcn)` silently skips them (as in `MTDModel`).
        for layer, (kernel, norm) in enumerate(zip(self.kernels, self.layer_norms)):
            setattr(self, f"kernel_{layer}", kernel)
            setattr(self, norm.name, norm)

    def call(self, inputs, training=None):
        features, adjacency = inputs
        hidden = features  # [M, d]
        for kernel, norm in zip(self.kernels, self.layer_norms):
            # A (H W) rather than (A H) W: same cost, and the dense matmul comes first.
            propagated = wide_sparse_dense_matmul(adjacency, tf.matmul(hidden, kernel))
            hidden = tf.tanh(norm(propagated, training=training))  # [M, d]
        return hidden

    def compute_output_shape(self, input_shape):
        features_shape, _ = input_shape
        return features_shape

    def get_config(self):
        config = super().get_config()
        config.update({"num_layers": self.num_layers})
        return config
