"""CSRM (Wang et al., SIGIR 2019) as a next-item model, and its hyper-parameters.

The collaborative session-based recommendation machine: NARM's encoder as the inner memory
(`mtd_tf.layers.NARMEncoder`), a bank of recent sessions read by similarity as the outer
memory (`mtd_tf.layers.OuterMemory`), a fusion gate between them and NARM's bilinear
decoder. Follows the paper and the authors' released code,
github.com/wmeirui/CSRM_SIGIR2019 (`csrm.py`, `ome.py`, `main.py`).
"""

import dataclasses
import math
from typing import ClassVar

import keras
import tensorflow as tf

from mtd_tf import settings
from mtd_tf.errors import ConfigError
from mtd_tf.layers import OuterMemory
from mtd_tf.layers.precision import at_least_float32
from mtd_tf.models import model_settings
from mtd_tf.models.narm import NARMEncoderModel

# `csrm.py` standardises each representation with this variance floor.
_STANDARDIZE_EPSILON = 1e-10


def standardize(x):
    """(x - mean) / sqrt(var + 1e-10) over the last axis, computed in at least float32 (the
    floor underflows in 16 bits) and returned in x's dtype; a constant row gives zeros."""
    wide = tf.cast(x, at_least_float32(x.dtype))
    mean, variance = tf.nn.moments(wide, axes=[-1], keepdims=True)
    return tf.cast((wide - mean) * tf.math.rsqrt(variance + _STANDARDIZE_EPSILON), x.dtype)


@keras.saving.register_keras_serializable(package="mtd_tf")
class CSRMModel(NARMEncoderModel):
    """Scores every item 1..M as the next click of a prefix with CSRM.

    For a prefix v_1..v_t (right-padded with 0), with E the item table (`[M, d]`) and
    h = d the GRU width:

      x_i = dropout_e(E[v_i])                                   (input, code: rate 0.25)
      [c_g ; c_l] = NARMEncoder(x)                              (inner memory encoder)
      r = OuterMemory(c_l)                                      (outer memory encoder)
      c_g', c_l', r' = standardize(c_g), standardize(c_l), standardize(r)
      f = sigmoid(w_l . c_l' + w_o . r' + w_g . c_g')           (fusion gate, a scalar)
      c = f [c_g' ; c_l'] + (1 - f) [r' ; r']                   (2h)
      z_m = E[m]^T B dropout(c)                                 (bilinear decoder)

    `standardize(x) = (x - mean(x)) / sqrt(var(x) + 1e-10)` over a vector's entries.
    `B` (`[d, 2h]`) is folded into the query, `q = B dropout(c)` (the `bilinear` kernel is
    `B^T`). The outer memory holds the `c_l` of the `memory_size` sessions most recently
    seen in training; a read mixes the stored `c_l` of the `num_neighbors` most
    cosine-similar of them with softmax weights over those cosines (`OuterMemory`). With
    `training=True` the call then stores the batch's `c_l` (rows with at least one real
    item), after the read, inside the call (so inside a `tf.function` training step too);
    otherwise the bank is only read. The bank is a non-trainable variable with its write
    counter: checkpoints save it, the SavedModel serves with it, and until sessions are
    stored its unfilled slots are ignored (an empty bank reads `r = 0`). Padding changes
    nothing: the encoder stops at the last real click and attends over real positions; a
    row with no real item gives `c_g = c_l = 0` and scores from the memory side alone.

    Defaults and their source (`main.py`, `csrm.py`, `ome.py`):
      embedding_dropout = 0.25, dropout = 0.5: `csrm.py` `keep_probability = [0.75, 0.5]`
        (embeddings, final representation).
      memory_size = 10000: `ome.py` keeps the latest 10,000 session vectors
        (`concat(memory, batch)[-10000:]`).
      num_neighbors = 512: `ome.py` reads `top_k(cosine, k=memory_size)` with `main.py`'s
        `--memory_size` 512, i.e. the code's "memory size" is the number of neighbours read.
      separate_encoders = True: `csrm.py` runs a `global_encoder` and a `local_encoder`
        GRU; the attention reads the local one's states and last state.
      attention_softmax = True: `csrm.py` normalises the attention with a softmax over real
        positions (as NARM's code; not in NARM's eq. 6-8).
      Fusion gate: `csrm.py`'s `inner_encoder`, `outer_encoder`, `state_encoder`, each
        `[h, 1]`, no bias: one scalar gate per session; the outer side is the read
        repeated, `[r ; r]`, to match the inner side's 2h.
      Standardisation of `c_l`, `c_g`, `r` before the gate: `csrm.py` (`tf.nn.moments`).
      Initial values: `csrm.py` `init_weights`, N(0, 2/shape[0]) for the item table
        (N(0, 2/M)), attention, gate and decoder weights; the GRUs as `NARMEncoder`'s.

    Deviations from the original:
      - d = 100 for items and GRUs (the project's "d = 100 where configurable"); the code's
        `main.py` defaults are 150 and 150 (its comments: originally 50 and 100).
      - The bank: the code restarts it at every epoch (the epoch's first batch reads its
        own `c_l`) and keeps appending while it evaluates (validation and test sessions
        enter it as they are scored). Here it persists across epochs, reads zero while
        empty, and is written in training only: evaluation and serving read the bank left
        by training and never change it, so a test session cannot read another.
      - The GRUs: Keras GRU layers with the reset gate before the recurrent product and
        N(0, 2/fan_in) input kernels (`NARMEncoder`); the code's TF1 `GRUCell`s use
        Glorot-uniform kernels and a gate bias of 1.
      - Training: the project's softmax cross-entropy on prefix-augmented sessions with
        Adam and L2 (the code has no L2).

    Training in the paper (the trainer's settings, not this model's): Adam, learning rate
    0.0005, mini-batch 512, up to 50 epochs with early stopping after 10 epochs without a
    better validation Recall@20 (`main.py`), no L2.

    Args:
      num_items: M; ids are 1..M and 0 is padding.
      embedding_dim: d, also the GRUs' width h and the bank's width.
      max_len: the longest prefix the data sends (the GRUs themselves have no window).
      dropout: rate on the fused representation c.
      embedding_dropout: rate on the input item vectors.
      memory_size: sessions the outer memory keeps.
      num_neighbors: stored sessions a read mixes (at most `memory_size`).
      attention_softmax: normalise the local attention (the code) or not (NARM's paper).
      separate_encoders: separate global and local GRUs (the code) or one (NARM's code).
      reset_after: the GRUs' reset-gate placement (`SessionGRU`).
      score_scale: 0 for dot-product scores, s > 0 for s times their cosine.
      repeat_head: add a `RepeatExploreHead`.

    Reference: Wang, Ren, Mei, Chen, Ma and de Rijke, "A Collaborative Session-based
    Recommendation Approach with Parallel Memory Modules", SIGIR 2019, Sec. 3.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, dropout=0.5,
                 embedding_dropout=0.25, memory_size=10000, num_neighbors=512,
                 attention_softmax=True, separate_encoders=True, reset_after=False,
                 score_scale=0.0, repeat_head=False, **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, max_len=max_len,
                         score_scale=score_scale, repeat_head=repeat_head, **kwargs)
        CSRMConfig(embedding_dim=embedding_dim, max_len=max_len, dropout=dropout,
                   embedding_dropout=embedding_dropout, memory_size=memory_size,
                   num_neighbors=num_neighbors, attention_softmax=attention_softmax,
                   separate_encoders=separate_encoders, reset_after=reset_after,
                   score_scale=score_scale, repeat_head=repeat_head)
        self.create_encoder_layers(dropout, embedding_dropout, attention_softmax,
                                   separate_encoders, reset_after)
        self.memory_size = memory_size
        self.num_neighbors = num_neighbors
        self.outer_memory = OuterMemory(memory_size=memory_size, num_neighbors=num_neighbors,
                                        name="outer_memory", dtype=self.dtype_policy)
        self.create_bilinear_decoder()

    def build_encoder(self):
        d = self.embedding_dim
        self.encoder.build((None, None, d))
        self.outer_memory.build((None, d))
        self.bilinear.build((None, 2 * d))
        # The code's [h, 1] gate matrices, N(0, 2/h).
        gate_initializer = keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / d))
        self.local_gate = self.add_weight(  # w_l, `inner_encoder`
            name="local_gate", shape=(d,), initializer=gate_initializer)
        self.memory_gate = self.add_weight(  # w_o, `outer_encoder`
            name="memory_gate", shape=(d,), initializer=gate_initializer)
        self.global_gate = self.add_weight(  # w_g, `state_encoder`
            name="global_gate", shape=(d,), initializer=gate_initializer)

    def encode_session(self, item_ids, training=None, return_attention_scores=False):
        """Query `q = B dropout(c)`; with `training=True`, also stores the batch's `c_l`.

        Args:
          item_ids: int [batch, len], right-padded with 0, ids in 0..M.
          training: dropout on or off, and whether the outer memory stores the batch.
          return_attention_scores: also return a dict: "attention" (the local attention,
            [batch, len]), "gate" (f, [batch]), "memory_slots" and "memory_weights" (the
            slots read and their weights, [batch, k]).

        Returns:
          q: [batch, d] (and the dict).
        """
        mask, encoded, alpha = self.encode_prefix(item_ids, training=training)  # [batch, 2d]
        global_state, local = tf.split(encoded, 2, axis=-1)  # c_g, c_l: [batch, d]
        read, (slots, memory_weights) = self.outer_memory(
            local, write_mask=tf.reduce_any(mask, axis=1), training=training,
            return_attention_scores=True)  # r: [batch, d]
        global_state, local, read = standardize(global_state), standardize(local), standardize(read)
        gate = tf.sigmoid(tf.linalg.matvec(local, self.local_gate)
                          + tf.linalg.matvec(read, self.memory_gate)
                          + tf.linalg.matvec(global_state, self.global_gate))  # f: [batch]
        inner = tf.concat([global_state, local], axis=-1)  # [batch, 2d]
        outer = tf.concat([read, read], axis=-1)  # [batch, 2d]
        fused = gate[:, tf.newaxis] * inner + (1.0 - gate[:, tf.newaxis]) * outer
        query = self.decode(fused, training=training)  # [batch, d]
        if return_attention_scores:
            return query, {"attention": alpha, "gate": gate, "memory_slots": slots,
                           "memory_weights": memory_weights}
        return query

    def get_config(self):
        config = super().get_config()
        config.update(memory_size=self.memory_size, num_neighbors=self.num_neighbors)
        return config


@dataclasses.dataclass(frozen=True)
class CSRMConfig(model_settings.ComparisonConfig):
    """CSRM's hyper-parameters (defaults: the authors' `main.py`, `csrm.py`, `ome.py`)."""

    name: ClassVar[str] = "csrm"
    # CSRM's `main.py`: Adam, lr 5e-4, batch 512, no L2.
    paper_training: ClassVar[dict] = {"lr": 5e-4, "l2": 0.0}

    embedding_dim: int = model_settings.embedding_dim(100)
    dropout: float = model_settings.dropout(
        0.5, "Dropout rate (CSRM: on the fused session representation).")
    embedding_dropout: float = model_settings.dropout(
        0.25, "Dropout rate on the input item vectors.")
    memory_size: int = settings.setting(
        10000, "Sessions CSRM's outer memory keeps (first in, first out).",
        settings.positive_int)
    num_neighbors: int = settings.setting(
        512, "Most similar stored sessions a CSRM memory read mixes (at most memory_size).",
        settings.positive_int)
    attention_softmax: bool = settings.setting(
        True, "Normalise the local attention with a softmax over the real positions (the "
        "authors' code) instead of using its raw scores (NARM's eq. 6-8).")
    separate_encoders: bool = settings.setting(
        True, "Separate GRUs for the global and local encoders (CSRM's code) instead of one "
        "(NARM's code).")
    reset_after: bool = settings.setting(
        False, "GRU reset gate applied after the hidden transform (the cuDNN form) instead of "
        "before it (the authors' code).")

    def __post_init__(self):
        super().__post_init__()
        if self.num_neighbors > self.memory_size:
            raise ConfigError(f"num_neighbors must be at most memory_size ({self.memory_size}), "
                              f"got {self.num_neighbors}")

    @classmethod
    def model_class(cls):
        return CSRMModel
