"""How fast does the SavedModel serve, next to the floor of the same work?

For each catalogue (a published dataset's item count, or a synthetic size), an untrained
MTD model of that many items is exported (`serving.export`, the same signature a trained
run writes) and loaded as a client would (`tf.saved_model.load`). Then, in one process:

- one session at a time: p50 and p99 latency over --requests calls of `serving_default`,
  beside the floor of reading the item table once (a `reduce_sum` over the [M, d] table);
- batches of 256 and 1024 sessions: sessions/s, beside the floor of the scoring matmul
  alone ([batch, d] x [d, M] in float32, the work every exact answer needs);
- the levers, each timed on the same [batch, d] queries (milliseconds per batch): the
  matmul with `tf.math.top_k` of whole rows against `block_top_k` over the export's
  `CandidateTable`; the candidate table normalised at every call (what scaled cosines
  cost without the export's precomputed table); a bfloat16 table's matmul.

Targets on a 2-core CPU (diginetica's 43,097 items): one session p50 <= 1 ms; batched
throughput >= 0.8 of the matmul floor.

    python benchmarks/serving.py [--catalogues=diginetica,1000000] [--data_dir=DIR]
        [--requests=300]

Prints one JSON line per catalogue, with the command, the machine and the date.
"""

import datetime
import json
import os
import platform
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

flags.DEFINE_list("catalogues", ["diginetica", "1000000"],
                  "Published dataset names (their item counts) or item counts.")
flags.DEFINE_string("data_dir", None, "Folder of the dataset folders (default: as the CLIs).")
flags.DEFINE_integer("requests", 300, "Single-session calls timed (after 20 warm-up calls).")
flags.DEFINE_list("batch_sizes", ["256", "1024"], "Batch sizes timed for throughput.")
flags.DEFINE_integer("embedding_dim", 100, "Embedding size d.")
flags.DEFINE_integer("session_length", 5, "Items per served session.")
flags.DEFINE_float("score_scale", 16.0, "The model's score_scale (16: the scaled cosines of the "
                   "configurations Table 2 chose; 0: the paper's dot products).")
FLAGS = flags.FLAGS


def _seconds(function, repeats):
    """Each call's wall time, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return np.array(times)


def _num_items(catalogue):
    if catalogue.isdigit():
        return int(catalogue)
    from mtd_tf.data import registry  # pylint: disable=import-outside-toplevel

    return registry.load_dataset(catalogue, registry.resolve_data_dir(FLAGS.data_dir)).num_items


def time_catalogue(catalogue):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from mtd_tf.models.mtd_config import MTDConfig  # pylint: disable=import-outside-toplevel
    from mtd_tf.serving import export  # pylint: disable=import-outside-toplevel

    num_items = _num_items(catalogue)
    model = MTDConfig(variant="lo", embedding_dim=FLAGS.embedding_dim,
                      score_scale=FLAGS.score_scale).build(num_items)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        export_dir = os.path.join(folder, "export")
        export.export_saved_model(model, export_dir, top_k=20,
                                  item_popularity=rng.integers(1, 100, size=num_items))
        serve = tf.saved_model.load(export_dir).signatures[export.SIGNATURE_KEY]

        def sessions(batch):
            return tf.constant(rng.integers(1, num_items + 1,
                                            size=(batch, FLAGS.session_length)), tf.int64)

        one = sessions(1)
        _seconds(lambda: serve(item_ids=one), 20)
        latency = _seconds(lambda: serve(item_ids=one)["top_items"].numpy(), FLAGS.requests)
        table = tf.constant(rng.normal(size=(num_items, FLAGS.embedding_dim)), tf.float32)
        read_table = tf.function(lambda: tf.reduce_sum(table))
        read_table()
        table_read = _seconds(lambda: read_table().numpy(), 50)
        row = {"catalogue": catalogue, "items": num_items,
               "one_session_p50_ms": 1e3 * float(np.percentile(latency, 50)),
               "one_session_p99_ms": 1e3 * float(np.percentile(latency, 99)),
               "table_read_floor_ms": 1e3 * float(np.median(table_read))}
        for batch in (int(size) for size in FLAGS.batch_sizes):
            ids = sessions(batch)
            serve(item_ids=ids)
            served = _seconds(lambda ids=ids: serve(item_ids=ids)["top_items"].numpy(), 10)
            queries = tf.constant(rng.normal(size=(batch, FLAGS.embedding_dim)), tf.float32)
            matmul = tf.function(lambda queries=queries: tf.reduce_max(
                tf.matmul(queries, table, transpose_b=True)))
            matmul()
            floor = _seconds(lambda matmul=matmul: matmul().numpy(), 10)
            row[f"batch_{batch}_sessions_per_s"] = batch / float(np.median(served))
            row[f"batch_{batch}_matmul_floor_sessions_per_s"] = batch / float(np.median(floor))
            row[f"batch_{batch}_share_of_floor"] = float(np.median(floor) / np.median(served))
            for lever, milliseconds in time_levers(queries, table).items():
                row[f"batch_{batch}_{lever}_ms"] = milliseconds
    return row


def time_levers(queries, table):
    """Milliseconds per batch of the serving levers' alternatives (median of 10 calls)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from mtd_tf.serving.candidate_table import CandidateTable  # pylint: disable=import-outside-toplevel

    candidates = CandidateTable(table.numpy(), len(table))
    half_table = tf.cast(table, tf.bfloat16)
    half_queries = tf.cast(queries, tf.bfloat16)
    alternatives = {
        "matmul_full_top_k": lambda: tf.math.top_k(
            tf.matmul(queries, table, transpose_b=True), k=20).indices,
        "matmul_block_top_k": lambda: candidates.top_k(queries, 20)[1],
        "normalise_table_and_matmul": lambda: tf.reduce_max(tf.matmul(
            queries, tf.math.l2_normalize(table, axis=-1), transpose_b=True)),
        "bfloat16_matmul": lambda: tf.reduce_max(tf.matmul(
            half_queries, half_table, transpose_b=True)),
    }
    timings = {}
    for lever, alternative in alternatives.items():
        function = tf.function(alternative)
        function()
        timings[lever] = 1e3 * float(np.median(_seconds(lambda f=function: f().numpy(), 10)))
    return timings


def main(argv):
    del argv
    stamp = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv),
             "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for catalogue in FLAGS.catalogues:
        print(json.dumps({**time_catalogue(catalogue), **stamp}), flush=True)


if __name__ == "__main__":
    app.run(main)
