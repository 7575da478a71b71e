"""STAMP (Liu et al., KDD 2018) as a next-item model, and its hyper-parameters.

The short-term attention/memory priority model: attention over the prefix driven by the
last click and the prefix mean, two MLP cells and a trilinear score. Follows the authors'
released code, github.com/uestcnlp/STAMP (`model/STAMP_rsc.py`, `model/STAMP_cikm.py`,
`basic_layer/FwNn3AttLayer.py`, `config/nn_param.conf`).
"""

import dataclasses
import math
from typing import ClassVar

import keras
import tensorflow as tf

from mtd_tf import settings
from mtd_tf.layers import masking
from mtd_tf.models import model_settings
from mtd_tf.models.next_item import NextItemModel

# Initial values: "stddev" for every weight matrix (code `config/nn_param.conf`, drawn by
# `util/Randomer`), and here for the item table too; the code's "emb_stddev" = 0.002 for the
# table stalls under this project's trainer (see the class docstring).
_WEIGHT_STDDEV = 0.05
_EMBEDDING_STDDEV = _WEIGHT_STDDEV


@keras.saving.register_keras_serializable(package="mtd_tf")
class STAMPModel(NextItemModel):
    """Scores every item 1..M as the next click of a prefix with STAMP.

    For a prefix v_1..v_t (right-padded with 0), x_i = clip(E[v_i]) its item vectors, where
    clip rescales a vector longer than `embedding_max_norm` to that length (the code's
    `embedding_lookup(..., max_norm=1)`; 0 turns it off):

      m_s = (1/t) sum_i x_i                         (general interest: the prefix mean)
      x_t = x of the last real click                (current interest)
      a_i = w0^T sigmoid(W1 x_i + W2 x_t + W3 m_s)  (attention, i = 1..t; NOT normalised)
      m_a = sum_i a_i x_i + m_s                     (the code adds m_s, see below)
      h_s = tanh(W_s m_a),  h_t = tanh(W_t x_t)     (MLP cells A and B)
      z_m = <h_s, h_t, E[m]> = (h_s * h_t) . E[m]   (trilinear composition)

    so the query vector is q = h_s * h_t (element-wise) and the candidates are the item table
    itself, unclipped (the code scores against `embe_dict[1:]`). Padding positions get no
    attention weight and do not enter m_s; a row without real items yields q = 0.

    Attention normalisation. The paper's attention coefficients are real-valued and not
    passed through a softmax; the released code agrees: `FwNnAttLayer` is built with
    `norm_type='none'`, whose `none_mask` only multiplies the raw scores by the sequence
    mask. So a_i is used as computed.

    What the paper says and the code does differently (the code, which produced the paper's
    numbers, is the default; `paper_equations=True` gives the paper's form):
      - The code has no biases: the paper's b_a (inside the attention sigmoid), b_s, b_t
        (MLP cells) are absent from `FwNn3AttLayer.py` / `LinearLayer_3dim.py` and the cells
        `tanh(attout @ w1)`, `tanh(lastinputs @ w2)`.
      - The code feeds m_a + m_s to cell A (`attout = attout + pool_out`); the paper's m_a
        is the attention sum alone.
      - The code clips the looked-up input vectors to norm 1 (`STAMP_rsc.py`, YOOCHOOSE) or
        1.5 (`STAMP_cikm.py`, DIGINETICA); the paper does not mention it
        (`embedding_max_norm`, default 1; set it to 0 as well for the paper's form).
      - The paper wraps the trilinear product in a sigmoid before the softmax; the code feeds
        the raw product to the softmax cross-entropy, as here (scores are q . E[m]).

    Defaults and their source:
      embedding_dim = 100: paper (d = 100), code `nn_param.conf` ("edim": 100).
      embedding_max_norm = 1.0: code `STAMP_rsc.py` (1.5 in `STAMP_cikm.py`).
      Initialisation: weights N(0, 0.05^2) (paper, parameter settings; code "stddev");
        item table N(0, 0.05^2) as well, a deviation (below); biases (paper form only) zero.
      No dropout: the code's dropout lines are commented out and the paper names none.

    Deviations from the original, and why:
      - Item table initialised N(0, 0.05^2) instead of the paper's and code's N(0, 0.002^2)
        ("emb_stddev"). q = tanh(W_s m_a) * tanh(W_t x_t) is a product of two terms each
        proportional to the item vectors, so at 0.002 the first gradients are about 1e-9.
        The code sums its loss over the batch of 512 (`compute_gradients` of the per-example
        vector) under TF1 Adam (epsilon 1e-8) and has no L2 term, so Adam still takes full
        steps; the project's trainer averages over the batch, uses Keras Adam (epsilon 1e-7)
        and adds l2 * ||Theta||^2, whose gradient is of the same size, and the model does not
        leave its starting point (synthetic data, 300 items: P@20 9% after two epochs at
        d = 32 and 12% after four at d = 100, against 41% and 34% with 0.05; popularity
        24%; 23% after two epochs at 0.002 with Adam's epsilon at 1e-12). 0.05 is
        the code's stddev for every other weight and its `load_random`'s own default.
      - Masking, which right-padded batches need; the code batches sessions of equal length
        and needs none.
    Training uses the project's full-catalogue softmax cross-entropy, as the code does (the
    paper writes the loss as a binary cross-entropy over the softmax outputs).

    Training in the paper (the trainer's settings, not this model's): Adam, learning rate
    0.005 in the paper and 0.003 in the code (`nn_param.conf` "init_lr"), batch size 512,
    10 epochs (code), each gradient clipped to norm 150 (YOOCHOOSE) or 110 (DIGINETICA)
    (code "max_grad_norm", `NN_adam.py`), no L2 term in the code.

    Args:
      num_items: M; ids are 1..M and 0 is padding.
      embedding_dim: d.
      max_len: the longest prefix the data sends (STAMP itself has no window).
      embedding_max_norm: input item vectors are rescaled to at most this L2 norm; 0 = off.
      paper_equations: the paper's biases and m_a without + m_s instead of the code's form.
      score_scale: 0 for dot-product scores, s > 0 for s times their cosine.
      repeat_head: add a `RepeatExploreHead`.

    Reference: Liu, Zeng, Mokhosi and Zhang, "STAMP: Short-Term Attention/Memory Priority
    Model for Session-based Recommendation", KDD 2018.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, embedding_max_norm=1.0,
                 paper_equations=False, score_scale=0.0, repeat_head=False, **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, max_len=max_len,
                         score_scale=score_scale, repeat_head=repeat_head, **kwargs)
        STAMPConfig(embedding_dim=embedding_dim, max_len=max_len,
                    embedding_max_norm=embedding_max_norm, paper_equations=paper_equations,
                    score_scale=score_scale, repeat_head=repeat_head)
        self.embedding_max_norm = float(embedding_max_norm)
        self.paper_equations = paper_equations

        def dense(name, **kwargs):
            return keras.layers.Dense(
                embedding_dim, name=name, dtype=self.dtype_policy,
                kernel_initializer=keras.initializers.RandomNormal(stddev=_WEIGHT_STDDEV),
                **kwargs)

        # W1 carries the paper's b_a (one bias for the sum inside the sigmoid).
        self.attention_item = dense("attention_item", use_bias=paper_equations)  # W1 (b_a)
        self.attention_last = dense("attention_last", use_bias=False)  # W2
        self.attention_mean = dense("attention_mean", use_bias=False)  # W3
        self.cell_a = dense("mlp_cell_a", use_bias=paper_equations, activation="tanh")  # W_s
        self.cell_b = dense("mlp_cell_b", use_bias=paper_equations, activation="tanh")  # W_t

    def item_initializer(self):
        return keras.initializers.RandomNormal(stddev=_EMBEDDING_STDDEV)

    def build_encoder(self):
        d = self.embedding_dim
        self.attention_vector = self.add_weight(  # w0
            name="attention_vector", shape=(d,),
            initializer=keras.initializers.RandomNormal(stddev=_WEIGHT_STDDEV))
        self.attention_item.build((None, None, d))
        for layer in (self.attention_last, self.attention_mean, self.cell_a, self.cell_b):
            layer.build((None, d))

    def encode_session(self, item_ids, training=None, return_attention_scores=False):
        """Session vector q = h_s * h_t.

        Args:
          item_ids: int [batch, len], right-padded with 0, ids in 0..M.
          training: unused (STAMP has no dropout); kept for the protocol.
          return_attention_scores: also return the attention coefficients a [batch, len]
            (zero at padding).

        Returns:
          q: [batch, d] (and a).
        """
        del training
        item_ids = tf.cast(item_ids, tf.int32)
        mask = item_ids > 0  # [batch, len], True = real item
        x = self.lookup(item_ids)  # [batch, len, d], zero at padding
        if self.embedding_max_norm:
            x = tf.clip_by_norm(x, tf.cast(self.embedding_max_norm, x.dtype), axes=[-1])
        real = tf.cast(mask, x.dtype)
        count = tf.maximum(tf.reduce_sum(real, axis=1, keepdims=True), 1.0)  # [batch, 1]
        mean = tf.reduce_sum(x, axis=1) / count  # m_s [batch, d]
        last = masking.gather_last(x, mask)  # x_t [batch, d]
        gate = tf.sigmoid(self.attention_item(x)
                          + self.attention_last(last)[:, tf.newaxis, :]
                          + self.attention_mean(mean)[:, tf.newaxis, :])  # [batch, len, d]
        attention = tf.linalg.matvec(gate, tf.cast(self.attention_vector, gate.dtype)) * real
        attended = tf.einsum("bl,bld->bd", attention, x)  # m_a [batch, d]
        if not self.paper_equations:
            attended += mean
        session = self.cell_a(attended) * self.cell_b(last)  # h_s * h_t [batch, d]
        if return_attention_scores:
            return session, attention
        return session

    def get_config(self):
        config = super().get_config()
        config.update(embedding_max_norm=self.embedding_max_norm,
                      paper_equations=self.paper_equations)
        return config


@dataclasses.dataclass(frozen=True)
class STAMPConfig(model_settings.ComparisonConfig):
    """STAMP's hyper-parameters (defaults: paper and uestcnlp/STAMP `config/nn_param.conf`,
    `model/STAMP_rsc.py`)."""

    name: ClassVar[str] = "stamp"
    # STAMP's code: Adam, lr 0.003, batch 512, no L2 (its gradient clipping has no
    # setting here).
    paper_training: ClassVar[dict] = {"lr": 0.003, "l2": 0.0}

    embedding_dim: int = model_settings.embedding_dim(100)
    embedding_max_norm: float = settings.setting(
        1.0, "Input item vectors longer than this are rescaled to it before the encoder "
        "(STAMP's code: 1 on YOOCHOOSE, 1.5 on DIGINETICA); 0 = no clipping.",
        settings.in_range(0, math.inf, high_open=True))
    paper_equations: bool = settings.setting(
        False, "Use the paper's equations where the authors' code differs (STAMP: biases "
        "b_a, b_s, b_t and m_a without the code's + m_s).")

    @classmethod
    def model_class(cls):
        return STAMPModel
