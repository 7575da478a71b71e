"""The checkpoints of one run folder: finished epochs (`checkpoints/`), the best epoch
(`best/`) and unfinished epochs (`mid_epoch/`), how a restart chooses among them, and the
run's counters they hold (`RunState`).

A restart takes the newest checkpoint that reads whole: a damaged one (truncated by a full
disk, a corrupt index, a missing shard) is reported in one warning line and the next older
one used; only when none is usable does it stop, in one line naming the damaged files.
"""

import os

from absl import logging
import tensorflow as tf

from mtd_tf.errors import MTDError
from mtd_tf.training import checkpoints


class RunState(tf.Module):
    """Counters that resuming needs; saved in the same checkpoint as the weights."""

    def __init__(self):
        super().__init__(name="run_state")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best_valid_p20 = tf.Variable(-1.0, dtype=tf.float64, trainable=False)
        self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.finished = tf.Variable(False, trainable=False)


class RunCheckpoints:
    """Saves and restores a trainer's state in `model_dir`.

    Args:
      model_dir: the run folder.
      model: the next-item model (the best checkpoint holds it alone).
      parts: every object of the training state by name (model, optimizers, run state,
        graph module), as an epoch checkpoint holds them.
      frequency: session passes per epoch, to number mid-epoch checkpoints.
      write_dir: where this process saves (default `model_dir`). A worker other than the
        chief of a multi-worker run saves into a folder of its own and deletes each save
        at once (`strategies.WorkerFolders`); every worker restores from `model_dir`.
    """

    def __init__(self, model_dir, model, parts, frequency, write_dir=None):
        self.model_dir = model_dir
        write_dir = write_dir or model_dir
        self.discard_saves = write_dir != model_dir
        self.checkpoint = tf.train.Checkpoint(**parts)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(write_dir, "checkpoints"), max_to_keep=2)
        self.best_checkpoint = tf.train.Checkpoint(
            model=model, model_variables=list(model.variables))
        # Two kept: a run killed between saving a new best and committing its epoch to
        # `checkpoints/` re-runs that epoch, and the committed best must still be there.
        self.best_manager = tf.train.CheckpointManager(
            self.best_checkpoint, os.path.join(write_dir, "best"), max_to_keep=2)
        self.mid_epoch = checkpoints.MidEpochCheckpoints(
            parts, os.path.join(write_dir, "mid_epoch"), frequency,
            read_directory=os.path.join(model_dir, "mid_epoch"),
            discard_saves=self.discard_saves)
        self.epoch_dir = os.path.join(model_dir, "checkpoints")
        self.best_dir = os.path.join(model_dir, "best")

    def save_epoch(self, epoch):
        """Saves the whole training state as finished epoch `epoch` (1-based)."""
        return checkpoints.save(self.manager, epoch, discard=self.discard_saves)

    def save_best(self, epoch):
        """Saves the model's weights as those of the best epoch so far, `epoch`."""
        return checkpoints.save(self.best_manager, epoch, discard=self.discard_saves)

    def restore_latest(self, state):
        """Restores the newest readable epoch checkpoint, then a newer mid-epoch one if
        there is one; returns whether anything was restored. `state` is the run state."""
        path, damaged = checkpoints.newest_readable(checkpoints.listed(self.epoch_dir))
        if path:
            checkpoints.restore_all(self.checkpoint, path)
            logging.info("resumed from %s after epoch %d", path, int(state.epoch))
        resumed_mid_epoch = self.mid_epoch.restore(int(state.epoch))
        damaged += [self.mid_epoch.damaged] if self.mid_epoch.damaged else []
        if damaged and not path and not resumed_mid_epoch:
            raise MTDError(
                f"{self.model_dir}: no checkpoint can be read: {'; '.join(damaged)}. Delete "
                f"{self.model_dir} and train again (or restore its checkpoints/ folder from "
                "a copy)")
        return bool(path or resumed_mid_epoch)

    def restore_best(self, state):
        """Loads the weights of the best validation epoch recorded in `state`.

        By number, not as the newest file: a run killed after saving a new best but before
        committing that epoch leaves a newer best that the committed state never chose. If
        that checkpoint is damaged, the previous best (an earlier epoch) is loaded instead,
        and becomes the state's best epoch.
        """
        best_epoch = int(state.best_epoch)
        earlier = [path for path in checkpoints.listed(self.best_dir)
                   if int(path.rsplit("-", 1)[1]) <= best_epoch]
        if not earlier or not earlier[-1].endswith(f"-{best_epoch}"):
            raise MTDError(f"{self.best_dir}: the checkpoint of the best epoch "
                           f"({best_epoch}) is missing; delete {self.model_dir} and train "
                           "again")
        path, damaged = checkpoints.newest_readable(earlier)
        if path is None:
            raise MTDError(f"{self.best_dir}: no best checkpoint can be read: "
                           f"{'; '.join(damaged)}. Delete {self.model_dir} and train again")
        checkpoints.restore_all(self.best_checkpoint, path)
        if damaged:
            state.best_epoch.assign(int(path.rsplit("-", 1)[1]))
            logging.warning("testing the previous best epoch, %d, instead",
                            int(state.best_epoch))

    def latest(self, epoch, state):
        """The newest checkpoint a re-run would resume from, in words, or None."""
        mid_epoch = self.mid_epoch.describe_latest(epoch)
        latest = checkpoints.latest_listed(self.epoch_dir)
        if mid_epoch is None and latest:
            return f"{latest} (epoch {int(state.epoch)})"
        return mid_epoch
