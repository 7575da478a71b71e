"""CoSAN, a comparison model: self-attention over collaborative item representations, each
item enriched by the recent training sessions that contain it (Luo et al., IJCAI 2020)."""

import dataclasses
from typing import ClassVar

import keras
import tensorflow as tf

from mtd_tf import settings
from mtd_tf.layers import SelfAttentionBlock
from mtd_tf.layers import masking
from mtd_tf.layers.collaborative_items import CollaborativeItems
from mtd_tf.models import model_settings
from mtd_tf.models.model_settings import ComparisonConfig
from mtd_tf.models.next_item import NextItemModel


@keras.saving.register_keras_serializable(package="mtd_tf")
class CoSANModel(NextItemModel):
    """Scores every item 1..M as the next click of a session prefix, from self-attention
    over the prefix's collaborative item representations.

    The paper's three stages (its abstract): (1) a collaborative item representation
    "by aggregating the embedding of neighborhood sessions retrieved according to each
    item in the current session"; (2) self-attention over the collaborative items gives
    the collaborative session representation; (3) the session is "represented by
    concatenating the collaborative session representation and the embedding of the
    current session". No code by the authors was found (others report the same, e.g.
    the issue tracker of github.com/Zhang-xiaokun/DIDN, issue 1), and only the abstract
    could be consulted for this implementation: the equations below are its reading of
    those three stages, each choice stated (C-numbers are this module's, not the
    paper's).

    Neighbourhood sessions come from a bank the model holds (`CollaborativeItems`,
    non-trainable variables saved with checkpoints and the SavedModel): the item ids of
    the last `memory_size` training prefixes, written FIFO by each training call after
    it has read the bank, never by an evaluation or serving call. For a prefix
    v_1..v_I with item embeddings e_i = E[v_i], bank sessions u_j and `set(.)` the
    distinct items:

      (C1) n_j = mean of E over the items of u_j         (session embedding, current E)
      (C2) sim(s, u_j) = |set(s) & set(u_j)| / sqrt(|set(s)| |set(u_j)|)   (cosine of
           the binary item vectors, as session-kNN)
      (C3) N_i = the `num_neighbors` bank sessions that contain v_i with the largest
           sim(s, u_j), ties to the more recent: "retrieved according to each item",
           and the same item gets other neighbours in another session
      (C4) beta_ij = softmax_{j in N_i}(e_i^T W_a n_j / sqrt(d)),  c_i = sum_j beta_ij n_j
           (c_i = 0 when no bank session holds v_i)
      (C5) x_i = W_f [e_i ; c_i] + P[I - i + 1]           (collaborative item; position
           counted from the end), dropout
      (C6) h = SelfAttentionBlock^num_blocks(x)             (non-causal: every item sees
           the whole prefix; the readout position sees it either way)
      (C7) q = W_o [h_I ; mean_i e_i]                       (collaborative session
           representation at the last real item, concatenated with the current
           session's embedding, computed as (C1) computes a bank session's)
      (C8) z_m = q . E[m] for m = 1..M                      (scores; softmax in training)

    Choices where the abstract says nothing (each a possible deviation from the paper):
    the bank of recent *training prefixes* (the data are prefix-augmented) rather than an
    index over every training session, so neighbours are found in memory and in a
    `tf.function`; mean pooling as the session embedding of (C1) and (C7); the cosine
    ranking of (C2)-(C3); the bilinear attention of (C4); fusion by a linear map of the
    concatenation in (C5); position embeddings; readout at the last real item in (C7).
    In training, the bank may hold a longer prefix of the very session being trained on
    (a neighbour that contains the target); with shuffled batches and a bank far smaller
    than the training set this is rare. Under a distribution strategy every replica
    writes the sessions of the whole batch. A warm start copies the bank as it is: its ids
    name the old catalogue's items (ids beyond the new M are ignored) until training
    has overwritten it, `memory_size` sessions later.

    Defaults (none could be read from the paper): d = 100 (the comparison's common
    embedding size), one self-attention block with one head and dropout 0.2 (the
    settings of this project's other self-attention encoder), a bank of 4,096 sessions
    and 10 neighbours per item.

    Training in the paper: its learning rate, batch size, L2 and epochs could not be
    read; set them on the trainer.

    Args:
      num_items: M; ids are 1..M and 0 is padding.
      embedding_dim: d.
      max_len: longest prefix read, and the width of a bank session.
      num_blocks: stacked self-attention blocks (0: h = x).
      num_heads: attention heads per block; must divide d.
      dropout: rate for the input and inside the blocks.
      memory_size: sessions in the bank.
      num_neighbors: neighbourhood sessions per item, |N_i| at most.
      score_scale: 0 for dot-product scores, s > 0 for s times their cosine.
      repeat_head: add a `RepeatExploreHead` (beyond the paper).

    Reference: A. Luo, P. Zhao, Y. Liu, F. Zhuang, D. Wang, J. Xu, J. Fang, V. S. Sheng,
    "Collaborative Self-Attention Network for Session-based Recommendation", IJCAI 2020,
    pp. 2591-2597, doi:10.24963/ijcai.2020/359.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, num_blocks=1, num_heads=1,
                 dropout=0.2, memory_size=4096, num_neighbors=10, score_scale=0.0,
                 repeat_head=False, **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, max_len=max_len,
                         score_scale=score_scale, repeat_head=repeat_head, **kwargs)
        CoSANConfig(embedding_dim=embedding_dim, max_len=max_len, num_blocks=num_blocks,
                    num_heads=num_heads, dropout=dropout, memory_size=memory_size,
                    num_neighbors=num_neighbors, score_scale=score_scale,
                    repeat_head=repeat_head)
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.dropout = dropout
        self.memory_size = memory_size
        self.num_neighbors = num_neighbors

        policy = self.dtype_policy
        self.collaborative_items = CollaborativeItems(
            memory_size=memory_size, max_len=max_len, num_neighbors=num_neighbors,
            name="collaborative_items", dtype=policy)
        self.fusion = keras.layers.Dense(embedding_dim, use_bias=False, name="fusion",
                                         dtype=policy)  # W_f of (C5)
        self.input_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.set_attention_blocks([
            SelfAttentionBlock(num_heads=num_heads, dropout=dropout, causal=False,
                               name=f"self_attention_{i}", dtype=policy)
            for i in range(num_blocks)])
        self.session_projection = keras.layers.Dense(embedding_dim, use_bias=False,
                                                     name="w_o", dtype=policy)  # (C7)

    def build_encoder(self):
        d = self.embedding_dim
        # Row 0 is the padding position, rows 1..max_len count from the session's end.
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.max_len + 1, d),
            initializer=keras.initializers.RandomNormal(stddev=d ** -0.5))
        self.collaborative_items.build(((None, None), (None, None, d), (self.num_items, d)))
        self.fusion.build((None, None, 2 * d))
        for block in self.attention_blocks:
            block.build((None, None, d))
        self.session_projection.build((None, 2 * d))

    def encode_session(self, item_ids, training=None, return_neighbors=False):
        """Session vector q (C1-C7); with `training=True` the batch then enters the bank.

        Args:
          item_ids: int `[batch, len]`, right-padded with 0, ids in 0..M.
          training: dropout on and bank written (a Python bool).
          return_neighbors: also return the chosen bank rows and their weights
            (`CollaborativeItems`).

        Returns:
          q: `[batch, d]` in the compute dtype (and the neighbours' dict).
        """
        item_ids = tf.cast(item_ids, tf.int32)
        mask = item_ids > 0  # [B, L], True = real item
        real = tf.cast(mask, self.compute_dtype)[..., tf.newaxis]  # [B, L, 1]
        # Outside Keras's autocast scope (query_vectors is called directly): cast here.
        items = tf.cast(self.lookup(item_ids), self.compute_dtype)  # e_i, [B, L, d]
        collaborative, neighbors = self.collaborative_items(
            (item_ids, items, self.item_embeddings), training=training,
            return_neighbors=True)  # c_i, [B, L, d]
        positions = tf.minimum(masking.positions_from_end(mask), self.max_len)  # [B, L]
        x = self.fusion(tf.concat([items, collaborative], axis=-1))
        position = tf.cast(tf.gather(self.position_embeddings, positions), x.dtype)
        x = (x + position) * real  # (C5)
        x = self.input_dropout(x, training=training)
        for block in self.attention_blocks:
            x = block(x, mask=mask, training=training)  # (C6)
        last = masking.gather_last(x, mask)  # h_I, [B, d]
        count = tf.maximum(tf.reduce_sum(real, axis=1), 1)  # [B, 1]
        current = tf.reduce_sum(items, axis=1) / count  # mean_i e_i, [B, d]
        session = self.session_projection(tf.concat([last, current], axis=-1))  # (C7)
        if return_neighbors:
            return session, neighbors
        return session

    def get_config(self):
        config = super().get_config()
        config.update(num_blocks=self.num_blocks, num_heads=self.num_heads,
                      dropout=self.dropout, memory_size=self.memory_size,
                      num_neighbors=self.num_neighbors)
        return config


@dataclasses.dataclass(frozen=True)
class CoSANConfig(ComparisonConfig):
    """CoSAN's hyper-parameters (`CoSANModel` names the source of each default)."""

    name: ClassVar[str] = "cosan"

    embedding_dim: int = model_settings.embedding_dim(100)
    num_blocks: int = model_settings.num_blocks(1)
    num_heads: int = model_settings.num_heads(1)
    dropout: float = model_settings.dropout(0.2)
    memory_size: int = settings.setting(
        4096, "Recent training sessions kept in the model's FIFO memory.",
        settings.positive_int)
    num_neighbors: int = settings.setting(
        10, "Neighbourhood sessions taken from the memory of recent sessions.",
        settings.positive_int)

    def __post_init__(self):
        super().__post_init__()
        model_settings.check_heads_divide_width(self)

    @classmethod
    def model_class(cls):
        return CoSANModel
