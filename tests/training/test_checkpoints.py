"""Checkpoints: whole restores only, and runs stopped part-way through an epoch resume from
its last saved pass exactly as if nothing had happened."""

import glob
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.errors import MTDError
from mtd_tf.errors import TrainingDivergedError
from mtd_tf.training import checkpoints
from mtd_tf.training import loop
from mtd_tf.training.timing import RunTimer
from tests import helpers

PASSES = 3


class Crash(Exception):
    """Stands in for a kill at a chosen moment of training."""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return helpers.write_tiny_dataset(tmp_path_factory.mktemp("data"))


def config(data_dir, model_dir, **overrides):
    return helpers.tiny_config(data_dir, model_dir, frequency=PASSES, **overrides)


def state_of(trainer):
    """Every value a resumed run must reproduce: weights, optimizer slots, counters."""
    variables = (trainer.model.variables + trainer.session_optimizer.variables
                 + trainer.infomax.variables + [trainer.state.step, trainer.state.epoch])
    return [np.array(variable) for variable in variables]


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    trainer = loop.Trainer(config(data_dir, tmp_path_factory.mktemp("uninterrupted")))
    trainer.train()
    return state_of(trainer)


@pytest.fixture(name="save_every_time")
def fixture_save_every_time(monkeypatch):
    """Tiny passes take well under the interval: make every mid-epoch checkpoint due."""
    monkeypatch.setattr(checkpoints, "MID_EPOCH_INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(checkpoints, "SAVE_TIME_MULTIPLE", 0)


def crash_at(monkeypatch, method_name, moment):
    """Makes `Trainer.<method_name>` raise `Crash` when called with args `moment`."""
    original = getattr(loop.Trainer, method_name)

    def crashing(self, *args):
        if args == moment:
            raise Crash(moment)
        return original(self, *args)

    monkeypatch.setattr(loop.Trainer, method_name, crashing)


def assert_same_state(values, expected):
    """Equal up to float rounding: TensorFlow's multithreaded CPU kernels sum in no fixed
    order (two uninterrupted runs differ by ~1e-7), while a pass trained on other data or
    state moves weights by about the learning rate, 1e-3."""
    for value, want in zip(values, expected, strict=True):
        np.testing.assert_allclose(value, want, rtol=0, atol=1e-5)


def assert_resumes_all_of_epoch_2(data_dir, model_dir, uninterrupted, monkeypatch):
    """A re-run trains epoch 2 again from epoch 1's checkpoint (its graph step and every
    pass) and ends in the uninterrupted run's state."""
    events = []
    helpers.spy(monkeypatch, "graph_phase", events)
    helpers.spy(monkeypatch, "session_pass", events)
    resumed = loop.Trainer(config(data_dir, model_dir))
    resumed.train()
    assert events == [("graph_phase", (1,))] + [("session_pass", (1, index))
                                                for index in range(PASSES)]
    assert_same_state(state_of(resumed), uninterrupted)


class RecordingTimer(RunTimer):
    """A `RunTimer` that remembers the seconds it had counted at each checkpoint."""

    def __init__(self):
        super().__init__()
        self.saved_seconds = []

    def on_checkpoint_saved(self):
        super().on_checkpoint_saved()
        self.saved_seconds.append(self.totals["train_seconds"])


@pytest.mark.slow
def test_a_run_stopped_mid_epoch_resumes_after_its_last_saved_pass(
        data_dir, uninterrupted, tmp_path, monkeypatch, save_every_time):
    model_dir = tmp_path / "run"
    crashed_timer = RecordingTimer()
    with monkeypatch.context() as patch:
        crash_at(patch, "session_pass", (1, 2))  # epoch 2, pass 3 of 3
        with pytest.raises(Crash):
            loop.Trainer(config(data_dir, model_dir), observers=[crashed_timer]).train()

    events = []
    helpers.spy(monkeypatch, "graph_phase", events)
    helpers.spy(monkeypatch, "session_pass", events)
    timer = RunTimer()
    resumed = loop.Trainer(config(data_dir, model_dir), observers=[timer])
    resumed.restore()
    # The seconds of epoch 2's graph step and first two passes are charged at each save,
    # not lost: the resumed timer starts from the last one.
    saved = crashed_timer.saved_seconds
    assert len(saved) == 2 * (PASSES + 1) - 1 and saved == sorted(set(saved))
    assert timer.totals["train_seconds"] == saved[-1]
    resumed.train()

    assert events == [("session_pass", (1, 2))]  # no graph step, no pass trained twice
    assert_same_state(state_of(resumed), uninterrupted)


@pytest.mark.slow
def test_a_run_killed_mid_pass_resumes_after_its_last_saved_batch(
        data_dir, uninterrupted, tmp_path, monkeypatch, save_every_time):
    monkeypatch.setattr(checkpoints, "MID_PASS_CHECK_BATCHES", 2)  # passes of 4 batches
    model_dir = tmp_path / "run"
    crashed = loop.Trainer(config(data_dir, model_dir))
    real_step, calls = crashed.train_step, []

    def step_killed_at_batch_3_of_epoch_2_pass_2(batch):
        calls.append(None)
        if len(calls) == (PASSES + 1) * 4 + 3:
            raise Crash("kill")
        return real_step(batch)

    crashed.train_step = step_killed_at_batch_3_of_epoch_2_pass_2
    with pytest.raises(Crash):
        crashed.train()

    events = []
    helpers.spy(monkeypatch, "session_pass", events)
    resumed = loop.Trainer(config(data_dir, model_dir))
    resumed.restore()
    assert resumed.mid_epoch.passes_done(1) == 1 and resumed.mid_epoch.batches_done(1) == 2
    resumed.train()

    assert events == [("session_pass", (1, 1)), ("session_pass", (1, 2))]
    assert_same_state(state_of(resumed), uninterrupted)


@pytest.mark.slow
def test_a_damaged_mid_epoch_checkpoint_falls_back_to_the_epoch_checkpoint(
        data_dir, uninterrupted, tmp_path, monkeypatch, save_every_time):
    model_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        crash_at(patch, "session_pass", (1, 2))  # epoch 2 saved after its pass 2
        with pytest.raises(Crash):
            loop.Trainer(config(data_dir, model_dir)).train()
    [data_file] = glob.glob(str(model_dir / "mid_epoch" / "ckpt-*.data-*"))
    with open(data_file, "r+b") as handle:
        handle.truncate(os.path.getsize(data_file) // 2)

    assert_resumes_all_of_epoch_2(data_dir, model_dir, uninterrupted, monkeypatch)


@pytest.mark.slow
def test_a_mid_epoch_checkpoint_of_a_committed_epoch_is_ignored(
        data_dir, uninterrupted, tmp_path, monkeypatch, save_every_time):
    model_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        crash_at(patch, "graph_phase", (1,))  # epoch 1 is committed; its passes were saved
        with pytest.raises(Crash):
            loop.Trainer(config(data_dir, model_dir)).train()
    assert glob.glob(str(model_dir / "mid_epoch" / "ckpt-*.index"))
    assert_resumes_all_of_epoch_2(data_dir, model_dir, uninterrupted, monkeypatch)


@pytest.mark.slow
def test_a_diverged_run_names_the_mid_epoch_checkpoint_it_keeps(
        data_dir, tmp_path, save_every_time):
    trainer = loop.Trainer(config(data_dir, tmp_path / "run"))
    real_step = trainer.train_step
    calls = []

    def step_that_blows_up_in_pass_2(batch):
        calls.append(None)
        result = dict(real_step(batch))
        if len(calls) > 4:  # max_train_batches=4: the first batch of pass 2
            result["loss/in"] = tf.constant(np.nan)
        return result

    trainer.train_step = step_that_blows_up_in_pass_2
    with pytest.raises(TrainingDivergedError) as raised:
        trainer.train()
    # Saved after the graph step (ckpt-1), then after pass 1 (ckpt-2).
    path = os.path.join(tmp_path, "run", "mid_epoch", "ckpt-2")
    assert f"the last good checkpoint, {path} (epoch 1 after 1 of 3 passes), is kept" in str(
        raised.value)


@pytest.mark.slow
def test_no_mid_epoch_checkpoint_is_written_before_the_interval(data_dir, tmp_path):
    assert checkpoints.MID_EPOCH_INTERVAL_SECONDS >= 10  # tiny passes take well under
    loop.Trainer(config(data_dir, tmp_path / "run", epochs=1)).train()
    assert not glob.glob(str(tmp_path / "run" / "mid_epoch" / "ckpt-*"))


def test_a_slow_save_stretches_the_interval_to_the_next(tmp_path):
    """A state that takes long to write is saved less often, so saving stays a small share
    of the training time."""
    saves = checkpoints.MidEpochCheckpoints({"weights": tf.Variable(1.0)}, str(tmp_path), 1)
    now = time.monotonic()  # the last save's age below is this much, plus microseconds
    saves.save_seconds = 10.0  # the last save took 10 s: the next is due 200 s after it
    saves.last_save = now - 150
    assert not saves.due()
    saves.last_save = now - 200
    assert saves.due()
    saves.save_seconds = 0.1  # a quick save: the minute's floor
    saves.last_save = now - checkpoints.MID_EPOCH_INTERVAL_SECONDS + 1
    assert not saves.due()


def test_a_checkpoint_missing_state_is_refused_with_the_run_to_delete(tmp_path):
    """A checkpoint from a version without some of today's state must not half-restore."""
    old_state, new_state = tf.Module(), tf.Module()
    old_state.epoch = tf.Variable(3)
    new_state.epoch, new_state.train_cpu_seconds = tf.Variable(0), tf.Variable(0.0)
    path = tf.train.Checkpoint(state=old_state).save(str(tmp_path / "run" / "checkpoints" / "ckpt"))
    with pytest.raises(MTDError, match="another version") as error:
        checkpoints.restore_all(tf.train.Checkpoint(state=new_state), path)
    assert str(tmp_path / "run") in str(error.value)
    checkpoints.restore_all(tf.train.Checkpoint(state=old_state), path)  # a matching one restores
