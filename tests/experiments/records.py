"""Finished runs without training: a run folder's metrics.json as the training loop (or a
baseline) leaves it, and a record as the committed results files publish it."""

import json
import os

from experiments import common
from mtd_tf import metrics as metrics_lib
from mtd_tf import rank_files
from tests.experiments import scripts

METRICS_WRITTEN = "2026-11-23T00:00:00+00:00"


def smoke_runner(runs_dir, data_dir):
    """A `CellRunner` with the scripts' smoke settings: the cells it names, and their
    settings, are those of a script invoked with `scripts.SMOKE_FLAGS`."""
    return common.CellRunner(runs_dir, str(data_dir), scripts.SMOKE_SETTINGS, stamp=None)


def metrics(p20):
    """The seven reported metrics (%) of a run with P@20 `p20`: P@5, P@10 = p20 - 20,
    p20 - 10; MRR@K = P@K / 2; NDCG@20 = 0.7 * p20."""
    return {"P@5": p20 - 20.0, "P@10": p20 - 10.0, "P@20": p20, "MRR@5": (p20 - 20.0) / 2,
            "MRR@10": (p20 - 10.0) / 2, "MRR@20": p20 / 2, "NDCG@20": 0.7 * p20}


def write_run(runner, cell, test, valid, **figures):
    """Writes `cell`'s metrics.json as its finished run would; returns what it holds.

    A baseline's holds its test metrics; an MTD run's also `valid` (None for a refit), its
    epochs and timings (`figures` replaces any: `seconds_per_epoch`, `best_epoch`, ...) and
    its settings.
    """
    run_dir = runner.run_dir(cell)
    os.makedirs(run_dir, exist_ok=True)
    if cell.is_baseline:
        report = {"dataset": cell.dataset, "method": cell.method, "test": test, "seconds": 0.5}
    else:
        config = runner.config(cell)
        report = {"dataset": config.trainer.dataset, "variant": cell.method, "epochs_run": 1,
                  "best_epoch": 1, "valid": valid, "test": test, "seconds_per_epoch": 2.0,
                  "cpu_seconds_per_epoch": 3.0, "steal_fraction": 0.05,
                  "seconds_per_train_batch": 0.25, "train_batches_per_pass": 7,
                  "flags": config.to_dict(), **figures}
    with open(os.path.join(run_dir, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    return report


def published_record(runner, cell, test, valid, written=METRICS_WRITTEN, **changes):
    """A record of `cell` as a results file's "runs" block publishes it, with the settings
    `changes` made to the cell's own."""
    config = {key: value for key, value in runner.config(cell).to_dict().items()
              if key not in ("data_dir", "model_dir")}
    config.update(changes)
    return {"method": cell.method, "dataset": cell.dataset,
            "run_dir": os.path.relpath(runner.run_dir(cell), runner.runs_dir), "test": test,
            "valid": valid, "config": config, "metrics_written": written}


def write_ranks(runner, cell, ranks):
    """Writes the test ranks `cell`'s run keeps; returns the test metrics they give."""
    rank_files.write_ranks(os.path.join(runner.run_dir(cell), rank_files.TEST_RANKS_FILE), ranks)
    accumulator = metrics_lib.RankingMetrics(metrics_lib.REPORT_KS)
    accumulator.update(ranks)
    return accumulator.result()
