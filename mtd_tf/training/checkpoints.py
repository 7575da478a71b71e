"""Restoring checkpoints whole, and the mid-epoch checkpoints that bound what a crash costs.

An epoch of a large dataset on a CPU takes tens of minutes (diginetica: ~17 min with f = 4
on two cores), so a run killed late in an epoch would lose all of it if only finished
epochs were saved, and one pass can be as long (a comparison model's epoch is one pass).
The mid-epoch checkpoints save where an unfinished epoch stands after its graph step,
between its session passes and within a pass (the batches done, which a resumed pass
skips), in their own folder: the epoch checkpoints keep their layout, so runs started by
earlier versions still resume.
"""

import os
import shutil
import time

from absl import logging
import tensorflow as tf

from mtd_tf.errors import MTDError
from mtd_tf.io_utils import no_space_reported

# A mid-epoch checkpoint is written only once the newest checkpoint is this old: a crash
# then costs at most about this long plus `MID_PASS_CHECK_BATCHES` batches, and fast passes
# (GPUs, small data) do not spend their time saving.
MID_EPOCH_INTERVAL_SECONDS = 60.0
# ... or once it is this many times as old as the last mid-epoch save took to write, if
# longer: a large state (a million-item table with its Adam slots is over a gigabyte) then
# spends at most about 5% of the training time being saved.
SAVE_TIME_MULTIPLE = 20
# Within a pass, whether a save is due is asked every this many batches: the question is a
# collective across the workers of a multi-worker run, too dear to ask at every step.
MID_PASS_CHECK_BATCHES = 50


def damage(path):
    """Why the checkpoint at `path` cannot be read whole (a truncated or missing data file,
    a corrupt index), in a few words, or None when every value reads back."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, OSError, RuntimeError) as error:
        return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return None


def newest_readable(paths):
    """The newest of `paths` (oldest first, as a manager lists them) that reads whole, or
    None; each damaged one newer than it is reported in one warning line. Also returns
    the damaged ones as "path (why)" descriptions."""
    damaged = []
    for path in reversed(list(paths)):
        why = damage(path)
        if why is None:
            return path, damaged
        logging.warning("%s is damaged (%s); trying the next older checkpoint", path, why)
        damaged.append(f"{path} ({why})")
    return None, damaged


def save(manager, checkpoint_number, discard=False):
    """`manager.save`, with a failure for lack of space reported in one line (the manager
    lists a checkpoint only once it is written whole, so the previous ones stay usable).

    `discard`: delete the manager's folder right after (a worker other than the chief of
    a multi-worker run saves as the chief does, but keeps nothing: `strategies`).
    """
    with no_space_reported(manager.directory):
        path = manager.save(checkpoint_number=checkpoint_number)
    if discard:
        shutil.rmtree(manager.directory, ignore_errors=True)
    return path


def listed(directory):
    """The checkpoints a `tf.train.CheckpointManager` of `directory` keeps, oldest first,
    read from the folder (a worker other than the chief reads the chief's)."""
    state = tf.train.get_checkpoint_state(directory)
    return list(state.all_model_checkpoint_paths) if state else []


def latest_listed(directory):
    """The newest checkpoint of `directory`, as its manager's `latest_checkpoint`, or None."""
    state = tf.train.get_checkpoint_state(directory)
    return state.model_checkpoint_path if state and state.model_checkpoint_path else None


def restore_all(checkpoint, path):
    """Restores every object of `checkpoint` from `path`, or says which run to delete.

    A checkpoint written by a version of this code with other state (say, before the run
    state kept CPU time) leaves objects unmatched; resuming it half-restored would be wrong.
    """
    status = checkpoint.restore(path)
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise MTDError(
            f"{path}: the checkpoint does not hold all of this version's training state; it "
            f"was written by another version of mtd_tf: delete "
            f"{os.path.dirname(os.path.dirname(path))} and train again, or finish it with the "
            "version that started it") from None
    # Values this version no longer keeps (older run states held their timers) are unused.
    status.expect_partial()


class EpochProgress(tf.Module):
    """How far an unfinished epoch got: its graph step and `passes_done` passes are done."""

    def __init__(self):
        super().__init__(name="epoch_progress")
        self.epoch = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self.passes_done = tf.Variable(0, dtype=tf.int64, trainable=False)


class BatchProgress(tf.Module):
    """Batches of the next pass already trained, when the state was saved mid-pass. Its own
    object, so that mid-epoch checkpoints written before it existed still restore whole."""

    def __init__(self):
        super().__init__(name="batch_progress")
        self.batches_done = tf.Variable(0, dtype=tf.int64, trainable=False)


class MidEpochCheckpoints:
    """Saves and restores the training state part-way through an epoch.

    Args:
      parts: the objects of the run's epoch checkpoint (model, optimizers, run state).
      directory: folder this process saves the mid-epoch checkpoints in (one is kept).
      frequency: session passes per epoch, to describe the checkpoints.
      read_directory: folder they are restored from (default `directory`): a worker other
        than the chief of a multi-worker run restores the chief's and saves its own.
      discard_saves: delete each save right after writing it (that worker's saves).
    """

    def __init__(self, parts, directory, frequency, read_directory=None, discard_saves=False):
        self.read_directory = read_directory or directory
        self.discard_saves = discard_saves
        self.progress = EpochProgress()
        self.batch_progress = BatchProgress()
        self.frequency = frequency
        # Saved with the batch progress; restored whole without it, which is read apart.
        self.restorable = tf.train.Checkpoint(**parts, epoch_progress=self.progress)
        self.manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(**parts, epoch_progress=self.progress,
                                batch_progress=self.batch_progress),
            directory, max_to_keep=1)
        self.last_save = time.monotonic()
        self.save_seconds = 0.0  # how long the last mid-epoch save took
        self.damaged = None  # "path (why)" of a mid-epoch checkpoint `restore` could not read

    def due(self):
        """Whether the newest checkpoint, of either kind, is old enough to save again."""
        interval = max(MID_EPOCH_INTERVAL_SECONDS, SAVE_TIME_MULTIPLE * self.save_seconds)
        return time.monotonic() - self.last_save >= interval

    def restart_interval(self):
        """An epoch checkpoint was just saved: the interval counts from now."""
        self.last_save = time.monotonic()

    def save(self, epoch, passes_done, batches_done=0):
        """Saves the whole state: `epoch` has run its graph step, `passes_done` passes and
        `batches_done` batches of the next one. Returns the checkpoint's description."""
        self.progress.epoch.assign(epoch)
        self.progress.passes_done.assign(passes_done)
        self.batch_progress.batches_done.assign(batches_done)
        started = time.monotonic()
        path = save(self.manager, self._next_number(), discard=self.discard_saves)
        self.last_save = time.monotonic()
        self.save_seconds = self.last_save - started
        description = self._describe(path, epoch, passes_done)
        logging.info("saved %s", description)
        return description

    def _next_number(self):
        """One more than the newest checkpoint's number: a save never rewrites in place the
        one a crash would resume from (several saves can fall in one pass)."""
        latest = self.manager.latest_checkpoint
        return int(latest.rsplit("-", 1)[1]) + 1 if latest else 1

    def restore(self, epoch):
        """Restores the newest mid-epoch state of `epoch` (the one in progress) or of a later
        one, if saved and readable; returns whether it did.

        One saved in an epoch that has since been committed to the epoch checkpoints is
        older than them and ignored; one of a later epoch is used when that epoch's own
        checkpoint was damaged (it holds the whole training state).
        """
        path = latest_listed(self.read_directory)
        if path is None:
            return False
        why = damage(path)
        if why is not None:
            logging.warning("%s is damaged (%s); resuming from the epoch checkpoint", path, why)
            self.damaged = f"{path} ({why})"
            return False
        probe = EpochProgress()
        tf.train.Checkpoint(epoch_progress=probe).restore(path).expect_partial()
        # Newer than the epoch restored only when that epoch's own checkpoint was damaged.
        if int(probe.epoch) < epoch:
            return False
        restore_all(self.restorable, path)
        tf.train.Checkpoint(batch_progress=self.batch_progress).restore(path).expect_partial()
        epoch = int(self.progress.epoch)
        logging.info("resumed from %s", self._describe(path, epoch, self.passes_done(epoch)))
        return True

    def passes_done(self, epoch):
        """Passes of `epoch` already trained (restored), or None when it starts afresh."""
        if int(self.progress.epoch) != epoch:
            return None
        return int(self.progress.passes_done)

    def batches_done(self, epoch):
        """Batches of `epoch`'s next pass already trained (restored; 0 unless the state was
        saved mid-pass)."""
        return int(self.batch_progress.batches_done) if int(self.progress.epoch) == epoch else 0

    def describe_latest(self, epoch):
        """The newest mid-epoch checkpoint of `epoch`, in words, or None."""
        passes_done, path = self.passes_done(epoch), latest_listed(self.read_directory)
        if passes_done is None or path is None:
            return None
        return self._describe(path, epoch, passes_done)

    def _describe(self, path, epoch, passes_done):
        batches = int(self.batch_progress.batches_done)
        within = f" and {batches} batches of the next" if batches else ""
        return (f"{path} (epoch {epoch + 1} after {passes_done} of {self.frequency} passes"
                f"{within})")
