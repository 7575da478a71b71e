"""Evaluates an exported model on a dataset's test split, as a deployment would see it.

`python -m mtd_tf.evaluate --export_dir=DIR --dataset=NAME --data_dir=DIR` prints one JSON
line with P@K, MRR@K and NDCG@K for every K in (5, 10, 20) up to the export's top-K. Ranks come
from the served top-K list, so a target outside it counts as a miss.
"""

import json

from absl import flags
import numpy as np

from mtd_tf import cli
from mtd_tf import export
from mtd_tf import metrics
from mtd_tf.data import augment
from mtd_tf.data import registry

cli.define_data_flags()
flags.DEFINE_string("export_dir", None, "Folder of the SavedModel written by main.py.")
flags.DEFINE_integer("batch_size", 1024, "Test pairs per serving call.")
flags.mark_flags_as_required(["export_dir"])
FLAGS = flags.FLAGS

REPORT_KS = (5, 10, 20)


def ranks_from_top_items(top_items, targets):
    """1-based position of each target in its served list; len(list) + 1 when absent."""
    hits = top_items == np.asarray(targets)[:, None]  # [batch, K]
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, top_items.shape[1] + 1)


def evaluate_export(recommender, dataset, batch_size):
    """Streams the test pairs through the serving signature and accumulates the metrics."""
    longest = max(int(dataset.test_prefixes.lengths.max(initial=0)), 1)
    # Served sessions keep every id: the export itself cuts to its own max_len.
    samples = augment.pad_prefixes(dataset.test_prefixes, dataset.test_targets, longest)
    accumulator = None
    for start in range(0, len(samples.targets), batch_size):
        stop = start + batch_size
        top_items, _ = recommender.recommend(samples.item_ids[start:stop])
        if accumulator is None:
            ks = tuple(k for k in REPORT_KS if k <= top_items.shape[1]) or (top_items.shape[1],)
            accumulator = metrics.RankingMetrics(ks=ks)
        accumulator.update(ranks_from_top_items(top_items, samples.targets[start:stop]))
    return accumulator.result()


def main(argv):
    del argv
    recommender = export.load_export(FLAGS.export_dir)
    dataset = registry.load_dataset(
        FLAGS.dataset, registry.resolve_data_dir(FLAGS.data_dir), seed=FLAGS.seed)
    result = evaluate_export(recommender, dataset, FLAGS.batch_size)
    print(json.dumps({"dataset": dataset.name, "export_dir": FLAGS.export_dir, "test": result}))


if __name__ == "__main__":
    cli.run_app(main)
