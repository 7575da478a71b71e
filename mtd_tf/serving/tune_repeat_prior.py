"""Chooses a trained model's ranking-time prior on its validation split, and exports it.

`python -m mtd_tf.serving.tune_repeat_prior --model_dir=RUN` scores RUN's validation pairs
once, tries every prior of a grid on them (`repeat_prior_search`) and prints one JSON line:
the chosen `repeat_bonus`, `repeat_count_bonus`, `repeat_recency_bonus` and
`repeat_lift_limit`, and the
validation metrics without and with them, overall and for repeat and new targets apart.
`--no_loss_on=P@20` limits the choice to priors that keep validation P@20 (no prior
always does), for data where a gain in MRR@20 must not cost P@20.
With `--export_dir=OUT` it also writes a SavedModel that serves the weights of
`--export_from` (default RUN; the refit of RUN's settings, say) with that prior, so the
served lists are the ones `python -m mtd_tf.serving.evaluate --export_dir=OUT` measures.
RUN must have a validation split (not a refit): the prior is chosen on data the model
did not train on, and the test split is never read.
"""

import json

from absl import flags

from mtd_tf import cli
from mtd_tf import metrics

OBJECTIVES = list(metrics.GAIN_METRICS)

flags.DEFINE_string("model_dir", None, "A finished run with a validation split (not a "
                    "refit): its validation pairs choose the prior.")
flags.DEFINE_enum("objective", "MRR@20", OBJECTIVES, "The validation metric the prior "
                  "maximises.")
flags.DEFINE_multi_enum("no_loss_on", [], OBJECTIVES, "A validation metric the prior may "
                        "not lower (repeatable): the objective is maximised among the priors "
                        "that keep it, e.g. --objective=MRR@20 --no_loss_on=P@20.")
flags.DEFINE_string("export_dir", None, "Optional: write a SavedModel with the chosen prior "
                    "here (replacing what is there).")
flags.DEFINE_string("export_from", None, "The finished run whose weights that SavedModel "
                    "serves (default --model_dir), with the same model settings.")
flags.DEFINE_string("data_dir", None, "Folder holding the dataset folders (default: the "
                    "one the run recorded).")
flags.DEFINE_integer("batch_size", 512, "Validation pairs scored at once.", lower_bound=1)
flags.mark_flags_as_required(["model_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cli.import_tensorflow_quietly()
    from mtd_tf.serving import repeat_prior_tuning  # pylint: disable=import-outside-toplevel

    print(json.dumps(repeat_prior_tuning.tune(
        FLAGS.model_dir, FLAGS.objective, FLAGS.export_dir, FLAGS.export_from, FLAGS.data_dir,
        FLAGS.batch_size, FLAGS.no_loss_on)))


if __name__ == "__main__":
    cli.run_app(main)
