"""The graph-infomax discriminator: does a node embedding belong with this graph summary? (eq. 7)"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mtd_tf")
class BilinearDiscriminator(keras.layers.Layer):
    """Bilinear score of each node embedding against one graph summary.

    Eq. 7: `xi(h_m, z) = sigmoid(h_m^T W_g z)`. The layer returns the *logits*
    `h_m^T W_g z`; the sigmoid is folded into the loss
    (`tf.nn.sigmoid_cross_entropy_with_logits`), which stays finite for large scores.

    Args:
      **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
      inputs: `(h, summary)`: h float `[M, d]` (one row per item), summary float `[d]`.

    Returns:
      `[M]` logits in the compute dtype.
    """

    def build(self, input_shape):
        h_shape, _ = input_shape
        dim = h_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(dim, dim), initializer="glorot_uniform")

    def call(self, inputs):
        h, summary = inputs
        # h (W_g z): one matrix-vector product instead of scoring every row against W_g.
        projected_summary = tf.linalg.matvec(self.kernel, summary)  # [d]
        return tf.linalg.matvec(h, projected_summary)  # [M]

    def compute_output_shape(self, input_shape):
        h_shape, _ = input_shape
        return h_shape[:-1]
