"""The cross-session step of SPEC section 3: deep graph infomax over the item-transition graph.

The encoder (GCN, or GAT for the `ga` ablation) maps the item embedding table `H_0 = E[1..M]`
to graph-aware rows `H`; a bilinear discriminator learns to tell `(H, summary)` pairs from
pairs built on a corrupted table (rows shuffled). Only the encoder and the discriminator
learn here; the embedding table is an input, as in the reference. The caller writes the
best `H` back into the table (SPEC section 3, step 6).
"""

import math

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from mtd_tf import losses
from mtd_tf.errors import TrainingDivergedError
from mtd_tf.layers.bilinear_discriminator import BilinearDiscriminator
from mtd_tf.layers.graph_attention import GraphAttention
from mtd_tf.layers.sparse_gcn import SparseGCN

ENCODERS = ("gcn", "gat")
LOG_EVERY = 50


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
        if encoder == "gcn":
            self.encoder_layers = [SparseGCN(num_layers=num_layers, name="gcn")]
        else:
            self.encoder_layers = [GraphAttention(name=f"gat_{layer}") for layer in range(num_layers)]
        # An attribute per layer: `tf.train.Checkpoint(infomax=...)` does not see the weights
        # of layers held only in a Python list (Keras 3; the same fix as in `MTDModel`).
        for layer in self.encoder_layers:
            setattr(self, layer.name, layer)
        self.discriminator = BilinearDiscriminator(name="discriminator")

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
        `z = sigmoid(mean_m H_m)` (readout of SPEC section 3, step 3).

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


def make_graph_train_step(infomax, optimizer):
    """Returns `step(features, adjacency, permutation) -> {"loss/co", "embeddings"}`.

    One optimizer update of `L_co` on `infomax`'s variables only (the embedding table is an
    input here). `embeddings` is `H` from the same forward pass, so the caller can keep the
    best `H` at no extra cost. The input signature is fixed (any M, fixed d), so the step
    traces once; builds the optimizer's slots now if the caller has not.

    Args:
      infomax: a built `GraphInfomax` (see its docstring).
      optimizer: a `keras.optimizers.Optimizer`, e.g. Adam(1e-3).

    Raises:
      ValueError: `infomax` is not built yet.
    """
    if not infomax.built:
        raise ValueError("build the GraphInfomax first: infomax.build((num_items, dim))")
    dim = infomax.discriminator.kernel.shape[0]
    if not optimizer.built:
        optimizer.build(infomax.trainable_variables)

    @tf.function(input_signature=[
        tf.TensorSpec([None, dim], tf.float32, name="features"),
        tf.SparseTensorSpec([None, None], tf.float32),
        tf.TensorSpec([None], tf.int32, name="permutation"),
    ])
    def step(features, adjacency, permutation):
        variables = infomax.trainable_variables
        with tf.GradientTape() as tape:
            loss, embeddings = infomax.infomax_loss(features, adjacency, permutation, training=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss/co": loss, "embeddings": embeddings}

    return step


def run_graph_phase(train_step, features, adjacency, max_steps=1000, patience=10, seed=0):
    """Trains the graph step with early stopping on `L_co` and returns the best `H`.

    Step `t` shuffles the rows with `np.random.default_rng(seed)`'s `t`-th permutation, so a
    phase is reproducible. Stops after `patience` steps without a lower loss (the
    reference's DGI schedule: up to 1000 steps, patience 10).

    Args:
      train_step: from `make_graph_train_step`.
      features: float32 `[M, d]`, the embedding table's item rows `E[1..M]`.
      adjacency: `tf.sparse.SparseTensor` float32 `[M, M]`.
      max_steps: most steps to take.
      patience: steps without improvement before stopping.
      seed: seed of the permutations.

    Returns:
      (best_embeddings float32 `[M, d]` tf.Tensor, info dict with "steps" (steps taken),
      "loss/co" (best loss) and "stopped_early").

    Raises:
      ValueError: `max_steps` or `patience` is not a positive integer.
      TrainingDivergedError: the loss became NaN or Inf.
    """
    for name, value in (("max_steps", max_steps), ("patience", patience)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    features = tf.convert_to_tensor(features, tf.float32)
    num_items = int(features.shape[0])
    rng = np.random.default_rng(seed)
    best_loss, best_embeddings, best_step = math.inf, None, 0
    steps_without_improvement = 0
    stopped_early = False
    step = 0
    for step in range(1, max_steps + 1):
        permutation = rng.permutation(num_items).astype(np.int32)
        outputs = train_step(features, adjacency, permutation)
        loss = float(outputs["loss/co"])
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"graph step {step}: loss/co is {loss}")
        if loss < best_loss:
            best_loss, best_embeddings, best_step = loss, outputs["embeddings"], step
            steps_without_improvement = 0
        else:
            steps_without_improvement += 1
        if step % LOG_EVERY == 0:
            logging.info("graph step %d: loss/co %.4f (best %.4f at step %d)",
                         step, loss, best_loss, best_step)
        if steps_without_improvement >= patience:
            stopped_early = True
            break
    logging.info("graph phase: %d steps, best loss/co %.4f at step %d%s", step, best_loss,
                 best_step, ", stopped early" if stopped_early else "")
    return best_embeddings, {"steps": step, "loss/co": best_loss, "stopped_early": stopped_early}
