"""GRU4Rec (Hidasi et al., ICLR 2016) as a next-item model, and its hyper-parameters.

A GRU reads the prefix's item vectors; its state after the last click scores every item.
Built from the paper and the author's released code, github.com/hidasib/GRU4Rec
(`gru4rec.py`, `README.md`, `paramfiles/`, `examples/rsc15/run_rsc15.py`), but trained with
this project's protocol, not the author's: see the model's docstring.
"""

import dataclasses
from typing import ClassVar

import keras
import tensorflow as tf

from mtd_tf import settings
from mtd_tf.layers import SessionGRU
from mtd_tf.models import model_settings
from mtd_tf.models.next_item import NextItemModel
from mtd_tf.models.next_item import gather_rows


def _glorot_uniform_per_gate():
    """U(-sqrt(6 / (fan_in + h)), +) for a GRU kernel [fan_in, 3h] with fan_in = h: the
    author's `init_matrix` applied to each gate's [h, h] block (`gru4rec.py`); over the
    concatenated [h, 3h] kernel that is a fan-average scaling of 2."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_avg", distribution="uniform")


@keras.saving.register_keras_serializable(package="mtd_tf")
class GRU4RecModel(NextItemModel):
    """Scores every item 1..M as the next click of a prefix with GRU4Rec.

    For a prefix v_1..v_t (right-padded with 0), with E the item table (`[M, d]`):

      x_i = dropout_e(E[v_i])                                 (input item vectors)
      h_i = GRU(x_i, h_{i-1}),  h_0 = 0                       (paper Sec. 3; `SessionGRU`)
      q = dropout_h(h_t)                                      (state after the LAST REAL click)
      z_m = q . W[m] + b_m                                    (scores, m = 1..M)

    with `W = E` (tied, the default) or a separate output table, and `b` the output bias
    (`By` of `gru4rec.py`). The bias is carried by the protocol's dot product: the query is
    `[q ; 1]` and the candidates `[W ; b]` (`output_dim = d + 1`; with `score_scale` those
    augmented vectors are the ones normalised). Padding changes nothing: the GRU stops at
    each row's last real item; a row with no real item gives `q = 0`, scores `b`.

    What is built here and how it differs from the author's GRU4Rec. Hidasi & Czapp
    (RecSys 2023, "The Effect of Third Party Implementations on Reproducibility") show that
    reimplementations which drop parts of the original (its session-parallel mini-batches,
    negative sampling, BPR-max / cross-entropy losses with their final activations,
    constrained embedding, separate embedding and hidden dropout, Adagrad with momentum)
    can lose much of its accuracy. This model is NOT the author's training algorithm; it
    is GRU4Rec's network trained like every model of this comparison:
      - Training: whole-catalogue softmax cross-entropy over prefix-augmented sessions
        (every prefix of a training session predicts its next click, as in the SR-GNN
        and NARM papers' comparisons), Adam and an L2 term, with back-propagation through
        the whole prefix. The author trains on session-parallel mini-batches (the hidden
        state carried between mini-batches and reset at session boundaries, so gradients
        stop after one step), with the mini-batch's other targets plus `n_sample` = 2048
        popularity-sampled items (`sample_alpha`) as negatives, a loss chosen among
        cross-entropy (with a logQ correction, `logq`) and BPR-max, Adagrad with momentum,
        and sessions in time order. The original paper (2016) used TOP1 / BPR / XE on the
        mini-batch's items only.
      - Final activation: the author's code pairs each loss with one (`final_act`;
        default `linear`, `elu-X` for BPR-max, TOP1 with `tanh` in the 2016 paper);
        for cross-entropy it is `softmax`, which is what the trainer's softmax
        cross-entropy applies to these scores. No other output activation.
      - Embedding mode: tied (`tie_embeddings=True`, the author's
        `constrained_embedding=True`): one table is the GRU's input and the output
        weights. The author's README calls it "usually the best performing setting" and
        all six of its tuned configurations use it; with d = 100 for both the input and
        the hidden state it needs no projection, and it keeps the project's single item
        table (warm start, the repeat head and cosine scores all see one table).
        `tie_embeddings=False` is the author's separate embedding mode (an input table and
        an output table `Wy`, both [M, d]). The 2016 paper's one-hot input (embedding=0,
        an item-specific row of the GRU's input kernel) is not offered.
      - Dropout: the author drops the embedded input (`dropout_p_embed`) and each step's
        hidden state, which, as it is also the state carried to the next step, acts inside
        the recurrence (`dropout_p_hidden`, `gru4rec.py` `model`). Here `embedding_dropout`
        drops the input vectors and `dropout` the final state only (the query), outside
        the recurrence, so that Keras's GRU (and cuDNN with `reset_after`) can run it.
      - GRU: one layer of h = d = `embedding_dim` units (the project's d = 100; the
        author's 100-unit configurations, `layers=[100]`), `tanh` (`hidden_act`), the
        reset gate before the recurrent product as in `gru4rec.py` (`reset_after=True`
        runs the cuDNN form instead).
      - Initial values (`gru4rec.py` `init_matrix`, sigma = 0): uniform in
        +-sqrt(6 / (fan_in + fan_out)) per matrix (item table, output table, each gate's
        kernels), biases zero.
      - No L2 in the author's code (`lmbd=0`); the trainer's `l2` applies here as to
        every model.

    Defaults and their source: `paramfiles/rsc15_xe_shared_100_best.py` (cross-entropy,
    constrained embedding, 100 units, the author's configuration closest to this setup):
    `embedding_dropout` = 0.0 (`dropout_p_embed`), `dropout` = 0.4 (`dropout_p_hidden`).
    The README's table lists 0.1 and 0.0 for the same RSC15 row, `run_rsc15.py`'s
    cross-entropy example 0.0 and 0.3 (separate embedding), the code's defaults 0.0 and
    0.0, the 2016 paper's TOP1 run hidden dropout 0.5. `output_bias` = True (`By`),
    `tie_embeddings` = True (see above), `reset_after` = False (`gru4rec.py`).

    Training in the paper (the trainer's settings, not this model's): the author's
    `rsc15_xe_shared_100_best.py` trains 10 epochs with Adagrad, learning rate 0.2,
    momentum 0.2, mini-batch 32, 2048 extra negatives with sample_alpha 0.5, logq 1.0,
    no L2 (the README's RSC15 row: learning rate 0.1, momentum 0, sample_alpha 0.75). The
    2016 paper: Adagrad, TOP1, mini-batch 50, learning rate 0.01, momentum 0 (100 units,
    `run_rsc15.py`'s "original paper" lines).

    Args:
      num_items: M; ids are 1..M and 0 is padding.
      embedding_dim: d, also the GRU's width.
      max_len: the longest prefix the data sends (the GRU itself has no window).
      dropout: rate on the final hidden state (the query).
      embedding_dropout: rate on the input item vectors.
      tie_embeddings: score against the input item table (else a separate output table).
      output_bias: add a learned per-item bias to the scores.
      reset_after: the GRU's reset-gate placement (`SessionGRU`).
      score_scale: 0 for dot-product scores, s > 0 for s times their cosine.
      repeat_head: add a `RepeatExploreHead`.

    References: Hidasi, Karatzoglou, Baltrunas and Tikk, "Session-based Recommendations
    with Recurrent Neural Networks", ICLR 2016; Hidasi and Karatzoglou, "Recurrent Neural
    Networks with Top-k Gains for Session-based Recommendations", CIKM 2018; Hidasi and
    Czapp, RecSys 2023.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, dropout=0.4,
                 embedding_dropout=0.0, tie_embeddings=True, output_bias=True,
                 reset_after=False, score_scale=0.0, repeat_head=False, **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, max_len=max_len,
                         score_scale=score_scale, repeat_head=repeat_head, **kwargs)
        GRU4RecConfig(embedding_dim=embedding_dim, max_len=max_len, dropout=dropout,
                      embedding_dropout=embedding_dropout, tie_embeddings=tie_embeddings,
                      output_bias=output_bias, reset_after=reset_after,
                      score_scale=score_scale, repeat_head=repeat_head)
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.tie_embeddings = tie_embeddings
        self.output_bias = output_bias
        self.reset_after = reset_after
        self.output_dim = embedding_dim + (1 if output_bias else 0)
        policy = self.dtype_policy
        self.input_dropout = keras.layers.Dropout(embedding_dropout, dtype=policy)
        self.hidden_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.gru = SessionGRU(
            embedding_dim, reset_after=reset_after, kernel_initializer=_glorot_uniform_per_gate(),
            recurrent_initializer=_glorot_uniform_per_gate(), bias_initializer="zeros",
            name="gru", dtype=policy)

    def item_initializer(self):
        # U(+-sqrt(6 / (M + d))): the author's `init_matrix` on the [M, d] table.
        return keras.initializers.GlorotUniform()

    def build_encoder(self):
        d = self.embedding_dim
        self.gru.build((None, None, d))
        if not self.tie_embeddings:
            self.output_embeddings = self.add_weight(  # Wy
                name="output_embeddings", shape=(self.num_items, d),
                initializer=keras.initializers.GlorotUniform())
        if self.output_bias:
            self.item_bias = self.add_weight(  # By
                name="item_bias", shape=(self.num_items,), initializer="zeros")

    def encode_session(self, item_ids, training=None):
        """Query `[h_t ; 1]` (or `h_t` without `output_bias`).

        Args:
          item_ids: int [batch, len], right-padded with 0, ids in 0..M.
          training: dropout on or off.

        Returns:
          [batch, output_dim].
        """
        item_ids = tf.cast(item_ids, tf.int32)
        mask = item_ids > 0  # [batch, len], True = real item
        x = self.input_dropout(self.lookup(item_ids), training=training)  # [batch, len, d]
        _, last = self.gru(x, mask=mask, training=training)  # h_t, [batch, d]
        query = self.hidden_dropout(last, training=training)
        if self.output_bias:
            query = tf.concat([query, tf.ones_like(query[:, :1])], axis=-1)  # [q ; 1]
        return query

    def output_table(self):
        return self._with_bias(
            self.item_embeddings if self.tie_embeddings else self.output_embeddings,
            self.item_bias if self.output_bias else None)

    def output_rows(self, indices):
        return self._with_bias(
            gather_rows(self.item_embeddings if self.tie_embeddings else self.output_embeddings,
                        indices),
            gather_rows(self.item_bias, indices) if self.output_bias else None)

    def _with_bias(self, rows, bias):
        """[W ; b] ([..., d + 1]) with a bias `b`, else the rows as they are."""
        if bias is None:
            return rows
        rows = tf.convert_to_tensor(rows)
        return tf.concat([rows, tf.cast(bias, rows.dtype)[..., tf.newaxis]], axis=-1)

    def item_tables(self):
        tables = [self.item_embeddings]
        if not self.tie_embeddings:
            tables.append(self.output_embeddings)
        if self.output_bias:
            tables.append(self.item_bias)
        return tables

    def get_config(self):
        config = super().get_config()
        config.update(dropout=self.dropout, embedding_dropout=self.embedding_dropout,
                      tie_embeddings=self.tie_embeddings, output_bias=self.output_bias,
                      reset_after=self.reset_after)
        return config


@dataclasses.dataclass(frozen=True)
class GRU4RecConfig(model_settings.ComparisonConfig):
    """GRU4Rec's hyper-parameters (defaults: the author's
    `paramfiles/rsc15_xe_shared_100_best.py` and `gru4rec.py`)."""

    name: ClassVar[str] = "gru4rec"

    embedding_dim: int = model_settings.embedding_dim(100)
    dropout: float = model_settings.dropout(
        0.4, "Dropout rate (GRU4Rec: on the final hidden state, the author's dropout_p_hidden).")
    embedding_dropout: float = model_settings.dropout(
        0.0, "Dropout rate on the input item vectors (GRU4Rec's dropout_p_embed; NARM and "
        "CSRM's embedding dropout).")
    tie_embeddings: bool = settings.setting(
        True, "Score against the input item table (GRU4Rec's constrained_embedding) instead "
        "of a separate output table.")
    output_bias: bool = settings.setting(
        True, "A learned per-item bias added to the scores (GRU4Rec's By).")
    reset_after: bool = settings.setting(
        False, "GRU reset gate applied after the hidden transform (the cuDNN form) instead of "
        "before it (the paper's and the author's code).")

    @classmethod
    def model_class(cls):
        return GRU4RecModel
