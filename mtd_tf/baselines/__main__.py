"""Evaluates a Table 2 baseline: `python -m mtd_tf.baselines --method=pop|spop|itemknn`.

Fits the baseline on all training sessions of --dataset, ranks every test target among all
M items (DESIGN.md section 5) and prints one JSON line:
{"method", "dataset", "test": {"P@5", "P@10", "P@20", "MRR@5", "MRR@10", "MRR@20", "NDCG@20"}}
with metrics in percent, under the keys of the "test" block of the model's metrics.json.
"""

import json

from absl import flags

from mtd_tf import baselines
from mtd_tf import cli
from mtd_tf.baselines.methods import METHODS
from mtd_tf.baselines.methods import evaluate_on_test
from mtd_tf.data import registry

cli.define_data_flags()
flags.DEFINE_enum("method", None, list(METHODS), "Baseline to fit and evaluate.")
flags.DEFINE_integer("batch_size", baselines.DEFAULT_BATCH_SIZE,
                     "Test prefixes scored at once (memory: batch_size x M float64).",
                     lower_bound=1)
flags.mark_flag_as_required("method")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    dataset = registry.load_dataset(
        FLAGS.dataset, registry.resolve_data_dir(FLAGS.data_dir), seed=FLAGS.seed)
    test = evaluate_on_test(FLAGS.method, dataset, batch_size=FLAGS.batch_size)
    print(json.dumps({"method": FLAGS.method, "dataset": dataset.name, "test": test}))


if __name__ == "__main__":
    cli.run_app(main)
