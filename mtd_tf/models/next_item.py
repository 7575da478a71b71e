"""What every next-item model shares: the item table, its padding-aware lookup, the
optional cosine scores and repeat head, and the protocol methods (`mtd_tf.models`).

A model subclasses `NextItemModel`, builds its own weights in `build_encoder` and maps a
right-padded prefix to its session vector in `encode_session`; scoring, the repeat head
and the config's common keys then behave the same for MTD and every comparison model, so
training, evaluation and export cannot treat two models differently.
"""

import keras
import tensorflow as tf

from mtd_tf import settings
from mtd_tf.layers import RepeatExploreHead
from mtd_tf.models import model_settings
from mtd_tf.serving.repeat_prior import RepeatPrior


def gather_rows(table, indices):
    """`tf.gather(table, indices)` that reads only the rows: a Keras variable is read whole
    first (and copied whole once rows of it were updated in place, as a row-sparse
    optimizer does), its TensorFlow variable row by row."""
    return tf.gather(table.value if isinstance(table, keras.Variable) else table, indices)


class NextItemModel(keras.Model):
    """Scores every item 1..M as the next click of a right-padded prefix (0 = padding).

    scores = query_vectors(prefix) @ candidate_vectors()^T, where the query is the
    subclass's session vector q and the candidates are the item table E (row j = item
    j+1; padding has no row). With `score_scale = s > 0` (an option beyond the papers)
    they are s q/|q| and E[m]/|E[m]|: scaled cosines, so popularity cannot ride on
    embedding norms and s sets the softmax temperature.

    Args:
      num_items: M; ids are 1..M and 0 is padding.
      embedding_dim: d, the width of the item table.
      max_len: the longest prefix the model reads (the data keeps the last max_len clicks).
      score_scale: 0 for dot-product scores, s > 0 for s times their cosine.
      repeat_head: add a `RepeatExploreHead` (`repeat_head` attribute; None without): the
        model then outputs log-probabilities of its repeat/explore mixture.
      repeat_from_scores: the head's variant that starts from the model's own scores
        (`RepeatExploreHead(from_scores=True)`); needs `repeat_head`.
      repeat_bonus, repeat_count_bonus, repeat_recency_bonus, repeat_lift_limit: the
        ranking-time prior on the prefix's own items (`serving.repeat_prior`;
        `repeat_prior` attribute, None when its weights are all 0), which retrieval adds to
        the scores (with `repeat_head`, to the mixture's log-probabilities) and training
        never sees.
    """

    def __init__(self, num_items, embedding_dim=100, max_len=50, score_scale=0.0,
                 repeat_head=False, repeat_from_scores=False, repeat_bonus=0.0,
                 repeat_count_bonus=0.0, repeat_recency_bonus=0.0, repeat_lift_limit=0,
                 **kwargs):
        super().__init__(**kwargs)
        prior = RepeatPrior(repeat_bonus, repeat_count_bonus, repeat_recency_bonus,
                            repeat_lift_limit)
        model_settings.check_repeat_options(repeat_head, repeat_from_scores)
        problem = settings.positive_int(num_items)
        if problem:
            raise ValueError(f"num_items {problem}, got {num_items!r}")
        self.num_items = num_items
        self.embedding_dim = embedding_dim
        self.max_len = max_len
        self.score_scale = float(score_scale)
        # Width of the query and candidate vectors; a subclass whose scores live in another
        # space (its own output table) sets it in its constructor.
        self.output_dim = embedding_dim
        self.repeat_head = (RepeatExploreHead(from_scores=repeat_from_scores,
                                              name="repeat_head", dtype=self.dtype_policy)
                            if repeat_head else None)
        self.repeat_prior = prior if prior.active else None

    def item_initializer(self):
        """The item table's initial values; models whose papers say otherwise override it."""
        return keras.initializers.RandomNormal(stddev=self.embedding_dim ** -0.5)

    def build(self, input_shape=None):
        # Items 1..M only: row m-1 is item m, so padding (id 0) needs no fixed-zero row and
        # a graph module's output [M, d] is written back with one assign.
        self.item_embeddings = self.add_weight(
            name="item_embeddings", shape=(self.num_items, self.embedding_dim),
            initializer=self.item_initializer())
        self.build_encoder()
        if self.repeat_head is not None:
            self.repeat_head.build(((None, None), (None, self.output_dim),
                                    (self.num_items, self.output_dim), (None, self.num_items)))
        self.built = True

    def build_encoder(self):
        """Creates the session encoder's weights (everything but the item table)."""
        raise NotImplementedError

    def encode_session(self, item_ids, training=None):
        """int32 [batch, len] right-padded prefixes -> [batch, output_dim] session vectors q,
        in the compute dtype; the last *real* item of a row is its latest click."""
        raise NotImplementedError

    def set_attention_blocks(self, blocks):
        """Holds `blocks` (stacked layers, input side first) as the `attention_blocks` list
        and each also as an attribute of its own name: Keras 3 tracks layers held in a
        Python list for its own saving, but not as TensorFlow checkpoint dependencies, so
        without an attribute per block `tf.train.Checkpoint(model=model)` silently skips
        their weights."""
        self.attention_blocks = blocks
        for block in blocks:
            setattr(self, block.name, block)

    def output_table(self):
        """[M, output_dim]: the item side of the scores before `score_scale`; the input
        item table, unless a subclass scores against a table of its own."""
        return self.item_embeddings

    def item_tables(self):
        """The weights with one row per item (row j = item j+1): a warm start on a new
        catalogue remaps exactly these."""
        return [self.item_embeddings]

    def lookup(self, item_ids):
        """Item vectors for ids 1..M, zeros for padding. [batch, len] -> [batch, len, d]."""
        mask = item_ids > 0
        rows = tf.cast(gather_rows(self.item_embeddings, tf.maximum(item_ids - 1, 0)),
                       self.compute_dtype)
        return rows * tf.cast(mask, rows.dtype)[..., None]

    def query_vectors(self, item_ids, training=None):
        """[batch, output_dim]: the left side of the scores, q (or s q/|q| with `score_scale`), in
        the compute dtype."""
        session = self.encode_session(tf.cast(item_ids, tf.int32), training=training)
        if self.score_scale:
            session = self.score_scale * tf.math.l2_normalize(session, axis=-1)
        return session

    def candidate_vectors(self):
        """[M, output_dim]: the right side of the scores, the output table E (or E[m]/|E[m]|
        with `score_scale`), in the compute dtype, as the query vectors."""
        return self._as_candidates(self.output_table())

    def candidate_rows(self, item_ids):
        """[..., output_dim]: the rows of `candidate_vectors()` of ids 1..M, read without
        the rest of the table: a sampled-softmax step needs a few thousand rows of it, and
        reading all M would make its cost grow with the catalogue."""
        return self._as_candidates(self.output_rows(tf.cast(item_ids, tf.int32) - 1))

    def _as_candidates(self, rows):
        """Rows of the output table as candidate vectors: in the compute dtype, and unit
        length with `score_scale`."""
        rows = tf.cast(rows, self.compute_dtype)
        return tf.math.l2_normalize(rows, axis=-1) if self.score_scale else rows

    def output_rows(self, indices):
        """Rows `indices` (0-based) of `output_table()`; a subclass that assembles its table
        gathers from its parts."""
        return gather_rows(self.output_table(), indices)

    def call(self, item_ids, training=None):
        """Scores z [batch, M] (column j = item j+1); with the repeat head, the
        log-probabilities of its mixture."""
        query, candidates = self.query_vectors(item_ids, training=training), self.candidate_vectors()
        scores = tf.matmul(query, candidates, transpose_b=True)
        if self.repeat_head is None:
            return scores
        return self.repeat_head((item_ids, query, candidates, scores))

    def get_config(self):
        config = super().get_config()
        config.update(num_items=self.num_items, embedding_dim=self.embedding_dim,
                      max_len=self.max_len, score_scale=self.score_scale,
                      repeat_head=self.repeat_head is not None,
                      repeat_from_scores=(self.repeat_head is not None
                                          and self.repeat_head.from_scores),
                      **(self.repeat_prior or RepeatPrior()).as_settings())
        return config
