"""SR-GNN (Wu et al., AAAI 2019): a gated graph network over each prefix's session graph,
read out by attention anchored on the last click. A comparison model of the next-item
protocol (`next_item.NextItemModel`)."""

import dataclasses
from typing import ClassVar

import keras
import tensorflow as tf

from mtd_tf import settings
from mtd_tf.layers import masking
from mtd_tf.layers import session_graph
from mtd_tf.layers.gated_graph import GatedGraph
from mtd_tf.models.model_settings import ComparisonConfig
from mtd_tf.models.next_item import NextItemModel


@keras.saving.register_keras_serializable(package="mtd_tf")
class SRGNNModel(NextItemModel):
    """Scores every item 1..M as the next click of a session prefix, as SR-GNN does.

    For a prefix s = [v_s,1 .. v_s,n] (right-padded with 0; n = its last real click):
      graph: one node per distinct item, edge u -> w when w follows u; normalised
        connection matrices A_in, A_out (`mtd_tf.layers.session_graph`: 0/1 edges, each
        row divided by the node's in-/out-degree, self-loops for repeated clicks).
      H^0 = E[node items]                                 (item table, shared with scoring)
      H = GatedGraph^step(H^0, A_in, A_out)               (eq. 1-5, `layers.gated_graph`)
      v_i = H[alias(i)] for every position i of the prefix (repeated clicks share a node
        but count once per position below)
      s_l = v_n                                            (local preference)
      alpha_i = q^T sigmoid(W1 v_n + W2 v_i + c)          (eq. 6; no softmax, as the paper)
      s_g = sum_i alpha_i v_i over the real positions      (eq. 6, global preference)
      s_h = W3 [s_l ; s_g] + b3   (eq. 7; with `nonhybrid`, s_h = s_g)
      z_m = s_h . E[m] for m = 1..M                        (eq. 8; softmax and loss: trainer)

    Sources of the values (CRIPAC-DIG/SR-GNN, `pytorch_code/`):
      d = `embedding_dim` = 100: `--hiddenSize` 100 in `main.py`; the paper's latent size
        100. The hidden size of the code is the width of its item table (the GRU starts
        from the embeddings), so it is `embedding_dim` here and no separate setting.
      step = 1: `--step` in `main.py` (propagation steps of eq. 1-5).
      nonhybrid = False: `--nonhybrid` unset in `main.py` (the paper's hybrid s_h).
      reset_after = True: `GNN.GNNCell` in `model.py` (see `layers.gated_graph`).
      initial values: every weight, the item table included, uniform in
        [-1/sqrt(d), 1/sqrt(d)] (`SessionGraph.reset_parameters` in `model.py`; the
        TensorFlow version draws most of its weights from the same range). The paper's
        text says Gaussian N(0, 0.1^2); the code is followed.

    Deviations from the authors' code, none of which changes what the model computes:
      - W1 and W2 are `linear_one` and `linear_two` there, each with a bias; their two
        biases only ever appear summed, so one bias c (eq. 6) replaces them.
      - The code concatenates [s_g ; s_l] (the order of W3's rows); eq. 7's [s_l ; s_g] is
        used. W3 keeps the code's bias b3 (`linear_transform`), which eq. 7 does not print.
      - The code's unused `linear_edge_f` is left out.
      - The code's graphs hold a node for the padding id 0 of padded rows (no edges,
        masked out of the readout); here a row's nodes are its real items only, so padding
        cannot reach any score. Nodes are in ascending item id, as the code's `np.unique`
        orders them; the order does not change the scores.
      - Batches are built with tensor ops inside the model (no Python loop per session),
        so the model runs in a `tf.function` and exports to a SavedModel.
      - A prefix longer than the code's (which keeps whole sessions) is cut by the data to
        its last `max_len` clicks; the model itself reads any length.
    Where the released code disagrees with itself or with the paper: the TensorFlow
    version omits the transpose of the connection matrices (issue #12 of the repository),
    the PyTorch version and the paper's Figure 2 are followed; the TensorFlow version's
    GRU applies the reset gate before the hidden transform, as eq. 4 prints it
    (`reset_after=False` here), and feeds W1 v_n rather than v_n into W3.

    Training in the paper (not settings of this model; `TrainerConfig`'s): full softmax
    cross-entropy over all items on prefix-augmented sessions; Adam, lr 0.001 decayed by
    0.1 every 3 epochs (`--lr`, `--lr_dc`, `--lr_dc_step`; the code steps its `StepLR` at
    each epoch's start, so its first decay comes at epoch 3, where `lr_decay_every=3`
    here, as the paper's text reads, decays from epoch 4); batch size 100; L2 penalty
    1e-5 (`--l2`, Adam's `weight_decay`, i.e. the gradient of (1e-5 / 2) |w|^2 on every
    weight); 30 epochs with early stopping after 10 epochs without a better valid
    Recall@20 or MRR@20 (`--epoch`, `--patience`). No dropout.

    Args:
      num_items: M, the catalogue size; ids are 1..M and 0 is padding.
      embedding_dim: d, the width of the item table and of every node state.
      max_len: the longest prefix the data sends (not used by the encoder).
      score_scale: 0 for the paper's dot-product scores, s > 0 for s times their cosine.
      repeat_head: add a `RepeatExploreHead` (beyond the paper).
      step: gated graph propagation steps.
      nonhybrid: score with s_g alone instead of s_h.
      reset_after: GRU reset gate after (the PyTorch code) or before (eq. 4) the hidden
        transform.

    Reference: Wu, Tang, Zhu, Wang, Xie, Tan, "Session-based Recommendation with Graph
    Neural Networks", AAAI 2019; code: github.com/CRIPAC-DIG/SR-GNN.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, score_scale=0.0,
                 repeat_head=False, step=1, nonhybrid=False, reset_after=True, **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, max_len=max_len,
                         score_scale=score_scale, repeat_head=repeat_head, **kwargs)
        # The one set of range checks, shared with the CLI (a ConfigError is a ValueError).
        SRGNNConfig(embedding_dim=embedding_dim, max_len=max_len, score_scale=score_scale,
                    repeat_head=repeat_head, step=step, nonhybrid=nonhybrid,
                    reset_after=reset_after)
        self.step = step
        self.nonhybrid = nonhybrid
        self.reset_after = reset_after
        self.gated_graph = GatedGraph(num_steps=step, reset_after=reset_after,
                                      name="gated_graph", dtype=self.dtype_policy)

    def item_initializer(self):
        bound = self.embedding_dim ** -0.5
        return keras.initializers.RandomUniform(-bound, bound)

    def build_encoder(self):
        d = self.embedding_dim
        self.gated_graph.build(((None, None, d), (None, None, None), (None, None, None)))
        initializer = self.item_initializer()  # the code draws every weight alike

        def weight(name, shape):
            return self.add_weight(name=name, shape=shape, initializer=initializer)

        self.attention_last_kernel = weight("attention_last_kernel", (d, d))  # W1
        self.attention_item_kernel = weight("attention_item_kernel", (d, d))  # W2
        self.attention_bias = weight("attention_bias", (d,))  # c
        self.attention_vector = weight("attention_vector", (d,))  # q
        if not self.nonhybrid:
            self.hybrid_kernel = weight("hybrid_kernel", (2 * d, d))  # W3
            self.hybrid_bias = weight("hybrid_bias", (d,))

    def encode_session(self, item_ids, training=None):
        """Session vector s_h (s_g with `nonhybrid`).

        Args:
          item_ids: int [batch, len], right-padded with 0, ids in 0..M. A row of padding
            only gives a finite vector (its s_g is 0).
          training: passed on (the model has no dropout).

        Returns:
          [batch, d] in the compute dtype.
        """
        item_ids = tf.cast(item_ids, tf.int32)
        mask = item_ids > 0  # [B, L], True = real item
        graphs = session_graph.build_session_graphs(item_ids)
        nodes = self.lookup(graphs.node_items)  # [B, N, d], zero for padding nodes
        nodes = self.gated_graph((nodes, graphs.adjacency_in, graphs.adjacency_out),
                                 training=training)
        sequence = tf.gather(nodes, graphs.alias, batch_dims=1)  # [B, L, d]: v_i
        last = masking.gather_last(sequence, mask)  # [B, d]: s_l = v_n
        gate = tf.sigmoid(
            tf.matmul(last, self.attention_last_kernel)[:, tf.newaxis, :]
            + tf.einsum("bld,de->ble", sequence, self.attention_item_kernel)
            + self.attention_bias)  # [B, L, d]
        alpha = tf.einsum("ble,e->bl", gate, self.attention_vector)
        alpha = alpha * tf.cast(mask, alpha.dtype)  # [B, L], 0 at padding
        global_preference = tf.einsum("bl,bld->bd", alpha, sequence)  # [B, d]: s_g
        if self.nonhybrid:
            return global_preference
        hybrid = tf.concat([last, global_preference], axis=-1)  # [B, 2d]
        return tf.matmul(hybrid, self.hybrid_kernel) + self.hybrid_bias

    def get_config(self):
        config = super().get_config()
        config.update(step=self.step, nonhybrid=self.nonhybrid, reset_after=self.reset_after)
        return config


@dataclasses.dataclass(frozen=True)
class SRGNNConfig(ComparisonConfig):
    """SR-GNN's hyper-parameters (defaults: the authors' `pytorch_code/main.py`)."""

    name: ClassVar[str] = "srgnn"
    # SR-GNN's `main.py`: batch 100, lr 1e-3 times 0.1 every 3 epochs, Adam weight decay
    # 1e-5 (the gradient of our L2 term at 5e-6).
    paper_training: ClassVar[dict] = {"batch_size": 100, "lr_decay": 0.1, "lr_decay_every": 3,
                                      "l2": 5e-6}

    step: int = settings.setting(
        1, "Gated graph propagation steps per session graph (SR-GNN's --step).",
        settings.positive_int)
    nonhybrid: bool = settings.setting(
        False, "Score with the attention-pooled global preference alone instead of the hybrid "
        "W3 [last ; global] (SR-GNN's --nonhybrid).")
    reset_after: bool = settings.setting(
        True, "GRU reset gate applied after the hidden transform (the SR-GNN PyTorch code, "
        "torch.nn.GRUCell) instead of before it (eq. 4 of the paper).")

    @classmethod
    def model_class(cls):
        return SRGNNModel
