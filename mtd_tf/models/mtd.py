"""MTD's intra-session network (from a right-padded prefix to scores over all items) and
its hyper-parameters.

Composes the layers of `mtd_tf.layers` (DESIGN.md section 2). The cross-session graph
module (`mtd_tf.models.graph_infomax`) talks to this model only through the item table
(`item_embeddings`), which it reads as GCN input and overwrites with the GCN output.
`MTDModel` implements the next-item protocol of `mtd_tf.models` (`query_vectors`,
`candidate_vectors`).
"""

import dataclasses
import math

import keras
import tensorflow as tf

from mtd_tf import settings
from mtd_tf.errors import ConfigError
from mtd_tf.layers import AttentiveAggregation
from mtd_tf.layers import PositionalDecayPooling
from mtd_tf.layers import SelfAttentionBlock
from mtd_tf.layers import masking
from mtd_tf.models.graph_infomax import GraphInfomax
from mtd_tf.models.graph_infomax import WRITEBACK_MODES

# Session encoders: self-attention blocks over items plus positions, then aggregation and
# pooling (the paper's); attentive aggregation over plain item embeddings (`va`); the same
# plus positional-decay pooling (`at`).
SESSION_ENCODERS = ("self_attention", "vanilla", "vanilla_decay")
GRAPH_ENCODERS = ("gcn", "gat", "none")
# The paper's ablation variants (Figure 3) as presets of the two encoders.
VARIANTS = {
    "mtd": ("self_attention", "gcn"),
    "lo": ("self_attention", "none"),
    "va": ("vanilla", "gcn"),
    "at": ("vanilla_decay", "gcn"),
    "ga": ("self_attention", "gat"),
}
CUSTOM_VARIANT = "custom"


def variant_of(session_encoder, graph_encoder):
    """The preset name of an encoder pair, or "custom"."""
    return next((name for name, pair in VARIANTS.items()
                 if pair == (session_encoder, graph_encoder)), CUSTOM_VARIANT)


@dataclasses.dataclass(frozen=True)
class MTDConfig:
    """MTD's hyper-parameters (DESIGN.md section 4 defaults), one validated record.

    `variant` is a preset of `session_encoder` and `graph_encoder`; an encoder given
    explicitly overrides it, and `variant` then names the resulting pair (or "custom").
    """

    variant: str = settings.setting(
        "mtd", "Preset of --session_encoder and --graph_encoder: mtd (full model), lo (no "
        "graph module), va (vanilla attention over item embeddings), at (va + positional "
        "decay), ga (graph attention encoder).", choices=(*VARIANTS, CUSTOM_VARIANT))
    session_encoder: str | None = settings.setting(
        None, "self_attention (paper), vanilla or vanilla_decay. Default: the variant's.",
        check=lambda value: None if value in (None, *SESSION_ENCODERS) else (
            f"must be one of {SESSION_ENCODERS}"))
    graph_encoder: str | None = settings.setting(
        None, "gcn (paper), gat or none. Default: the variant's.",
        check=lambda value: None if value in (None, *GRAPH_ENCODERS) else (
            f"must be one of {GRAPH_ENCODERS}"))
    embedding_dim: int = settings.setting(100, "Embedding size d.", settings.positive_int)
    max_len: int = settings.setting(50, "Sessions keep their last max_len items.",
                                    settings.positive_int)
    num_blocks: int = settings.setting(1, "Stacked self-attention blocks.",
                                       settings.non_negative_int)
    num_heads: int = settings.setting(1, "Attention heads per block (must divide d).",
                                      settings.positive_int)
    dropout: float = settings.setting(0.2, "Dropout rate.", settings.in_range(0, 1, high_open=True))
    decay: float = settings.setting(0.75, "Positional decay lambda (eq. 4).",
                                    settings.in_range(0, math.inf, high_open=True))
    aggregation_product: bool = settings.setting(
        False, "Multiplicative attentive aggregation of the authors' code instead of eq. 3's "
        "sum.")
    score_scale: float = settings.setting(
        0.0, "0: scores are dot products (paper); s > 0: s times the cosine of the session "
        "and item vectors (normalised scores with temperature 1/s).",
        settings.in_range(0, math.inf, high_open=True))
    gcn_layers: int = settings.setting(1, "Layers of the graph encoder.", settings.positive_int)
    graph_writeback: str = settings.setting(
        "replace", "How the graph output enters the item table: replace (paper) or rescale to "
        "the table's mean row norm first.", choices=WRITEBACK_MODES)
    graph_mix: float = settings.setting(
        1.0, "Share of the graph output in the item table after write-back: "
        "E <- (1 - mix) E + mix H (1 = overwrite, as the paper).",
        settings.in_range(0, 1, low_open=True))

    def __post_init__(self):
        settings.check_fields(self)
        if self.variant == CUSTOM_VARIANT and None in (self.session_encoder, self.graph_encoder):
            raise ConfigError("variant=custom needs both session_encoder and graph_encoder")
        preset = VARIANTS.get(self.variant, (None, None))
        session_encoder = self.session_encoder or preset[0]
        graph_encoder = self.graph_encoder or preset[1]
        object.__setattr__(self, "session_encoder", session_encoder)
        object.__setattr__(self, "graph_encoder", graph_encoder)
        object.__setattr__(self, "variant", variant_of(session_encoder, graph_encoder))
        if self.embedding_dim % self.num_heads:
            raise ConfigError(f"num_heads must divide embedding_dim ({self.embedding_dim}), "
                              f"got {self.num_heads}")

    @property
    def has_graph_module(self):
        return self.graph_encoder != "none"

    def build(self, num_items):
        """The built `MTDModel` for items 1..`num_items`."""
        model = MTDModel(
            num_items=num_items, embedding_dim=self.embedding_dim, max_len=self.max_len,
            num_blocks=self.num_blocks, num_heads=self.num_heads, dropout=self.dropout,
            decay=self.decay, session_encoder=self.session_encoder,
            aggregation_product=self.aggregation_product, score_scale=self.score_scale)
        model.build()
        return model

    def build_graph_module(self, num_items, l2):
        """The built `GraphInfomax` over this model's item table, or None (`lo`)."""
        if not self.has_graph_module:
            return None
        infomax = GraphInfomax(encoder=self.graph_encoder, num_layers=self.gcn_layers, l2=l2)
        infomax.build((num_items, self.embedding_dim))
        return infomax


@keras.saving.register_keras_serializable(package="mtd_tf")
class MTDModel(keras.Model):
    """Scores every item 1..M as the next click of a session prefix.

    For a prefix v_1..v_I (right-padded with 0):
      e_i = E[v_i] + P[I - i + 1]                      (input, dropout)
      x = SelfAttentionBlock^num_blocks(e)              (eq. 1-2)
      x* = AttentiveAggregation(x), p = PositionalDecayPooling(x)   (eq. 3-4)
      q = dropout(W_c [x_I ; x* ; p])                   (session vector)
      z_m = q . E[m] for m = 1..M                       (scores)
    With `score_scale = s > 0` (an option beyond the paper), scores are scaled cosines
    z_m = s * q.E[m] / (|q| |E[m]|): item popularity then cannot ride on embedding norms,
    and s sets the softmax temperature.
    Session encoders: `vanilla` drops self-attention, positions and pooling
    (q = W_c [e_I ; x*] over plain embeddings; the `va` variant); `vanilla_decay` is
    `vanilla` plus positional-decay pooling (`at`); `self_attention` is the full encoder
    (`mtd`, `lo` and `ga`, which differ in the graph module only).

    Args:
      num_items: M, the catalogue size; ids are 1..M and 0 is padding.
      embedding_dim: d.
      max_len: longest prefix the position table covers (older items are cut by the data).
      num_blocks: stacked self-attention blocks.
      num_heads: attention heads per block.
      dropout: rate for input, attention, FFN and session vector.
      decay: lambda of the positional decay pooling.
      session_encoder: one of `SESSION_ENCODERS`.
      aggregation_product: the reference's multiplicative aggregation instead of eq. 3's sum.
      score_scale: 0 for the paper's dot-product scores, s > 0 for s times their cosine.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, num_blocks=1, num_heads=1,
                 dropout=0.2, decay=0.75, session_encoder="self_attention",
                 aggregation_product=False, score_scale=0.0, **kwargs):
        super().__init__(**kwargs)
        problem = settings.positive_int(num_items)
        if problem:
            raise ValueError(f"num_items {problem}, got {num_items!r}")
        # The one set of range checks, shared with the CLI (a ConfigError is a ValueError).
        MTDConfig(embedding_dim=embedding_dim, max_len=max_len, num_blocks=num_blocks,
                  num_heads=num_heads, dropout=dropout, decay=decay,
                  session_encoder=session_encoder, aggregation_product=aggregation_product,
                  score_scale=score_scale)
        self.num_items = num_items
        self.embedding_dim = embedding_dim
        self.max_len = max_len
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.dropout = dropout
        self.decay = decay
        self.session_encoder = session_encoder
        self.aggregation_product = aggregation_product
        self.score_scale = float(score_scale)

        self.uses_full_encoder = session_encoder == "self_attention"
        self.uses_decay_pooling = session_encoder != "vanilla"
        # Every sublayer computes under this model's dtype policy (mixed precision included).
        policy = self.dtype_policy
        self.input_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.session_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.attention_blocks = [
            SelfAttentionBlock(num_heads=num_heads, dropout=dropout, name=f"self_attention_{i}",
                               dtype=policy)
            for i in range(num_blocks if self.uses_full_encoder else 0)]
        # Keras 3 tracks layers held in a Python list for its own saving, but not as
        # TensorFlow checkpoint dependencies: without an attribute per block,
        # `tf.train.Checkpoint(model=model)` silently skips their weights.
        for block in self.attention_blocks:
            setattr(self, block.name, block)
        self.aggregation = AttentiveAggregation(use_product=aggregation_product,
                                                name="aggregation", dtype=policy)
        self.decay_pooling = (PositionalDecayPooling(decay=decay, name="decay_pooling",
                                                     dtype=policy)
                              if self.uses_decay_pooling else None)
        self.session_projection = keras.layers.Dense(embedding_dim, use_bias=False, name="w_c",
                                                     dtype=policy)

    def build(self, input_shape=None):
        d = self.embedding_dim
        # Items 1..M only: row m-1 is item m, so padding (id 0) needs no fixed-zero row and
        # the GCN output [M, d] is written back with one assign.
        self.item_embeddings = self.add_weight(
            name="item_embeddings", shape=(self.num_items, d),
            initializer=keras.initializers.RandomNormal(stddev=d ** -0.5))
        if self.uses_full_encoder:
            # Row 0 is the padding position, rows 1..max_len count from the session's end.
            self.position_embeddings = self.add_weight(
                name="position_embeddings", shape=(self.max_len + 1, d),
                initializer=keras.initializers.RandomNormal(stddev=d ** -0.5))
        sequence_shape = (None, None, d)
        for block in self.attention_blocks:
            block.build(sequence_shape)
        self.aggregation.build(sequence_shape)
        if self.decay_pooling is not None:
            self.decay_pooling.build(sequence_shape)
        parts = 3 if self.uses_decay_pooling else 2
        self.session_projection.build((None, parts * d))
        self.built = True

    def lookup(self, item_ids):
        """Item vectors for ids 1..M, zeros for padding. [batch, len] -> [batch, len, d]."""
        mask = item_ids > 0
        rows = tf.gather(self.item_embeddings, tf.maximum(item_ids - 1, 0))
        return rows * tf.cast(mask, rows.dtype)[..., None]

    def encode_session(self, item_ids, training=None, return_attention_scores=False):
        """Session vector q.

        Args:
          item_ids: int [batch, len], right-padded with 0, ids in 0..M.
          training: dropout on or off.
          return_attention_scores: also return a dict of the layers' weights for inspection.

        Returns:
          q: float32 [batch, d] (and the dict of attention weights).
        """
        item_ids = tf.cast(item_ids, tf.int32)
        mask = item_ids > 0  # [batch, len], True = real item
        x = self.lookup(item_ids)  # [batch, len, d]
        weights = {}
        if self.uses_full_encoder:
            positions = masking.positions_from_end(mask)  # [batch, len], 0 at padding
            positions = tf.minimum(positions, self.max_len)
            x = x + tf.gather(self.position_embeddings, positions) * tf.cast(mask, x.dtype)[..., None]
        x = self.input_dropout(x, training=training)
        for index, block in enumerate(self.attention_blocks):
            x, weights[f"self_attention_{index}"] = block(
                x, mask=mask, training=training, return_attention_scores=True)
        last = masking.gather_last(x, mask)  # [batch, d]
        aggregated, weights["aggregation"] = self.aggregation(
            x, mask=mask, training=training, return_attention_scores=True)
        parts = [last, aggregated]
        if self.decay_pooling is not None:
            pooled, weights["decay_pooling"] = self.decay_pooling(
                x, mask=mask, training=training, return_attention_scores=True)
            parts.append(pooled)
        session = self.session_projection(tf.concat(parts, axis=-1))  # [batch, d]
        session = self.session_dropout(session, training=training)
        if return_attention_scores:
            return session, weights
        return session

    def query_vectors(self, item_ids, training=None):
        """[batch, d]: the left side of the scores, q (or s q/|q| with `score_scale`), in
        the compute dtype."""
        session = self.encode_session(item_ids, training=training)
        if self.score_scale:
            session = self.score_scale * tf.math.l2_normalize(session, axis=-1)
        return session

    def candidate_vectors(self):
        """[M, d]: the right side of the scores, E (or E[m]/|E[m]| with `score_scale`), in
        the compute dtype, as the query vectors."""
        table = tf.cast(self.item_embeddings, self.compute_dtype)
        return tf.math.l2_normalize(table, axis=-1) if self.score_scale else table

    def call(self, item_ids, training=None):
        """Scores z [batch, M]: column j is item j+1 (DESIGN.md section 2, step 6)."""
        return tf.matmul(self.query_vectors(item_ids, training=training),
                         self.candidate_vectors(), transpose_b=True)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_items=self.num_items, embedding_dim=self.embedding_dim, max_len=self.max_len,
            num_blocks=self.num_blocks, num_heads=self.num_heads, dropout=self.dropout,
            decay=self.decay, session_encoder=self.session_encoder,
            aggregation_product=self.aggregation_product,
            score_scale=self.score_scale)
        return config
