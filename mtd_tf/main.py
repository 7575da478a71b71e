"""Train, evaluate and export MTD or a comparison model: `python mtd_tf/main.py
--dataset=yoochoose [--model=srgnn]`.

Only parses flags and calls library code (`mtd_tf.job`). The flags are generated from the
settings' declarations (`TrainerConfig`, each model's config); `--help` lists them all.
"""

import os
import sys

if __package__ in (None, ""):
    # Run as a script (python mtd_tf/main.py): make the package importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402

from mtd_tf import job  # noqa: E402
from mtd_tf import settings  # noqa: E402
from mtd_tf.data import registry  # noqa: E402
from mtd_tf.models.registry import MODEL_CONFIGS  # noqa: E402
from mtd_tf.training.config import TrainConfig  # noqa: E402
from mtd_tf.training.config import TrainerConfig  # noqa: E402
from mtd_tf.training.timing import RunTimer  # noqa: E402

cli.define_data_flags()
settings.define_flags(TrainerConfig)
settings.define_choice_flags(MODEL_CONFIGS)
cli.show_in_help(settings.__name__)
FLAGS = flags.FLAGS


def config_from_flags():
    return TrainConfig.from_settings(
        dataset=registry.canonical_name(FLAGS.dataset),
        data_dir=registry.resolve_data_dir(FLAGS.data_dir), seed=FLAGS.seed,
        **settings.values_from_flags(TrainerConfig), **settings.present_values(MODEL_CONFIGS))


def main(argv):
    del argv
    config = config_from_flags()
    report = job.train_and_evaluate(config, observers=[RunTimer()])
    test = report["test"]
    print(f"{report['dataset']} {report['variant']}: test P@20 {test['P@20']:.2f} "
          f"MRR@20 {test['MRR@20']:.2f} (best epoch {report['best_epoch']} of "
          f"{report['epochs_run']}); metrics in "
          f"{os.path.join(config.trainer.model_dir, job.METRICS_FILE)}")


def run():
    cli.run_app(main)


if __name__ == "__main__":
    run()
