"""Timing of a training run, as an observer the trainer calls: wall, CPU, steal, steady rate.

Table 4 and the benchmarks need seconds per epoch that survive a resume; the trainer does
not. `RunTimer` charges the time of each epoch's work (graph phase, passes, validation),
persists what it has counted in `<model_dir>/timing.json` whenever the trainer saves a
checkpoint, and reads it back on resume. Timings on a shared machine mean little without
the CPU time its neighbours stole, so that is counted too (`machine_load`).
"""

import collections
import json
import os
import time

from absl import logging
import tensorflow as tf

from mtd_tf.io_utils import atomic_write_text
from mtd_tf.training import machine_load

TIMING_FILE = "timing.json"
_Clock = collections.namedtuple("_Clock", "wall cpu ticks")
_TOTALS = ("train_seconds", "train_cpu_seconds", "train_stolen_ticks", "train_machine_ticks",
           "steady_batches", "steady_batch_seconds")


class TrainingObserver:
    """What a trainer tells an observer; every hook does nothing unless overridden."""

    def on_resume(self, model_dir, has_progress):
        """Before the first epoch; `has_progress`: the run restored a checkpoint."""

    def on_epoch_begin(self, epoch):
        """An epoch (or the rest of a restored one) starts."""

    def on_pass_end(self, progress):
        """A session pass ended; `progress` is its `PassProgress`."""

    def on_epoch_trained(self, epoch):
        """The epoch's training and validation are done (before its summaries and saves)."""

    def on_checkpoint_saved(self):
        """The trainer saved a checkpoint (mid-epoch or epoch): persist what must resume."""

    def report(self, epochs_run):
        """Figures for metrics.json."""
        del epochs_run
        return {}


def _clock():
    """Wall and process CPU seconds, and the machine's (stolen, total) CPU ticks or None."""
    return _Clock(time.perf_counter(), time.process_time(), machine_load.cpu_ticks())


def _ratio_or_none(numerator, denominator):
    """numerator / denominator as a float, None when nothing was counted."""
    return float(numerator) / float(denominator) if denominator > 0 else None


class RunTimer(TrainingObserver):
    """Counts a run's training time across restarts.

    metrics.json gains `seconds_per_epoch`, `cpu_seconds_per_epoch` (process CPU, all
    threads), `steal_fraction` (share of the machine's CPU ticks stolen meanwhile) and
    `seconds_per_train_batch`: the steady rate of the session step (batches after each
    pass's first), at which a pass capped by max_train_batches extrapolates to a whole one.
    A run resumed from a folder that has no `timing.json` (started untimed) reports None.
    """

    def __init__(self):
        self.totals = dict.fromkeys(_TOTALS, 0.0)
        self.clock = None
        self.path = None
        self.complete = True

    def on_resume(self, model_dir, has_progress):
        self.path = os.path.join(model_dir, TIMING_FILE)
        if os.path.exists(self.path):
            with open(self.path) as handle:
                recorded = json.load(handle)
            self.totals.update({key: float(recorded.get(key, 0.0)) for key in _TOTALS})
        elif has_progress:
            self.complete = self._read_legacy_totals(model_dir)
            if not self.complete:
                logging.warning("%s: no timing record; this run's timings are not reported",
                                model_dir)

    def _read_legacy_totals(self, model_dir):
        """Runs started before the timer was an observer kept its totals in the run state of
        their epoch checkpoints; reads them from the newest one. Whether that worked."""
        path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
        if path is None:
            return False
        reader = tf.train.load_checkpoint(path)
        keys = {key: f"state/{key}/.ATTRIBUTES/VARIABLE_VALUE" for key in _TOTALS}
        if not all(reader.has_tensor(name) for name in keys.values()):
            return False
        self.totals.update({key: float(reader.get_tensor(name)) for key, name in keys.items()})
        return True

    def on_epoch_begin(self, epoch):
        self.clock = _clock()

    def on_pass_end(self, progress):
        seconds, batches = progress.steady
        self.totals["steady_batch_seconds"] += seconds
        self.totals["steady_batches"] += batches

    def on_epoch_trained(self, epoch):
        self._charge()
        self.clock = None

    def on_checkpoint_saved(self):
        if self.clock is not None:  # mid-epoch: what ran so far belongs to the saved state
            self._charge()
            self.clock = _clock()
        atomic_write_text(self.path, json.dumps(self.totals, indent=2, sort_keys=True) + "\n")

    def _charge(self):
        now, clock = _clock(), self.clock
        self.totals["train_seconds"] += now.wall - clock.wall
        self.totals["train_cpu_seconds"] += now.cpu - clock.cpu
        if clock.ticks is not None and now.ticks is not None:
            self.totals["train_stolen_ticks"] += now.ticks[0] - clock.ticks[0]
            self.totals["train_machine_ticks"] += now.ticks[1] - clock.ticks[1]

    def report(self, epochs_run):
        totals, epochs = self.totals, max(epochs_run, 1)
        if not self.complete:
            return dict.fromkeys(("seconds_per_epoch", "cpu_seconds_per_epoch",
                                  "steal_fraction", "seconds_per_train_batch"))
        return {
            "seconds_per_epoch": totals["train_seconds"] / epochs,
            "cpu_seconds_per_epoch": totals["train_cpu_seconds"] / epochs,
            "steal_fraction": _ratio_or_none(totals["train_stolen_ticks"],
                                             totals["train_machine_ticks"]),
            "seconds_per_train_batch": _ratio_or_none(totals["steady_batch_seconds"],
                                                      totals["steady_batches"]),
        }
