"""NARM (Li et al., CIKM 2017) as a next-item model, and its hyper-parameters.

The neural attentive recommendation machine: a GRU's last state and an attention pooling of
its states (`mtd_tf.layers.NARMEncoder`), decoded by a bilinear match with the item table.
Follows the paper and the authors' released code, github.com/lijingsdu/sessionRec_NARM
(`NARM.py`).
"""

import dataclasses
from typing import ClassVar

import keras
import tensorflow as tf

from mtd_tf import settings
from mtd_tf.layers import NARMEncoder
from mtd_tf.layers.narm_encoder import scaled_normal
from mtd_tf.models import model_settings
from mtd_tf.models.next_item import NextItemModel


class NARMEncoderModel(NextItemModel):
    """The part of a model built on NARM's encoder and decoder (NARM itself; CSRM, whose
    inner memory and decoder are NARM's): its five settings, the input dropout, the
    `NARMEncoder`, the session dropout, the bilinear decoder and the item table's initial
    values.

    A subclass creates the layers in its constructor with `create_encoder_layers` and,
    after any layers of its own that sit between encoder and decoder (CSRM's outer
    memory), `create_bilinear_decoder`: the order of creation is the order of the model's
    weights (`get_weights`, the optimizer's slots in a checkpoint). It encodes with
    `encode_prefix` and decodes with `decode`.
    """

    def create_encoder_layers(self, dropout, embedding_dropout, attention_softmax,
                              separate_encoders, reset_after):
        """Keeps NARM's settings and creates the input dropout (rate `embedding_dropout`),
        the session dropout (rate `dropout`) and the encoder (h = d)."""
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.attention_softmax = attention_softmax
        self.separate_encoders = separate_encoders
        self.reset_after = reset_after
        policy = self.dtype_policy
        self.input_dropout = keras.layers.Dropout(embedding_dropout, dtype=policy)
        self.session_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.encoder = NARMEncoder(self.embedding_dim, attention_softmax=attention_softmax,
                                   separate_encoders=separate_encoders,
                                   reset_after=reset_after, name="encoder", dtype=policy)

    def create_bilinear_decoder(self):
        """Creates the decoder B (`[d, 2h]`), folded into the query: the `bilinear` layer's
        kernel is B^T, `[2h, d]`, N(0, 2/d) (`NARM.py` `init_weights`)."""
        self.bilinear = keras.layers.Dense(
            self.embedding_dim, use_bias=False, kernel_initializer=scaled_normal("fan_out"),
            name="bilinear", dtype=self.dtype_policy)

    def item_initializer(self):
        return scaled_normal()  # N(0, 2/M) on [M, d]

    def encode_prefix(self, item_ids, training=None):
        """NARM's encoder on the dropped-out item vectors of right-padded prefixes.

        Args:
          item_ids: int [batch, len], right-padded with 0, ids in 0..M.
          training: dropout on or off.

        Returns:
          (mask, c, alpha): the real items (bool [batch, len], True = real item),
          `c = [c_g ; c_l]` ([batch, 2h]) and the local attention ([batch, len]).
        """
        item_ids = tf.cast(item_ids, tf.int32)
        mask = item_ids > 0  # [batch, len], True = real item
        x = self.input_dropout(self.lookup(item_ids), training=training)  # [batch, len, d]
        encoded, alpha = self.encoder(x, mask=mask, training=training,
                                      return_attention_scores=True)  # [batch, 2h]
        return mask, encoded, alpha

    def decode(self, session, training=None):
        """The query `q = B dropout(session)`: [batch, 2h] -> [batch, d]."""
        return self.bilinear(self.session_dropout(session, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(dropout=self.dropout, embedding_dropout=self.embedding_dropout,
                      attention_softmax=self.attention_softmax,
                      separate_encoders=self.separate_encoders, reset_after=self.reset_after)
        return config


@keras.saving.register_keras_serializable(package="mtd_tf")
class NARMModel(NARMEncoderModel):
    """Scores every item 1..M as the next click of a prefix with NARM.

    For a prefix v_1..v_t (right-padded with 0), with E the item table (`[M, d]`):

      x_i = dropout_e(E[v_i])                                  (input, code: rate 0.25)
      c = [c_g ; c_l] = NARMEncoder(x)                         (eq. 5-9, `NARMEncoder`)
      c' = dropout(c)                                          (code: rate 0.5)
      z_m = E[m]^T B c'                                        (bilinear decoder, eq. 10)

    `B` is `[d, 2h]`; as the protocol scores `q . E[m]`, it is folded into the query,
    `q = B c'` (the `bilinear` layer's kernel is `B^T`, `[2h, d]`). In the encoder, `c_g =
    h_t` is the GRU's state after the last *real* click and the attention runs over the real
    positions only; a row with no real item gives `c = 0`, `q = 0`.

    Defaults and their source:
      embedding_dropout = 0.25, dropout = 0.5: `NARM.py` `build_model` (`use_dropout`:
        `dropout_layer(emb, drop_p=0.25)`, `dropout_layer(proj, drop_p=0.5)`).
      attention_softmax = True: `NARM.py` normalises the attention weights with a softmax
        over the real positions; the paper's eq. 6-8 use `e_tj` as it is
        (`attention_softmax=False`). The code produced the paper's numbers.
      separate_encoders = False: `NARM.py` runs one GRU for both encoders (the paper's
        Figure 4: `h_t^g` and `h_t^l` "have the same values").
      reset_after = False: `NARM.py`'s GRU applies the reset gate before the recurrent
        product.
      Initial values (`NARM.py` `init_weights`, `ortho_weight`): item table N(0, 2/M),
        GRU input kernels, `A1`, `A2` N(0, 2/fan_in), `v` N(0, 2), `B` N(0, 2/d),
        recurrent kernels orthogonal (Keras's orthogonal over the three gates' [h, 3h]
        kernel, where the code draws one orthogonal [h, h] per gate), biases zero.

    Deviations from the original:
      - d = 100 for the item vectors and the GRU (the project's "d = 100 where
        configurable", `embedding_dim`); the paper and code use 50-dimensional item
        embeddings and 100 hidden units (`dim_proj=50`, `hidden_units=100`).
      - Sigmoid gates and attention: `NARM.py` uses Theano's `hard_sigmoid` (a piecewise
        linear approximation) in the GRU gates and the attention; the paper writes the
        sigmoid, as here.
      - Dropout is inverted (scaled at training time); the code scales at test time,
        which is the same in expectation.
      - Training: the project's softmax cross-entropy on prefix-augmented sessions with
        Adam and L2, as the code (which adds no L2).

    Training in the paper (the trainer's settings, not this model's): Adam, learning rate
    0.001, mini-batch 512, 30 epochs (code `train_gru` and its call), no L2. The code keeps
    the first 19 items of every training and test prefix (`data_process.load_data`,
    `maxlen=19`, `x[:maxlen]`); the project keeps the last `max_len`.

    Args:
      num_items: M; ids are 1..M and 0 is padding.
      embedding_dim: d, also the GRU's width h.
      max_len: the longest prefix the data sends (the GRU itself has no window).
      dropout: rate on the session feature c.
      embedding_dropout: rate on the input item vectors.
      attention_softmax: normalise the local attention (the code) or not (the paper).
      separate_encoders: separate GRUs for the global and local encoders (CSRM's code).
      reset_after: the GRU's reset-gate placement (`SessionGRU`).
      score_scale: 0 for dot-product scores, s > 0 for s times their cosine.
      repeat_head: add a `RepeatExploreHead`.

    Reference: Li, Ren, Chen, Ren, Lian and Ma, "Neural Attentive Session-based
    Recommendation", CIKM 2017.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, dropout=0.5,
                 embedding_dropout=0.25, attention_softmax=True, separate_encoders=False,
                 reset_after=False, score_scale=0.0, repeat_head=False, **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, max_len=max_len,
                         score_scale=score_scale, repeat_head=repeat_head, **kwargs)
        NARMConfig(embedding_dim=embedding_dim, max_len=max_len, dropout=dropout,
                   embedding_dropout=embedding_dropout, attention_softmax=attention_softmax,
                   separate_encoders=separate_encoders, reset_after=reset_after,
                   score_scale=score_scale, repeat_head=repeat_head)
        self.create_encoder_layers(dropout, embedding_dropout, attention_softmax,
                                   separate_encoders, reset_after)
        self.create_bilinear_decoder()

    def build_encoder(self):
        d = self.embedding_dim
        self.encoder.build((None, None, d))
        self.bilinear.build((None, 2 * d))

    def encode_session(self, item_ids, training=None, return_attention_scores=False):
        """Query `q = B dropout(c)`.

        Args:
          item_ids: int [batch, len], right-padded with 0, ids in 0..M.
          training: dropout on or off.
          return_attention_scores: also return the local attention `alpha` [batch, len].

        Returns:
          q: [batch, d] (and alpha).
        """
        _, encoded, alpha = self.encode_prefix(item_ids, training=training)
        query = self.decode(encoded, training=training)  # [batch, d]
        if return_attention_scores:
            return query, alpha
        return query


@dataclasses.dataclass(frozen=True)
class NARMConfig(model_settings.ComparisonConfig):
    """NARM's hyper-parameters (defaults: the authors' `NARM.py`)."""

    name: ClassVar[str] = "narm"
    # NARM's code: Adam, lr 1e-3, batch 512, no L2.
    paper_training: ClassVar[dict] = {"l2": 0.0}

    embedding_dim: int = model_settings.embedding_dim(100)
    dropout: float = model_settings.dropout(
        0.5, "Dropout rate (NARM, CSRM: on the session feature before the bilinear decoder).")
    embedding_dropout: float = model_settings.dropout(
        0.25, "Dropout rate on the input item vectors.")
    attention_softmax: bool = settings.setting(
        True, "Normalise NARM's local attention with a softmax over the real positions (the "
        "authors' code) instead of using its raw scores (the paper's eq. 6-8).")
    separate_encoders: bool = settings.setting(
        False, "Separate GRUs for NARM's global and local encoders (CSRM's code) instead of "
        "one (NARM's code).")
    reset_after: bool = settings.setting(
        False, "GRU reset gate applied after the hidden transform (the cuDNN form) instead of "
        "before it (the authors' code).")

    @classmethod
    def model_class(cls):
        return NARMModel
