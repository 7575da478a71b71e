"""The whole job of `main.py`: train (or resume), test, export, then write metrics.json.

metrics.json is written last: a run folder that has it also has the export of the epoch it
reports, so a crash at any point leaves either a finished run or one that a re-run of the
same command finishes.
"""

import json
import os

from mtd_tf.io_utils import atomic_write_text
from mtd_tf.serving import export
from mtd_tf.training.loop import Trainer

METRICS_FILE = "metrics.json"


def train_and_evaluate(config, strategy=None, observers=()):
    """Runs the job of `config` (a `TrainConfig`); returns the report written to metrics.json.

    Args:
      config: the run's `TrainConfig`.
      strategy: a `tf.distribute.Strategy`; default, the current one.
      observers: `training.timing.TrainingObserver`s (e.g. `RunTimer`), whose figures join
        the report.
    """
    trainer = Trainer(config, strategy=strategy, observers=observers)
    trainer.train()
    return finish(trainer)


def finish(trainer):
    """Tests a trained `Trainer`'s reported epoch, exports it and writes metrics.json."""
    report = trainer.test_report()
    settings = trainer.settings
    export.export_saved_model(
        trainer.model, os.path.join(settings.model_dir, "export"), top_k=settings.export_top_k,
        item_popularity=trainer.inputs.item_popularity)
    atomic_write_text(os.path.join(settings.model_dir, METRICS_FILE),
                      json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
