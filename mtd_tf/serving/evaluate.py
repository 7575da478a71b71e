"""Evaluates an exported model on a dataset's test split, as a deployment would see it.

`python -m mtd_tf.serving.evaluate --export_dir=DIR --dataset=NAME --data_dir=DIR` prints one JSON
line with P@K, MRR@K and NDCG@K for every K in (5, 10, 20) up to the export's top-K (K =
top-K alone when that is below 5), and each one's standard error over the test pairs
(`mtd_tf.serving.evaluation`). With
`--baseline_export_dir=OTHER` it also evaluates OTHER on the same pairs and reports, per
metric, the gap (DIR - OTHER) and its paired standard error, which tells whether a gap
between two runs is more than test sampling alone would give.
"""

import json
import sys

from absl import flags

from mtd_tf import cli
from mtd_tf.data import registry
from mtd_tf.serving import evaluation

cli.define_data_flags()
flags.DEFINE_string("export_dir", None, "Folder of the SavedModel written by main.py.")
flags.DEFINE_string("baseline_export_dir", None,
                    "Optional second SavedModel: report the gap to it on the same test pairs "
                    "and the gap's paired standard error.")
flags.DEFINE_integer("batch_size", 1024, "Test pairs per serving call.", lower_bound=1)
flags.mark_flags_as_required(["export_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    # TensorFlow (seconds to import) only once the flags are known to be good.
    cli.import_tensorflow_quietly()
    from mtd_tf.serving import export  # pylint: disable=import-outside-toplevel

    recommender = export.load_export(FLAGS.export_dir)
    baseline = FLAGS.baseline_export_dir and export.load_export(FLAGS.baseline_export_dir)
    dataset = registry.load_dataset(
        FLAGS.dataset, registry.resolve_data_dir(FLAGS.data_dir), seed=FLAGS.seed)
    for export_dir, served in ((FLAGS.export_dir, recommender),
                               (FLAGS.baseline_export_dir, baseline)):
        if served and served.num_items not in (None, dataset.num_items):
            print(f"warning: {export_dir} recommends items 1..{served.num_items}, but "
                  f"{dataset.name}'s training items are 1..{dataset.num_items}: was it "
                  f"trained on another dataset? (ids it does not know are ignored)",
                  file=sys.stderr)
    report = {"dataset": dataset.name, "export_dir": FLAGS.export_dir,
              "test_pairs": len(dataset.test_targets)}
    if baseline:
        report["baseline_export_dir"] = FLAGS.baseline_export_dir
        report.update(evaluation.compare_exports(recommender, baseline, dataset,
                                                        FLAGS.batch_size))
    else:
        report.update(evaluation.evaluate_export(recommender, dataset, FLAGS.batch_size))
    print(json.dumps(report))


if __name__ == "__main__":
    cli.run_app(main)
