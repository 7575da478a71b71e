"""The deployable artefact: a SavedModel whose `serving_default` returns the top-K items.

It serves raw click sequences as clients send them (DESIGN.md section 6): ids unknown to the
catalogue are dropped, real ids are packed left in order, only the last `max_len` count,
and a session with no known id falls back to the most popular items. A model trained on a
dataset with an `items.tsv` also gets `serving_raw`, which takes and returns the click
log's own item ids (strings) through a lookup table inside the SavedModel. It loads with
plain `tf.saved_model.load` (no mtd_tf import) and with `saved_model_cli run`.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from mtd_tf.errors import MTDError
from mtd_tf.io_utils import atomic_output_dir
from mtd_tf.serving.candidate_table import CandidateTable
from mtd_tf.serving.retrieval import DEFAULT_CHUNK_ITEMS
from mtd_tf.serving.retrieval import TopKRetrieval
from mtd_tf.serving.retrieval import scores_from_table

SIGNATURE_KEY = "serving_default"
RAW_SIGNATURE_KEY = "serving_raw"
EMBEDDING_SIGNATURE_KEY = "session_embedding"
# Beside saved_model.pb: row j is item j+1's candidate vector, for a nearest-neighbour index.
CANDIDATES_FILE = "candidate_vectors.npy"


def clean_sessions(item_ids, num_items, max_len):
    """Turns client input into model input.

    Args:
      item_ids: int [batch, len], any values; 0 is padding.
      num_items: M; ids outside 1..M are dropped.
      max_len: how many of the most recent known ids are kept.

    Returns:
      (ids int32 [batch, min(len, max_len) + 1] right-padded with 0 (one spare padding
      column so that an empty input still has a column), lengths int32 [batch]).
    """
    item_ids = tf.cast(item_ids, tf.int64)
    known = (item_ids > 0) & (item_ids <= num_items)  # [batch, len]
    ids = tf.where(known, item_ids, tf.zeros_like(item_ids))
    # A stable sort on "is unknown" packs the known ids left without reordering them.
    order = tf.argsort(tf.cast(~known, tf.int32), axis=1, stable=True)
    ids = tf.gather(ids, order, batch_dims=1)
    lengths = tf.reduce_sum(tf.cast(known, tf.int32), axis=1)  # [batch]
    width = tf.minimum(tf.shape(ids)[1], max_len)
    start = tf.maximum(lengths - max_len, 0)  # [batch]
    columns = tf.range(width)[None, :]
    positions = tf.minimum(start[:, None] + columns, tf.maximum(tf.shape(ids)[1] - 1, 0))
    kept = tf.gather(ids, positions, batch_dims=1)  # [batch, width]
    kept = tf.where(columns < tf.minimum(lengths, max_len)[:, None], kept, tf.zeros_like(kept))
    kept = tf.pad(kept, [[0, 0], [0, 1]])
    return tf.cast(kept, tf.int32), tf.minimum(lengths, max_len)


def serving_table(model, candidates, chunk_items=DEFAULT_CHUNK_ITEMS):
    """`candidates` (the model's candidate vectors) as the export scores them
    (`CandidateTable`), or None for a model with a repeat head or a ranking-time prior,
    whose lists need its own scores. The table is a second copy of the item vectors in the
    export: the price of doing the table's work once."""
    if not scores_from_table(model):
        return None
    return CandidateTable(candidates.numpy(), chunk_items)


def make_serving_fn(model, top_k, item_popularity, chunk_items=DEFAULT_CHUNK_ITEMS,
                    table=None):
    """Builds `serve(item_ids) -> {"top_items", "scores"}` over `model` (DESIGN.md
    section 6), any model of `mtd_tf.models`, scoring `chunk_items` items at a time against
    `table` (`serving_table`) or the model's own candidate vectors."""
    retrieval = TopKRetrieval(model, item_popularity, chunk_items, table)

    def serve(item_ids):
        ids, _ = clean_sessions(item_ids, model.num_items, model.max_len)
        top_items, scores = retrieval.top_k(ids, top_k)
        return {"top_items": top_items, "scores": scores}

    return serve


def make_embedding_fn(model):
    """`embed(item_ids) -> {"session_embedding": float32 [batch, d']}`: the query vector of
    each cleaned session (zeros for one with no known id), whose inner products with the
    exported candidate vectors are the model's scores (without a repeat head's mixture)."""

    def embed(item_ids):
        ids, lengths = clean_sessions(item_ids, model.num_items, model.max_len)
        query = tf.cast(model.query_vectors(ids, training=False), tf.float32)
        return {"session_embedding": tf.where(lengths[:, None] > 0, query, 0.0)}

    return embed


def make_raw_serving_fn(serve, raw_item_ids):
    """Wraps `serve` (`make_serving_fn`) for raw ids: string [batch, len] in ("" pads;
    an id not in `raw_item_ids` is dropped as an unknown id is), {"top_raw_items" string
    [batch, K], "top_items", "scores"} out. Returns (fn, the lookup table to track)."""
    raw_item_ids = np.asarray(raw_item_ids).astype(str)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(raw_item_ids), tf.range(1, len(raw_item_ids) + 1, dtype=tf.int64)),
        default_value=0)
    # Row j is the raw id of internal id j; row 0 (never served) keeps gather in range.
    by_internal_id = tf.constant(np.concatenate([[""], raw_item_ids]))

    def serve_raw(raw_item_ids):
        outputs = serve(table.lookup(raw_item_ids))
        return dict(outputs, top_raw_items=tf.gather(by_internal_id, outputs["top_items"]))

    return serve_raw, table


def export_saved_model(model, export_dir, top_k, item_popularity, raw_item_ids=None,
                       chunk_items=DEFAULT_CHUNK_ITEMS):
    """Writes the SavedModel to `export_dir` atomically (a crash leaves the old one or none):
    `serving_default`, `session_embedding`, and with `raw_item_ids` (str [M], item j+1's
    raw id) `serving_raw`; beside it the candidate vectors (`CANDIDATES_FILE`). The top-K
    lists score `chunk_items` items at a time, so no batch or catalogue exhausts memory,
    against the candidate vectors computed once (`serving_table`)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    candidates = model.candidate_vectors()
    table = serving_table(model, candidates, chunk_items)
    if table is not None:
        archive.track(table)
    serve = make_serving_fn(model, top_k, item_popularity, chunk_items, table)
    archive.add_endpoint(
        name=SIGNATURE_KEY, fn=serve,
        input_signature=[tf.TensorSpec([None, None], tf.int64, name="item_ids")])
    archive.add_endpoint(
        name=EMBEDDING_SIGNATURE_KEY, fn=make_embedding_fn(model),
        input_signature=[tf.TensorSpec([None, None], tf.int64, name="item_ids")])
    if raw_item_ids is not None:
        serve_raw, table = make_raw_serving_fn(serve, raw_item_ids)
        archive.track(table)
        archive.add_endpoint(
            name=RAW_SIGNATURE_KEY, fn=serve_raw,
            input_signature=[tf.TensorSpec([None, None], tf.string, name="raw_item_ids")])
    with atomic_output_dir(export_dir) as tmp_dir:
        archive.write_out(tmp_dir, verbose=False)
        np.save(os.path.join(tmp_dir, CANDIDATES_FILE),
                tf.cast(candidates, tf.float32).numpy(), allow_pickle=False)
    return export_dir


def load_export(export_dir):
    """Loads a SavedModel folder, or fails with one line saying what is missing."""
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        inner = os.path.join(export_dir, "export")
        if os.path.isfile(os.path.join(inner, "saved_model.pb")):
            raise MTDError(f"{export_dir}: no SavedModel here, but its export/ holds one: "
                           f"pass --export_dir={inner}")
        raise MTDError(f"{export_dir}: no SavedModel here (run mtd_tf/main.py first; it "
                       "writes <model_dir>/export)")
    return ExportedRecommender(export_dir)


class ExportedRecommender:
    """Serves an exported model from numpy; holds the loaded object so its variables live."""

    def __init__(self, export_dir):
        self.loaded = tf.saved_model.load(export_dir)
        self.signature = self.loaded.signatures[SIGNATURE_KEY]

    @property
    def num_items(self):
        """M, the items the export recommends (rows of its item table); None if not found."""
        for variable in self.loaded.variables:
            if variable.name.split("/")[-1].startswith("item_embeddings:"):
                return int(variable.shape[0])
        return None

    def recommend(self, item_ids):
        """int [batch, len] right-padded ids -> (top_items int64 [batch, K], scores [batch, K])."""
        outputs = self.signature(item_ids=tf.constant(item_ids, dtype=tf.int64))
        return outputs["top_items"].numpy(), outputs["scores"].numpy()

    @property
    def takes_raw_ids(self):
        """Whether the export has `serving_raw` (it was trained on a dataset with items.tsv)."""
        return RAW_SIGNATURE_KEY in self.loaded.signatures

    def recommend_raw(self, raw_item_ids):
        """str [batch, len] raw ids ("" pads) -> (top raw ids str [batch, K], scores)."""
        outputs = self.loaded.signatures[RAW_SIGNATURE_KEY](
            raw_item_ids=tf.constant(raw_item_ids, dtype=tf.string))
        top = np.char.decode(outputs["top_raw_items"].numpy().astype(bytes), "utf-8")
        return top, outputs["scores"].numpy()
