"""The whole job of `main.py`: train (or resume), test, export, then write metrics.json,
holding its run folder alone and stopping cleanly on SIGTERM or SIGINT.

metrics.json is written last: a run folder that has it also has the export of the epoch it
reports and its test ranks, so a crash at any point leaves either a finished run or one
that a re-run of the same command finishes.

Under `--strategy=multi_worker` every worker runs this same job; the chief alone writes
the run folder (`strategies.WorkerFolders`), and a lost peer ends every worker with one
line, the last checkpoint kept for the same command to resume.
"""

import json
import os

from absl import logging

from mtd_tf import folder_lock
from mtd_tf import metrics
from mtd_tf import rank_files
from mtd_tf import repeats
from mtd_tf.data import item_catalog
from mtd_tf.data import pipeline
from mtd_tf.errors import RunInUseError
from mtd_tf.errors import RunStopped
from mtd_tf.io_utils import atomic_write_text
from mtd_tf.serving import export
from mtd_tf.training import run_settings
from mtd_tf.training import stop_signals
from mtd_tf.training import strategies
from mtd_tf.training.loop import Trainer

METRICS_FILE = "metrics.json"
# Held by the job for its whole life: one writer per run folder (`folder_lock`).
RUN_LOCK_FILE = ".train.lock"


def train_and_evaluate(config, strategy=None, observers=()):
    """Runs the job of `config` (a `TrainConfig`); returns the report written to metrics.json.

    Args:
      config: the run's `TrainConfig`.
      strategy: a `tf.distribute.Strategy`; default, the one `config.trainer.strategy`
        names (`strategies.make_strategy`; the default setting is the current strategy).
      observers: `training.timing.TrainingObserver`s (e.g. `RunTimer`), whose figures join
        the report; told on the chief only, the one worker that writes metrics.json.
    """
    settings = config.trainer
    model_dir = settings.model_dir
    run_settings.check_folder(model_dir)
    if strategy is None:
        strategy = strategies.make_strategy(settings.strategy, settings.peer_timeout)
    folders = strategies.worker_folders(model_dir, strategy)
    with folder_lock.exclusive_lock(folders.lock_file(RUN_LOCK_FILE)) as holder:
        if holder is not None:
            role = f" as {folders.task}" if folders.task else ""
            raise RunInUseError(
                f"{model_dir} is in use by another training process{role} (pid "
                f"{holder or '?'}): wait for it to finish, or use another --model_dir")
        folders.discard()  # what a killed worker saved apart
        with stop_signals.GracefulStop() as stop, strategies.peers_reported(strategy,
                                                                           model_dir):
            trainer = Trainer(config, strategy=strategy, stop=stop,
                              observers=observers if folders.is_chief else ())
            trainer.train()
            try:
                return finish(trainer)
            except stop_signals.StopRequested as stopped:
                raise RunStopped(f"{stopped} received while testing the trained model; "
                                 "training is finished and saved: run the same command to "
                                 "test and export it", stopped.signum) from None


def finish(trainer):
    """Tests a trained `Trainer`'s reported epoch, exports it, keeps every test pair's rank
    (`rank_files`: for paired comparisons with other runs) and writes metrics.json.

    Every worker of a multi-worker run tests (the test is spread over them) and exports,
    as TensorFlow's guide has it; only the chief keeps the export and writes the rest.
    """
    test_metrics = metrics.RankingMetrics(metrics.REPORT_KS, keep_ranks=True)
    report = final_report(trainer, test_metrics)
    settings, folders = trainer.settings, trainer.folders
    export.export_saved_model(
        trainer.model, os.path.join(folders.write_dir, "export"), top_k=settings.export_top_k,
        item_popularity=trainer.inputs.item_popularity,
        raw_item_ids=trainer.inputs.raw_item_ids)
    if not folders.is_chief:
        folders.discard()
        return report
    rank_files.write_ranks(os.path.join(settings.model_dir, rank_files.TEST_RANKS_FILE),
                           test_metrics.ranks())
    if trainer.inputs.raw_item_ids is not None:  # what a later --warm_start_from matches
        item_catalog.write_raw_item_ids(settings.model_dir, trainer.inputs.raw_item_ids)
    atomic_write_text(os.path.join(settings.model_dir, METRICS_FILE),
                      json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def final_report(trainer, test_metrics=None):
    """Restores the best validation epoch (a refit's last), reads the test split once and
    returns the run's report for metrics.json (a refit's "valid" is None: it has no
    validation split), with the test metrics of repeat and new targets apart
    ("test_by_target", `repeats.split_report`). The trainer's weights stay those of the
    reported epoch; the test is accumulated in `test_metrics` (a `metrics.RankingMetrics`
    that keeps the ranks) when given."""
    trainer.restore_best()
    settings, inputs = trainer.settings, trainer.inputs
    valid = (None if settings.refit_epochs
             else trainer.evaluate(inputs.valid, "validation (best epoch)"))
    test_metrics = test_metrics or metrics.RankingMetrics(metrics.REPORT_KS, keep_ranks=True)
    test = trainer.evaluate(inputs.test, "test", test_metrics)
    by_target = repeats.split_report(test_metrics.ranks(), inputs.test_repeats)
    epochs_run = int(trainer.state.epoch)
    report = {
        "dataset": inputs.dataset_name,
        "model": trainer.config.trainer.model,
        "variant": trainer.config.model.variant,
        "epochs_run": epochs_run,
        "best_epoch": int(trainer.state.best_epoch),
        "valid": valid,
        "test": test,
        "test_by_target": by_target,
        "train_batches_per_pass": pipeline.num_batches(inputs.train, settings.batch_size),
        **inputs.unknown_test_ids,
        "flags": dict(trainer.config.to_dict(), frequency=trainer.frequency),
    }
    for observer in trainer.observers:
        report.update(observer.report(epochs_run))
    logging.info("test (%s epoch %d): P@20 %.2f MRR@20 %.2f",
                 "refit, last" if settings.refit_epochs else "best", report["best_epoch"],
                 test["P@20"], test["MRR@20"])
    for part in ("repeat", "new"):
        split = by_target[part]
        if split["pairs"]:
            logging.info("test, %s targets (%.1f%% of pairs): P@20 %.2f MRR@20 %.2f", part,
                         split["share"], split["metrics"]["P@20"], split["metrics"]["MRR@20"])
    return report
