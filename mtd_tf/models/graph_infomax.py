"""The cross-session module of MTD (DESIGN.md section 3): deep graph infomax over the
item-transition graph, and how its output enters the item table.

The encoder (GCN, or GAT for the `ga` ablation) maps the item embedding table `H_0 = E[1..M]`
to graph-aware rows `H`; a bilinear discriminator learns to tell `(H, summary)` pairs from
pairs built on a corrupted table (rows shuffled). Only the encoder and the discriminator
learn here; the embedding table is an input, as in the reference. `write_back` puts the
best `H` into the table of a model that has one (`item_embeddings`).
"""

import keras
import tensorflow as tf

from mtd_tf import losses
from mtd_tf.layers.bilinear_discriminator import BilinearDiscriminator
from mtd_tf.layers.graph_attention import GraphAttention
from mtd_tf.layers.sparse_gcn import SparseGCN

ENCODERS = ("gcn", "gat")


@keras.saving.register_keras_serializable(package="mtd_tf")
class GraphInfomax(keras.Model):
    """Graph encoder plus bilinear discriminator, trained with the infomax loss `L_co` (eq. 8).

    Build it before tracing a step so the optimizer's slots can be created first:

        infomax = GraphInfomax()
        infomax.build((num_items, dim))            # features shape [M, d]
        optimizer.build(infomax.trainable_variables)

    (Calling it once, `infomax(features, adjacency)`, builds it too.)

    Args:
      encoder: "gcn" (`SparseGCN`, eq. 6) or "gat" (`GraphAttention`, the `ga` ablation).
      num_layers: number of stacked encoder layers.
      l2: weight of the L2 penalty on this model's trainable weights in eq. 8.
      **kwargs: passed to `keras.Model`.

    Call arguments:
      features: float32 `[M, d]`, `H_0` (row m-1 = item m).
      adjacency: `tf.sparse.SparseTensor` float32 `[M, M]`, normally `A_norm`.
      training: passed to the encoder.

    Returns:
      float32 `[M, d]`, the encoded items `H`.
    """

    def __init__(self, encoder="gcn", num_layers=1, l2=1e-6, **kwargs):
        super().__init__(**kwargs)
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not l2 >= 0:
            raise ValueError(f"l2 must be a non-negative number, got {l2!r}")
        self.encoder = encoder
        self.num_layers = num_layers
        self.l2 = float(l2)
        policy = self.dtype_policy  # every sublayer computes under this model's policy
        if encoder == "gcn":
            self.encoder_layers = [SparseGCN(num_layers=num_layers, name="gcn", dtype=policy)]
        else:
            self.encoder_layers = [GraphAttention(name=f"gat_{layer}", dtype=policy)
                                   for layer in range(num_layers)]
        # An attribute per layer: `tf.train.Checkpoint(infomax=...)` does not see the weights
        # of layers held only in a Python list (Keras 3; the same fix as in `MTDModel`).
        for layer in self.encoder_layers:
            setattr(self, layer.name, layer)
        self.discriminator = BilinearDiscriminator(name="discriminator", dtype=policy)

    def build(self, features_shape):
        """Creates every weight for features of shape `[M, d]` (only `d` matters)."""
        dim = features_shape[-1]
        for layer in self.encoder_layers:
            layer.build(((None, dim), (None, None)))
        self.discriminator.build(((None, dim), (dim,)))

    def call(self, features, adjacency, training=None):
        hidden = features  # [M, d]
        for layer in self.encoder_layers:
            hidden = layer((hidden, adjacency), training=training)
        return hidden

    def infomax_loss(self, features, adjacency, permutation, training=None):
        """`L_co` of eq. 8 and the encoded items of the same forward pass.

        Positives are the rows of `H = encoder(H_0, A)`, negatives the rows of
        `encoder(H_0[permutation], A)` (corruption: each item gets another item's
        embedding on the same graph); both are scored against the summary
        `z = sigmoid(mean_m H_m)` (readout of DESIGN.md section 3, step 3).

            L_co = -1/(2M) sum_m [log xi(h_m, z) + log(1 - xi(h~_m, z))] + l2 ||Theta_co||^2

        Args:
          features: float32 `[M, d]`, `H_0`.
          adjacency: `tf.sparse.SparseTensor` float32 `[M, M]`.
          permutation: int32 `[M]`, a permutation of `0..M-1`.
          training: passed to the encoder.

        Returns:
          (loss scalar float32, H float32 `[M, d]`).
        """
        positives = self(features, adjacency, training=training)  # [M, d]
        negatives = self(tf.gather(features, permutation), adjacency, training=training)  # [M, d]
        summary = tf.sigmoid(tf.reduce_mean(positives, axis=0))  # [d]
        logits = tf.concat([self.discriminator((positives, summary)),
                            self.discriminator((negatives, summary))], axis=0)  # [2M]
        num_items = tf.shape(positives)[0]
        labels = tf.concat([tf.ones([num_items]), tf.zeros([num_items])], axis=0)  # [2M]
        cross_entropy = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
        return cross_entropy + self.l2 * losses.l2_penalty(self.trainable_weights), positives

    def get_config(self):
        config = super().get_config()
        config.update({"encoder": self.encoder, "num_layers": self.num_layers, "l2": self.l2})
        return config


def write_back(model, embeddings, has_edge, mode, mix=1.0):
    """E[1..M] <- (1 - mix) E + mix H' for items with an edge (DESIGN.md section 3, step 6).

    H' is H (`replace`, the paper) or H scaled to the table's mean row norm (`rescale`):
    the GCN's tanh(LayerNorm) rows are about ten times longer than learned embeddings
    (DESIGN.md section 7), which otherwise inflates every score. `mix` < 1 keeps part of what
    the session step learned instead of overwriting it every epoch.
    """
    table = model.item_embeddings
    if mode == "rescale":
        table_norm = tf.reduce_mean(tf.norm(table, axis=1))
        graph_norm = tf.reduce_mean(tf.norm(embeddings, axis=1))
        embeddings = embeddings * (table_norm / tf.maximum(graph_norm, 1e-12))
    mixed = (1.0 - mix) * table + mix * embeddings
    table.assign(tf.where(tf.constant(has_edge)[:, None], mixed, table))
