"""Choosing a baseline's settings on the validation split: a staged grid search.

The search sees training sessions only. They are split as for the model (DESIGN.md
section 1): the last 10% of sessions validate, and every setting is fit on the first 90%
and scored on the validation prefixes (each cut of each held-out session with at least the
dataset's minimum prefix length). The test split is never read here.

A method's `TUNING_GRID` is a tuple of stages, each a dict {setting: values}. Stages are
searched in order: every combination of a stage's values, the other settings at the best
found so far (the defaults, before the first stage); the best of a stage is kept for the
next. A setting the caller fixes is left out of every stage. A setting met twice is scored
once, and a tie keeps the setting tried first.
"""

import dataclasses
import itertools
import time

from absl import logging

from mtd_tf import baselines
from mtd_tf.data import augment
from mtd_tf.data.sessions import prefix_target_pairs
from mtd_tf.metrics import REPORTED_METRICS


def validation_split(train, min_prefix_len):
    """(fit sessions, validation prefixes, validation targets) from training sessions."""
    fit_sessions, held_out = augment.split_validation(train)
    prefixes, targets = prefix_target_pairs(held_out, min_prefix_len)
    return fit_sessions, prefixes, targets


def tune(method_class, train, num_items, min_prefix_len, fixed=None, metric="P@20",
         batch_size=baselines.DEFAULT_BATCH_SIZE):
    """The setting of `method_class` with the best validation `metric`, and every trial.

    Args:
      method_class: a baseline class with `Settings` and `TUNING_GRID`.
      train: training `Sessions` (the whole training split; validation is cut from it).
      num_items: M.
      min_prefix_len: shortest validation prefix (the dataset's, `registry.dataset_defaults`).
      fixed: {setting: value} kept as given (not searched).
      metric: one of `metrics.REPORTED_METRICS`, higher is better.
      batch_size: prefixes scored at once.

    Returns:
      (best `Settings`, trials): trials is a list, in the order tried, of
      {"setting": {...}, "valid": {metric: percent}, "seconds": fit and scoring time}.
    """
    fixed = dict(fixed or {})
    fit_sessions, prefixes, targets = validation_split(train, min_prefix_len)
    logging.info("Tuning %s on %d validation pairs (%d fit sessions)", method_class.__name__,
                 len(targets), len(fit_sessions))
    best = method_class.Settings(**fixed)
    trials = {}  # Settings -> trial record, in insertion order
    for stage in method_class.TUNING_GRID:
        axes = {name: values for name, values in stage.items() if name not in fixed}
        stage_best = None
        for values in itertools.product(*axes.values()):
            candidate = dataclasses.replace(best, **dict(zip(axes, values)))
            if candidate not in trials:
                trials[candidate] = _trial(method_class, candidate, fit_sessions, num_items,
                                           prefixes, targets, batch_size)
                logging.info("%s: valid %s %.2f (%.0f s)", trials[candidate]["setting"], metric,
                             trials[candidate]["valid"][metric], trials[candidate]["seconds"])
            if (stage_best is None
                    or trials[candidate]["valid"][metric] > trials[stage_best]["valid"][metric]):
                stage_best = candidate
        best = stage_best
    return best, list(trials.values())


def _trial(method_class, setting, fit_sessions, num_items, prefixes, targets, batch_size):
    start = time.perf_counter()
    result = baselines.evaluate(method_class(fit_sessions, num_items, setting), prefixes,
                                targets, batch_size=batch_size)
    return {"setting": dataclasses.asdict(setting),
            "valid": {name: result[name] for name in REPORTED_METRICS},
            "seconds": time.perf_counter() - start}
