"""Restoring checkpoints whole, and the mid-epoch checkpoints that bound what a crash costs.

An epoch of a large dataset on a CPU takes tens of minutes (diginetica: ~17 min with f = 4
on two cores), so a run killed late in an epoch would lose all of it if only finished
epochs were saved. The mid-epoch checkpoints save where an unfinished epoch stands after
its graph step and after each session pass but the last, in their own folder: the epoch
checkpoints keep their layout, so runs started by earlier versions still resume.
"""

import os
import time

from absl import logging
import tensorflow as tf

from mtd_tf.errors import MTDError

# A mid-epoch checkpoint is written only once the newest checkpoint is this old: a crash
# then costs at most about this long plus one pass, and fast passes (GPUs, small data) do
# not spend their time saving.
MID_EPOCH_INTERVAL_SECONDS = 60.0


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


class MidEpochCheckpoints:
    """Saves and restores the training state part-way through an epoch.

    Args:
      parts: the objects of the run's epoch checkpoint (model, optimizers, run state).
      directory: folder of the mid-epoch checkpoints (one is kept).
      frequency: session passes per epoch, to number the checkpoints.
    """

    def __init__(self, parts, directory, frequency):
        self.progress = EpochProgress()
        self.frequency = frequency
        self.checkpoint = tf.train.Checkpoint(**parts, epoch_progress=self.progress)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=1)
        self.last_save = time.monotonic()

    def due(self):
        """Whether the newest checkpoint, of either kind, is old enough to save again."""
        return time.monotonic() - self.last_save >= MID_EPOCH_INTERVAL_SECONDS

    def restart_interval(self):
        """An epoch checkpoint was just saved: the interval counts from now."""
        self.last_save = time.monotonic()

    def save(self, epoch, passes_done):
        """Saves the whole state: `epoch` has run its graph step and `passes_done` passes."""
        self.progress.epoch.assign(epoch)
        self.progress.passes_done.assign(passes_done)
        path = self.manager.save(checkpoint_number=epoch * (self.frequency + 1) + passes_done)
        self.last_save = time.monotonic()
        logging.info("saved %s", self._describe(path, epoch, passes_done))

    def restore(self, epoch):
        """Restores the newest mid-epoch state of `epoch` (the one in progress), if saved.

        One saved in an epoch that has since been committed to the epoch checkpoints is
        older than them and ignored.
        """
        path = self.manager.latest_checkpoint
        if path is None:
            return
        probe = EpochProgress()
        tf.train.Checkpoint(epoch_progress=probe).restore(path).expect_partial()
        if int(probe.epoch) != epoch:
            return
        restore_all(self.checkpoint, path)
        logging.info("resumed from %s", self._describe(path, epoch, self.passes_done(epoch)))

    def passes_done(self, epoch):
        """Passes of `epoch` already trained (restored), or None when it starts afresh."""
        if int(self.progress.epoch) != epoch:
            return None
        return int(self.progress.passes_done)

    def describe_latest(self, epoch):
        """The newest mid-epoch checkpoint of `epoch`, in words, or None."""
        passes_done, path = self.passes_done(epoch), self.manager.latest_checkpoint
        if passes_done is None or path is None:
            return None
        return self._describe(path, epoch, passes_done)

    def _describe(self, path, epoch, passes_done):
        return f"{path} (epoch {epoch + 1} after {passes_done} of {self.frequency} passes)"
