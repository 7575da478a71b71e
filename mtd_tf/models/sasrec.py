"""SASRec (Kang and McAuley, ICDM 2018) as a next-item model, and its hyper-parameters.

Stacked causal self-attention over the prefix; the output at its last real position is the
session vector, scored against the shared item table. Follows the authors' released code,
github.com/kang205/SASRec (`model.py`, `modules.py`, `main.py`).
"""

import dataclasses
from typing import ClassVar

import keras
import tensorflow as tf

from mtd_tf.layers import masking
from mtd_tf.layers.sasrec_block import SASRecBlock
from mtd_tf.models import model_settings
from mtd_tf.models.next_item import NextItemModel

# The released code's layer norm (`modules.normalize`) uses 1e-8.
_LAYER_NORM_EPSILON = 1e-8


@keras.saving.register_keras_serializable(package="mtd_tf")
class SASRecModel(NextItemModel):
    """Scores every item 1..M as the next click of a prefix with SASRec's encoder.

    For a prefix v_1..v_I (right-padded with 0), k_i = I - i + 1 its position counted from
    the end (the last click has k = 1):

      e_i = dropout(sqrt(d) E[v_i] + P[k_i])            (Sec. III-A; code `model.py`)
      x = SASRecBlock^num_blocks(e)                     (Sec. III-B, III-C; `SASRecBlock`)
      q = LayerNorm(x)_I                                (code's final `normalize`; the
                                                         output at the last real item)
      z_m = q . E[m] for m = 1..M                       (Sec. III-D, shared item embedding)

    Positions. The code left-pads every sequence to a fixed window of `maxlen` and adds the
    learned embedding of the column, so its last item always sits in column maxlen-1, the one
    before in maxlen-2, ...: the position an item gets is its distance from the end of the
    window. With right-padded prefixes the same embedding is `P[k_i]`, counted from the end
    (row k-1 of `position_embeddings` is the code's row maxlen-k); this is the code's
    model, not a change to it. Items more than `max_len` clicks before the last one are
    outside the window and are dropped, as the code's truncation drops them (the data keeps
    the last `max_len` clicks anyway).

    Padding: item and position vectors are zeroed at padding, padded keys get no attention
    and padded rows are zeroed after every block, so padding never changes the scores; a row
    without real items yields finite scores.

    Defaults and their source:
      num_blocks = 2, num_heads = 1: paper Sec. IV (implementation details), code `main.py`.
      max_len = 50: the paper's n for its sparse data sets, code `main.py` (`--maxlen`).
      dropout = 0.5: the paper's rate for its sparse data sets (Beauty, Games, Steam) and the
        code's default (0.2 is for the dense MovieLens-1M, about 160 actions per user).
        Session data (YOOCHOOSE, DIGINETICA, RetailRocket) is sparser still, a handful of
        clicks per session, so the sparse setting applies. It converges more slowly (on
        synthetic data, 300 items, d = 32: P@20 31% after two epochs against 53% at 0.2, and
        54% after six), so give it epochs.
      embedding_dim = 100 (the project's d for every model); the paper uses d = 50.
      Initialisation: Glorot-uniform item table, position table, kernels; zero biases, unit
        LayerNorm scales (tf.get_variable's and tf.layers' defaults, which the code keeps).

    Deviations from the original, and why:
      - Training objective: the paper's binary cross-entropy with one sampled negative per
        position (Sec. III-E) is replaced by the project's full-catalogue softmax
        cross-entropy on prefix-augmented sessions, the same for every compared model.
      - None in the encoder: where the paper's equations and the code differ (biases, which
        rows the residuals add, where dropout acts), the code is followed; `SASRecBlock`
        lists the differences. Padding has no row in the item table (id 0 looks up zeros),
        which is the code's `zero_pad=True` table.

    Training in the paper (the trainer's settings, not this model's): Adam, learning rate
    0.001 (code: beta_2 = 0.98), batch size 128, L2 on embeddings 0 (code `--l2_emb`),
    201 epochs (code `--num_epochs`).

    Args:
      num_items: M; ids are 1..M and 0 is padding.
      embedding_dim: d.
      max_len: the window: rows of the position table, and the most recent clicks read.
      num_blocks: stacked self-attention blocks.
      num_heads: attention heads per block (must divide d).
      dropout: rate for the input embeddings, attention weights and both FFN layers.
      score_scale: 0 for dot-product scores, s > 0 for s times their cosine.
      repeat_head: add a `RepeatExploreHead`.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, num_blocks=2, num_heads=1,
                 dropout=0.5, score_scale=0.0, repeat_head=False, **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, max_len=max_len,
                         score_scale=score_scale, repeat_head=repeat_head, **kwargs)
        SASRecConfig(embedding_dim=embedding_dim, max_len=max_len, num_blocks=num_blocks,
                     num_heads=num_heads, dropout=dropout, score_scale=score_scale,
                     repeat_head=repeat_head)
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.dropout = dropout
        policy = self.dtype_policy
        self.input_dropout = keras.layers.Dropout(dropout, name="input_dropout", dtype=policy)
        self.set_attention_blocks([
            SASRecBlock(num_heads=num_heads, dropout=dropout, name=f"sasrec_block_{i}",
                        dtype=policy)
            for i in range(num_blocks)])
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=_LAYER_NORM_EPSILON, name="final_norm", dtype=policy)

    def item_initializer(self):
        # The code's item table is a tf.get_variable without initializer: Glorot uniform.
        return keras.initializers.GlorotUniform()

    def build_encoder(self):
        # Row k-1 is the position k counted from the end (the code's row maxlen - k).
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.max_len, self.embedding_dim),
            initializer=keras.initializers.GlorotUniform())
        sequence_shape = (None, None, self.embedding_dim)
        for block in self.attention_blocks:
            block.build(sequence_shape)
        self.final_norm.build(sequence_shape)

    def encode_session(self, item_ids, training=None, return_attention_scores=False):
        """Session vector q: the last real position's output.

        Args:
          item_ids: int [batch, len], right-padded with 0, ids in 0..M.
          training: dropout on or off.
          return_attention_scores: also return {block name: [batch, heads, len, len]}.

        Returns:
          q: [batch, d] (and the dict of attention weights).
        """
        item_ids = tf.cast(item_ids, tf.int32)
        positions = masking.positions_from_end(item_ids > 0)  # [batch, len], 0 at padding
        # True = real item inside the window of the last max_len clicks.
        mask = (positions > 0) & (positions <= self.max_len)
        items = self.lookup(item_ids)  # [batch, len, d]
        position_rows = tf.gather(self.position_embeddings,
                                  tf.clip_by_value(positions - 1, 0, self.max_len - 1))
        x = items * tf.cast(self.embedding_dim ** 0.5, items.dtype) + tf.cast(
            position_rows, items.dtype)
        # Dropout, then zero padding and clicks outside the window (the code's order).
        x = self.input_dropout(x, training=training) * tf.cast(mask, x.dtype)[..., tf.newaxis]
        weights = {}
        for block in self.attention_blocks:
            x, weights[block.name] = block(x, mask=mask, training=training,
                                           return_attention_scores=True)
        session = masking.gather_last(self.final_norm(x), mask)  # [batch, d]
        if return_attention_scores:
            return session, weights
        return session

    def get_config(self):
        config = super().get_config()
        config.update(num_blocks=self.num_blocks, num_heads=self.num_heads,
                      dropout=self.dropout)
        return config


@dataclasses.dataclass(frozen=True)
class SASRecConfig(model_settings.ComparisonConfig):
    """SASRec's hyper-parameters (defaults: paper Sec. IV and kang205/SASRec `main.py`)."""

    name: ClassVar[str] = "sasrec"
    # SASRec's code: Adam, lr 1e-3, batch 128, no L2.
    paper_training: ClassVar[dict] = {"batch_size": 128, "l2": 0.0}

    embedding_dim: int = model_settings.embedding_dim(100)
    max_len: int = model_settings.max_len(50)
    num_blocks: int = model_settings.num_blocks(2)
    num_heads: int = model_settings.num_heads(1)
    dropout: float = model_settings.dropout(
        0.5, "Dropout rate (SASRec: input embeddings, attention weights, FFN layers).")

    def __post_init__(self):
        super().__post_init__()
        model_settings.check_heads_divide_width(self)

    @classmethod
    def model_class(cls):
        return SASRecModel
