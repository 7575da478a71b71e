"""Scores, ranks and top-K lists of a next-item model, one path for evaluation and serving.

A session with no item the model knows (all ids unknown to training, dropped upstream)
would get all-zero scores, which rank every target first under the tie rule of DESIGN.md
section 5. Such a session is ranked by training popularity instead, in evaluation exactly
as in serving: in-training validation and test (`training.session_step`) and the
SavedModel (`serving.export`) both go through `TopKRetrieval`, which is also where a
model's ranking-time prior on the session's own items (`serving.repeat_prior`) is added.

Top-K lists are ranked by `block_top_k` (the same list as a top-K of the whole row, for a
fraction of its cost); the export's lists score against a `CandidateTable`, the candidate
vectors computed once. A catalogue larger than `chunk_items` is scored a slice of items at a time, so memory is
O(batch x chunk_items) for any M: ranks count the items above the target slice by slice
(the target's score read from its own slice's product, as the whole product would give
it), and the top-K list is a running top-K over the slices. A catalogue of at most
`chunk_items` items takes the one-product path.
"""

import numpy as np
import tensorflow as tf

from mtd_tf import metrics
from mtd_tf.serving.block_top_k import running_top_k
from mtd_tf.serving.repeat_prior import add_repeat_prior

# Items scored at once: [batch, 65536] float32 is 25 MiB at batch 100.
DEFAULT_CHUNK_ITEMS = 65536


def scores_from_table(model):
    """Whether `model`'s lists are its query against its candidate vectors alone, which a
    `CandidateTable` can serve: not with a repeat head's mixture or a ranking-time prior."""
    return (getattr(model, "repeat_head", None) is None
            and getattr(model, "repeat_prior", None) is None)


class TopKRetrieval:
    """Exact retrieval over all M items of a model behind the next-item protocol.

    Args:
      model: any model of `mtd_tf.models` (`query_vectors`, `candidate_vectors`, and
        `repeat_head` and `repeat_prior` where it has them).
      item_popularity: float [M], training counts of items 1..M: the fallback ranking.
      chunk_items: items scored at once.
      table: a `CandidateTable` of the model's candidate vectors computed once, which
        `top_k` then scores against (the export's, when `scores_from_table`); None
        for the model's `candidate_vectors()` at each call (training, whose table moves).
    """

    def __init__(self, model, item_popularity, chunk_items=DEFAULT_CHUNK_ITEMS, table=None):
        if table is not None and not scores_from_table(model):
            raise ValueError("a repeat head's or prior's lists need the model's own scores, "
                             "not a table")
        self.model = model
        self.table = table
        popularity = np.asarray(item_popularity, dtype=np.float32)
        self.popularity = tf.constant(popularity)  # [M]
        # Most popular first, equal counts lower id first (as `tf.math.top_k` lists them):
        # the fallback list, sorted once rather than at every call.
        self.popular_order = np.argsort(-popularity, kind="stable")
        num_items = model.num_items
        self.slices = [(start, min(start + chunk_items, num_items))
                       for start in range(0, num_items, chunk_items)]

    def scores(self, item_ids):
        """[batch, M] scores (column j = item j+1) of int [batch, len] right-padded prefixes
        with ids in 0..M: the model's, or with a repeat head the log-probabilities of its
        mixture; training popularity for a prefix without items."""
        session = self._session(item_ids)
        return self._slice_scores(session, 0, self.model.num_items)

    def target_ranks(self, item_ids, targets):
        """int32 [batch]: each target's rank among all M items (`metrics.target_ranks`)."""
        if len(self.slices) == 1:
            return metrics.target_ranks(self.scores(item_ids), targets)
        session = self._session(item_ids)
        targets = tf.cast(targets, tf.int32)
        target_scores = self._scores_of(session, targets, self._slice_scores)
        higher = tf.zeros(tf.shape(targets), tf.int32)
        for start, stop in self.slices:
            higher += tf.reduce_sum(tf.cast(
                self._slice_scores(session, start, stop) > target_scores[:, None], tf.int32),
                axis=1)
        rankable = ((targets >= 1) & (targets <= self.model.num_items)
                    & tf.logical_not(tf.math.is_nan(target_scores)))
        return tf.where(rankable, higher + 1, metrics.UNRANKED)

    def top_k(self, item_ids, k):
        """(item ids int64 [batch, k'] best first, their scores [batch, k']), k' = min(k, M);
        equal scores keep the lower item id first, as one `tf.math.top_k` would."""
        k = min(k, self.model.num_items)
        session = self._session(item_ids, candidates=self.table is None)
        if self.table is not None:
            values, indices = self.table.top_k(session["query"], k)
        else:
            values, indices = self._slice_top_k(session, k)
        # A session without items gets the popularity list: chosen on [batch, k], not by
        # rewriting every score of the batch.
        popular_indices = tf.constant(self.popular_order[:k], tf.int32)
        popular_values = tf.gather(self.popularity, popular_indices)
        has_items = session["has_items"][:, None]
        values = tf.where(has_items, values, popular_values[None, :])
        indices = tf.where(has_items, indices, popular_indices[None, :])
        return tf.cast(indices, tf.int64) + 1, values

    def _slice_top_k(self, session, k):
        """`top_k`'s list over the model's own scores, a slice at a time."""
        return running_top_k(((start, self._slice_scores(session, start, stop, fallback=False),
                               None) for start, stop in self.slices), k)

    def _session(self, item_ids, candidates=True):
        """What every slice's scores need: the query, which rows have items, and unless
        `candidates` is False (scoring against the table) the candidates and with a repeat
        head its mixture weights and the scores' log-normaliser."""
        item_ids = tf.cast(item_ids, tf.int32)
        query = self.model.query_vectors(item_ids, training=False)
        session = {"item_ids": item_ids, "query": query,
                   "has_items": tf.reduce_any(item_ids > 0, axis=1), "kept": {}}
        if not candidates:
            return session
        candidates = session["candidates"] = self.model.candidate_vectors()
        head = getattr(self.model, "repeat_head", None)
        if head is not None:
            normalizers = [tf.reduce_logsumexp(tf.cast(self._raw_scores(session, start, stop),
                                                       tf.float32), axis=1)
                           for start, stop in self.slices]  # [batch] per slice
            session["log_normalizer"] = tf.reduce_logsumexp(tf.stack(normalizers), axis=0)
            session["log_modes"], session["position_log_weights"] = (
                head.mode_and_position_log_weights(item_ids, query, candidates,
                                                   session["log_normalizer"]))
        prior = getattr(self.model, "repeat_prior", None)
        if prior is not None and prior.lift_limit:  # each prefix item's score, no prior
            session["prefix_scores"] = self._scores_of(session, item_ids, self._model_scores)
        return session

    def _scores_of(self, session, item_ids, slice_scores):
        """float32, the shape of int `item_ids` ([batch] or [batch, len], ids 1..M): each
        id's score in `slice_scores(session, start, stop)`, read from its own slice (0 for
        an id outside 1..M)."""
        columns = item_ids - 1
        scores = tf.zeros(tf.shape(columns), tf.float32)
        for start, stop in self.slices:
            inside = (columns >= start) & (columns < stop)
            values = tf.gather(slice_scores(session, start, stop),
                               tf.clip_by_value(columns - start, 0, stop - start - 1),
                               batch_dims=1)
            scores = tf.where(inside, values, scores)
        return scores

    def _kept(self, session, name, start, stop, compute):
        """`compute()`, kept for the session when the catalogue is one slice, so that the
        repeat head's normaliser, a lift limit's prefix scores and the ranking share one
        product (more slices are recomputed instead, to keep memory O(batch x slice))."""
        kept = session["kept"]
        if (name, start, stop) in kept:
            return kept[name, start, stop]
        value = compute()
        if len(self.slices) == 1:
            kept[name, start, stop] = value
        return value

    def _raw_scores(self, session, start, stop):
        """q C[start:stop]^T."""
        return self._kept(session, "raw", start, stop, lambda: tf.matmul(
            session["query"], session["candidates"][start:stop], transpose_b=True))

    def _model_scores(self, session, start, stop):
        """float32 [batch, stop - start]: the model's scores of items start+1..stop, before
        any prior (with a repeat head, log P of its repeat/explore mixture)."""
        def compute():
            scores = self._raw_scores(session, start, stop)
            head = getattr(self.model, "repeat_head", None)
            if head is not None:
                scores = head.log_probabilities(
                    session["item_ids"], session["log_modes"],
                    session["position_log_weights"], scores, start + 1,
                    session["log_normalizer"])
            return tf.cast(scores, tf.float32)  # a mixed-precision model ranks in float32 too

        return self._kept(session, "model", start, stop, compute)

    def _slice_scores(self, session, start, stop, fallback=True):
        """float32 [batch, stop - start]: the scores of items start+1..stop with the prior
        (training popularity for a prefix without items, unless `fallback` is False)."""
        scores = self._model_scores(session, start, stop)
        prior = getattr(self.model, "repeat_prior", None)
        if prior is not None:
            scores = add_repeat_prior(scores, session["item_ids"], start + 1, prior,
                                      session.get("prefix_scores"))
        if not fallback:
            return scores
        return tf.where(session["has_items"][:, None], scores,
                        self.popularity[None, start:stop])
