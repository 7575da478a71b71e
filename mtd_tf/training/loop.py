"""The alternating training loop of MTD (DESIGN.md section 4), resumable and strategy-aware.

Each epoch: one graph step (cross-session infomax, then write-back into the item table),
then `frequency` passes of the session step, then validation, summaries and a checkpoint;
long epochs are also saved part-way (`checkpoints.MidEpochCheckpoints`).
Model selection and early stopping read validation only; the test split is read once, at
the end, from the best validation epoch's weights. A refit run (`refit_epochs`) trains on
every training session for a fixed number of epochs chosen beforehand on validation, and
tests its last epoch. Observers (`timing.TrainingObserver`) are told of each stage.

Under any `tf.distribute` strategy (`strategies`) both steps, validation and the test run
on every replica; the ranks of every replica are gathered, so each worker of a
multi-worker run decides on the same metrics, and the choices that depend on a clock
(mid-epoch saves) are agreed between workers (`worker_agreement`). Only the chief writes
the run folder; every worker restores from it.
"""

import os
import shutil

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from mtd_tf import losses
from mtd_tf import metrics
from mtd_tf import sampled_softmax
from mtd_tf.data import pipeline
from mtd_tf.errors import RunStopped
from mtd_tf.errors import TrainingDivergedError
from mtd_tf.io_utils import no_space_reported
from mtd_tf.models.graph_infomax import write_back
from mtd_tf.training import checkpoints
from mtd_tf.training import graph_step
from mtd_tf.training import inputs as inputs_lib
from mtd_tf.training import run_settings
from mtd_tf.training.run_checkpoints import RunCheckpoints
from mtd_tf.training.run_checkpoints import RunState
from mtd_tf.training import session_step
from mtd_tf.training import stop_signals
from mtd_tf.training import strategies
from mtd_tf.training import warm_start
from mtd_tf.training import worker_agreement
from mtd_tf.training.fused_adam import FusedAdam
from mtd_tf.training import row_sparse_adam
from mtd_tf.training.progress import PassProgress


class Trainer:
    """Owns the model, optimizers, steps and checkpoints of one run directory."""

    def __init__(self, config, strategy=None, observers=(), stop=None):
        """`config`: a `TrainConfig`; `observers`: `timing.TrainingObserver`s to tell;
        `stop`: a `stop_signals.GracefulStop` to ask between batches (default: never)."""
        self.config = config
        self.stop = stop or stop_signals.NeverStop()
        self.settings = config.trainer  # how to train; `config.model` is what to train
        self.strategy = strategy or tf.distribute.get_strategy()
        self.observers = tuple(observers)
        keras.utils.set_random_seed(self.settings.seed)
        # The chief writes the run folder; other workers of a multi-worker run save apart.
        self.folders = strategies.worker_folders(self.settings.model_dir, self.strategy)
        self.inputs = inputs_lib.build_inputs(config)
        self.frequency = self.inputs.frequency
        data = run_settings.data_fingerprint(self.inputs)
        run_settings.check_or_record(config, self.frequency, data=data,
                                     record=self.folders.is_chief)
        worker_agreement.check_same(
            self.strategy, worker_agreement.digest_values(
                run_settings.worker_record(config, self.frequency, data)),
            "settings and data", "start the same command on every machine, with the same "
            "dataset")
        num_items = self.inputs.num_items
        with self.strategy.scope():
            self.model = config.model.build(num_items)
            self.session_optimizer = row_sparse_adam.session_optimizer(
                self.settings.optimizer, self.model, self.settings.lr, self.settings.l2)
            self.session_optimizer.build(self.model.trainable_variables)
            self.infomax = self.graph_optimizer = None
            if config.uses_graph:
                self.infomax = config.model.build_graph_module(num_items, self.settings.l2)
                self.graph_optimizer = FusedAdam(learning_rate=self.settings.lr)
                self.graph_optimizer.build(self.infomax.trainable_variables)
        # Host-side counters, outside the strategy: one copy, readable with int()/float().
        self.state = RunState()
        self._make_steps()
        self._make_checkpoints()
        self.writer_dir = os.path.join(self.settings.model_dir, "logs")
        self.writer = (tf.summary.create_file_writer(self.writer_dir) if self.folders.is_chief
                       else tf.summary.create_noop_writer())

    def _distribute(self, samples, shuffle, epoch=0, limit=None, skip=0,
                    with_positions=False):
        dataset = pipeline.make_dataset(samples, self.settings.batch_size, shuffle=shuffle,
                                        seed=self.settings.seed, epoch=epoch)
        if with_positions:  # each pair's place in the split travels with it
            dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.range(len(samples))
                                           .batch(self.settings.batch_size)))
        if limit is not None:
            dataset = dataset.take(limit)
        # The order is a function of (seed, epoch, pass): skipping the batches a stopped
        # pass trained resumes it exactly. Every worker builds the same batches and keeps
        # its share of each (the samples are in memory, not in files to deal out).
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        return self.strategy.experimental_distribute_dataset(
            dataset.skip(skip).with_options(options))

    def _make_steps(self):
        # Only the element spec is taken (nothing is evaluated), from the test split: loading
        # refuses a dataset without test pairs, while a refit run has no validation split.
        spec = self._distribute(self.inputs.test, shuffle=False).element_spec
        self.train_step = session_step.make_session_train_step(
            self.model, self.session_optimizer, self.strategy, self.settings.l2, spec,
            matmul_dtype=losses.MATMUL_DTYPES[self.settings.scoring_precision],
            sampler=sampled_softmax.sampler_for(self.settings, self.inputs))
        self.rank_step = session_step.make_rank_step(
            self.model, self.strategy, spec, self.inputs.item_popularity)
        self.graph_train_step = (
            graph_step.make_graph_train_step(self.infomax, self.graph_optimizer, self.strategy)
            if self.infomax is not None else None)

    def _make_checkpoints(self):
        # Keras 3 keeps every dropout's seed-generator state outside TensorFlow's object
        # graph (layers held in Python lists are also set as attributes, see `MTDModel`,
        # `SparseGCN`, `GraphInfomax`). `tf.train.Checkpoint(model=...)` alone would
        # silently skip those states, so every variable is also listed explicitly; with the
        # seed states saved, a resumed run draws the same dropout masks as an uninterrupted
        # one. Checkpoints written before the attributes existed still restore through the
        # lists.
        parts = dict(model=self.model, model_variables=list(self.model.variables),
                     session_optimizer=self.session_optimizer, state=self.state)
        if self.infomax is not None:
            parts.update(infomax=self.infomax, infomax_variables=list(self.infomax.variables),
                         graph_optimizer=self.graph_optimizer)
        self.checkpoints = RunCheckpoints(self.settings.model_dir, self.model, parts,
                                          self.frequency, write_dir=self.folders.write_dir)
        self.mid_epoch = self.checkpoints.mid_epoch

    def restore(self):
        """Continues after the last finished epoch when the run directory has a checkpoint;
        a fresh run with --warm_start_from starts from that run's best weights.

        The learning rates come from the config, not the checkpoint, so a run that diverged
        can be resumed from its last good checkpoint with a lower --lr.
        """
        has_progress = self.checkpoints.restore_latest(self.state)
        epoch = int(self.state.epoch)
        passes_done = self.mid_epoch.passes_done(epoch)
        worker_agreement.check_same(
            self.strategy, [epoch, int(self.state.step), -1 if passes_done is None else
                            passes_done, self.mid_epoch.batches_done(epoch)],
            "checkpoint to resume from", f"--model_dir ({self.settings.model_dir}) must be "
            "one folder that every worker reads, such as a shared file system")
        if not has_progress and self.settings.warm_start_from:
            warm_start.warm_start(self.model, self.config, self.inputs.raw_item_ids,
                                  self.settings.warm_start_from, self.infomax)
        self._tell("on_resume", self.settings.model_dir, has_progress)
        self.session_optimizer.learning_rate = self.settings.learning_rate(int(self.state.epoch))
        if self.graph_optimizer is not None:
            self.graph_optimizer.learning_rate = self.settings.lr

    def diverged(self, epoch, what):
        """The error for a NaN or Inf loss: what happened and which checkpoint is kept."""
        latest = self.checkpoints.latest(epoch, self.state)
        kept = (f"the last good checkpoint, {latest}, is kept and a re-run resumes from it"
                if latest else "no checkpoint had been written yet")
        return TrainingDivergedError(
            f"training diverged in epoch {epoch + 1}: {what}; {kept}. Try a lower --lr "
            f"(now {self.settings.lr:g})")

    def graph_phase(self, epoch):
        """Trains the infomax encoder on the current table, then writes H back (section 3)."""
        try:
            embeddings, info = graph_step.run_graph_phase(
                self.graph_train_step, tf.convert_to_tensor(self.model.item_embeddings),
                self.inputs.adjacency, max_steps=self.settings.graph_steps,
                patience=self.settings.graph_patience, seed=self.settings.seed * 100003 + epoch,
                check=self.stop.check)
        except TrainingDivergedError as error:
            raise self.diverged(epoch, str(error)) from None
        write_back(self.model, worker_agreement.replica_mean(self.strategy, embeddings),
                   self.inputs.has_edge, self.config.model.graph_writeback,
                   self.config.model.graph_mix)
        tf.summary.scalar("loss/co", info["loss/co"], step=self.state.step)
        tf.summary.scalar("graph/steps", info["steps"], step=self.state.step)
        logging.info("epoch %d graph step: L_co %.4f after %d steps", epoch + 1,
                     info["loss/co"], info["steps"])
        return info

    def session_pass(self, epoch, pass_index):
        """One pass of L_in over the training samples (the rest of it, when it was saved
        part-way), saving the state every `MID_EPOCH_INTERVAL_SECONDS` or so within it;
        returns the mean loss and the pass's `PassProgress`."""
        limit = self.settings.max_train_batches
        num_batches = pipeline.num_batches(self.inputs.train, self.settings.batch_size)
        num_batches = min(num_batches, limit) if limit else num_batches
        resumed = pass_index == self.mid_epoch.passes_done(epoch)
        self.batches_trained = self.mid_epoch.batches_done(epoch) if resumed else 0
        progress = PassProgress(f"epoch {epoch + 1} pass {pass_index + 1}/{self.frequency}",
                                num_batches - self.batches_trained)
        losses = []
        dataset = self._distribute(self.inputs.train, shuffle=True,
                                   epoch=epoch * self.frequency + pass_index, limit=limit,
                                   skip=self.batches_trained)
        for batch in dataset:
            self.stop.check()
            result = self.train_step(batch)
            loss = float(result["loss/in"])
            if not np.isfinite(loss):
                # The step has already applied non-finite gradients: nothing more is saved.
                raise self.diverged(
                    epoch, f"loss/in is {loss} at step {int(self.state.step) + 1} (pass "
                           f"{pass_index + 1})")
            self.state.step.assign_add(1)
            self.batches_trained += 1
            losses.append(loss)
            if int(self.state.step) % 50 == 0:
                tf.summary.scalar("loss/in", loss, step=self.state.step)
            progress.update(self._batch_size(batch), loss)
            if (self.batches_trained % checkpoints.MID_PASS_CHECK_BATCHES == 0
                    and self.batches_trained < num_batches):
                self._save_mid_epoch(epoch, pass_index, self.batches_trained)
        if isinstance(self.session_optimizer, row_sparse_adam.RowSparseAdam):  # the tables as Adam has them
            self.session_optimizer.catch_up(self.model.item_tables(), self.strategy)
        return float(np.mean(losses)), progress

    def _batch_size(self, batch):
        local = self.strategy.experimental_local_results(batch[1])
        return sum(int(tf.shape(t)[0]) for t in local)

    def evaluate(self, samples, description, accumulator=None):
        """P@K, MRR@K, NDCG@K (percent) of a split, with the popularity fallback of
        `serving.retrieval` for prefixes with no known id; `accumulator` (default, a fresh
        `metrics.RankingMetrics`) may keep every pair's rank, in the split's order."""
        with_positions = self.strategy.num_replicas_in_sync > 1
        return session_step.evaluate(
            self.rank_step, self.strategy,
            self._distribute(samples, shuffle=False, with_positions=with_positions),
            pipeline.num_batches(samples, self.settings.batch_size),
            accumulator or metrics.RankingMetrics(metrics.REPORT_KS),
            description=description, check=self.stop.check, with_positions=with_positions)

    def restore_best(self):
        """Loads the weights of the best validation epoch (`RunCheckpoints.restore_best`).

        Every worker reads the chief's `best/`, once all of them got here: the check is a
        collective, which the chief joins only after its last save.
        """
        worker_agreement.check_same(
            self.strategy, [int(self.state.best_epoch), int(self.state.epoch)], "best epoch")
        self.checkpoints.restore_best(self.state)

    def run_epoch(self, epoch):
        """Graph step, `frequency` session passes, validation, early-stopping bookkeeping.

        An epoch restored part-way (`restore`) skips its graph step and the passes done.
        """
        self._tell("on_epoch_begin", epoch)
        self.session_optimizer.learning_rate = self.settings.learning_rate(epoch)
        passes_done = self.mid_epoch.passes_done(epoch)
        stage = None  # the pass in progress, or "validation"; None in the graph phase
        try:
            if passes_done is None:
                passes_done = 0
                if self.infomax is not None:
                    self.graph_phase(epoch)
                    self._save_mid_epoch(epoch, 0)
            for stage in range(passes_done, self.frequency):
                mean_loss, progress = self.session_pass(epoch, stage)
                logging.info("epoch %d pass %d: mean L_in %.4f in %.1f s", epoch + 1,
                             stage + 1, mean_loss, progress.seconds)
                self._tell("on_pass_end", progress)
                if stage + 1 < self.frequency:
                    self._save_mid_epoch(epoch, stage + 1)
            stage = "validation"
            valid = (None if self.settings.refit_epochs
                     else self.evaluate(self.inputs.valid, f"epoch {epoch + 1} validation"))
        except stop_signals.StopRequested as stop:
            raise self._stopped(stop, epoch, stage) from None
        self._tell("on_epoch_trained", epoch)
        step = self.state.step
        tf.summary.scalar("learning_rate", self.settings.learning_rate(epoch), step=step)
        tf.summary.histogram("embeddings/items", self.model.item_embeddings, step=step)
        if valid is None:  # refit: the last epoch is the model
            logging.info("epoch %d of %d (refit on all training sessions)", epoch + 1,
                         self.settings.refit_epochs)
            self.state.best_epoch.assign(epoch + 1)
            self.checkpoints.save_best(epoch + 1)
        else:
            self._track_validation(epoch, valid)
        self.state.epoch.assign(epoch + 1)
        if (int(self.state.bad_epochs) >= self.settings.patience
                or epoch + 1 >= self.settings.max_epochs):
            self.state.finished.assign(True)
        self.checkpoints.save_epoch(epoch + 1)
        self._tell("on_checkpoint_saved")
        self.mid_epoch.restart_interval()
        with no_space_reported(self.writer_dir):
            self.writer.flush()

    def _stopped(self, stop, epoch, stage):
        """Saves what an epoch stopped by a signal in `stage` has done; the error to end
        the run with. Stopped in the graph phase, the last checkpoint already holds it all."""
        if stage is None:
            saved = self.checkpoints.latest(epoch, self.state)
        else:
            passes_done, batches_done = ((self.frequency, 0) if stage == "validation"
                                         else (stage, self.batches_trained))
            saved = self.mid_epoch.save(epoch, passes_done, batches_done)
            self._tell("on_checkpoint_saved")
        where = f"its state is saved in {saved}" if saved else "nothing was saved yet"
        return RunStopped(f"{stop} received in epoch {epoch + 1}; {where}: run the same "
                          "command to resume", stop.signum)

    def _save_mid_epoch(self, epoch, passes_done, batches_done=0):
        """Saves the unfinished epoch when due (on any worker: then on every worker)."""
        if worker_agreement.any_worker(self.strategy, self.mid_epoch.due()):
            self.mid_epoch.save(epoch, passes_done, batches_done)
            self._tell("on_checkpoint_saved")

    def _tell(self, hook, *args):
        for observer in self.observers:
            getattr(observer, hook)(*args)

    def _track_validation(self, epoch, valid):
        """Summaries, the best epoch so far and its weights, the early-stopping count."""
        tf.summary.scalar("valid/P@20", valid["P@20"], step=self.state.step)
        tf.summary.scalar("valid/MRR@20", valid["MRR@20"], step=self.state.step)
        logging.info("epoch %d: valid P@20 %.2f MRR@20 %.2f", epoch + 1, valid["P@20"],
                     valid["MRR@20"])
        if valid["P@20"] > float(self.state.best_valid_p20):
            self.state.best_valid_p20.assign(valid["P@20"])
            self.state.best_epoch.assign(epoch + 1)
            self.state.bad_epochs.assign(0)
            self.checkpoints.save_best(epoch + 1)
        else:
            self.state.bad_epochs.assign_add(1)

    def train(self):
        """Runs (or resumes) epochs until early stopping or `max_epochs`; a finished run
        keeps no mid-epoch checkpoint (it is older than the last epoch's)."""
        self.restore()
        with self.writer.as_default():
            while (not bool(self.state.finished)
                   and int(self.state.epoch) < self.settings.max_epochs):
                self.run_epoch(int(self.state.epoch))
        shutil.rmtree(self.mid_epoch.manager.directory, ignore_errors=True)
