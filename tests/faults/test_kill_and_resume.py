"""Crashes cost no data: kill -9 resumes exactly, exports are all or nothing, NaN stops cleanly.

The end-to-end tests run `mtd_tf/main.py` as a user does, on a 150-item synthetic split
(3 epochs of 85 batches take seconds), and kill it with SIGKILL at chosen moments.
"""

import json
import os
import pathlib
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import io_utils
from mtd_tf import job
from mtd_tf.errors import TrainingDivergedError
from mtd_tf.models.mtd import MTDModel
from mtd_tf.serving import export
from mtd_tf.training import loop
from mtd_tf.training.config import TrainConfig
from tests.faults import runs


@pytest.mark.slow
def test_kill_mid_epoch_then_same_command_equals_uninterrupted_run(
        data_dir, uninterrupted, copy_after_epoch_1):
    model_dir = copy_after_epoch_1
    command = runs.command(data_dir, model_dir)
    assert not (model_dir / "metrics.json").exists()

    completed = runs.run(command)

    assert completed.returncode == 0, completed.stderr
    assert "resumed from" in completed.stderr and "after epoch 1" in completed.stderr
    assert "epoch 1 pass 1" not in completed.stderr  # epoch 1 was not trained again
    resumed = json.loads((model_dir / "metrics.json").read_text())
    expected = uninterrupted[1]
    runs.assert_same_report(resumed, expected)
    assert runs.leftovers(model_dir) == []
    assert (model_dir / "export" / "saved_model.pb").is_file()


@pytest.mark.slow
def test_kill_during_export_keeps_the_previous_export_whole(data_dir, uninterrupted, tmp_path):
    # Re-running a finished run's command only re-reads the test split and re-exports.
    source_dir, expected = uninterrupted
    model_dir = tmp_path / "run"
    for name in ("checkpoints", "best", "export"):
        shutil.copytree(source_dir / name, model_dir / name)
    session = [[5, 17, 3, 0], [42, 0, 0, 0]]
    before = runs.serve(model_dir / "export", session)
    saved_model_pb = (model_dir / "export" / "saved_model.pb").read_bytes()

    def export_half_written():
        # Kill once the temp folder has content: the new SavedModel is being written.
        return any(any(path.iterdir()) for path in model_dir.glob(".export.*.tmp"))

    runs.kill_when(runs.command(data_dir, model_dir), export_half_written)

    assert (model_dir / "export" / "saved_model.pb").read_bytes() == saved_model_pb
    np.testing.assert_array_equal(runs.serve(model_dir / "export", session)[0], before[0])
    assert not (model_dir / "metrics.json").exists()

    completed = runs.run(runs.command(data_dir, model_dir))

    assert completed.returncode == 0, completed.stderr
    assert runs.leftovers(model_dir) == []  # the killed export's temp folder is cleaned up
    assert json.loads((model_dir / "metrics.json").read_text())["test"] == expected["test"]
    after = runs.serve(model_dir / "export", session)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_allclose(after[1], before[1], rtol=1e-6)


def _tiny_model():
    model = MTDModel(num_items=12, embedding_dim=4, max_len=3)
    model.build()
    return model


def _make_write_out_fail(monkeypatch):
    """`write_out` of Keras' export archive writes part of the SavedModel, then fails."""

    def write_out(archive, filepath, **kwargs):
        del archive, kwargs
        os.makedirs(os.path.join(filepath, "variables"), exist_ok=True)
        with open(os.path.join(filepath, "saved_model.pb"), "wb") as handle:
            handle.write(b"half a protobuf")
        raise OSError("disk full")

    # `ExportArchive()` returns an instance of a backend class that does not inherit from
    # `ExportArchive`: patch the class that is really used.
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", write_out)


def test_failed_export_leaves_no_export_and_no_temp_folder(tmp_path, monkeypatch):
    _make_write_out_fail(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        export.export_saved_model(_tiny_model(), str(tmp_path / "export"), top_k=5,
                                  item_popularity=np.arange(12))
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_failed_export_keeps_the_previous_export(tmp_path, monkeypatch):
    export_dir = tmp_path / "export"
    export.export_saved_model(_tiny_model(), str(export_dir), top_k=5,
                              item_popularity=np.arange(12))
    before = runs.serve(export_dir, [[1, 2, 3]])
    files_before = {path.relative_to(export_dir): path.read_bytes()
                    for path in export_dir.rglob("*") if path.is_file()}

    _make_write_out_fail(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        export.export_saved_model(_tiny_model(), str(export_dir), top_k=5,
                                  item_popularity=np.arange(12))

    assert [path.name for path in tmp_path.iterdir()] == ["export"]
    assert {path.relative_to(export_dir): path.read_bytes()
            for path in export_dir.rglob("*") if path.is_file()} == files_before
    np.testing.assert_array_equal(runs.serve(export_dir, [[1, 2, 3]])[0], before[0])


def test_export_removes_temp_folders_of_a_killed_export(tmp_path):
    (tmp_path / ".export.abc123.tmp" / "variables").mkdir(parents=True)
    (tmp_path / ".export.def456.old").mkdir()
    (tmp_path / ".exports.keep.tmp").mkdir()  # another name: not ours to delete
    export.export_saved_model(_tiny_model(), str(tmp_path / "export"), top_k=5,
                              item_popularity=np.arange(12))
    assert sorted(path.name for path in tmp_path.iterdir()) == [".exports.keep.tmp", "export"]


def test_folder_moved_aside_by_a_killed_write_is_put_back(tmp_path):
    # Killed between its two renames, a write leaves no `data/`, only the old one aside.
    (tmp_path / ".data.abc123.old").mkdir()
    (tmp_path / ".data.abc123.old" / "train.txt").write_text("1 2\n")
    (tmp_path / ".data.def456.tmp").mkdir()
    with pytest.raises(RuntimeError, match="killed"):
        with io_utils.atomic_output_dir(tmp_path / "data") as folder:
            pathlib.Path(folder, "train.txt").write_text("partial")
            raise RuntimeError("killed")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]
    assert (tmp_path / "data" / "train.txt").read_text() == "1 2\n"


# A NaN or Inf loss.


@pytest.mark.slow
def test_diverging_run_exits_with_one_clear_line(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    completed = runs.run(runs.command(data_dir, model_dir, "--lr=1e30"))
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and completed.stderr.rstrip().endswith(errors[0])
    assert errors[0].startswith("error: training diverged in epoch 1: ")
    assert "no checkpoint had been written yet. Try a lower --lr (now 1e+30)" in errors[0]
    assert not (model_dir / "metrics.json").exists()


def _config(data_dir, model_dir, **overrides):
    settings = dict(dataset="tiny", data_dir=str(data_dir), model_dir=str(model_dir), epochs=3,
                    graph_steps=5, batch_size=64, embedding_dim=16, seed=7,
                    max_train_batches=10)
    settings.update(overrides)
    return TrainConfig.from_settings(**settings)


def _values(variables):
    return [np.array(variable) for variable in variables]


@pytest.mark.slow
def test_nan_loss_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    trainer = loop.Trainer(_config(data_dir, model_dir))
    trainer.run_epoch(0)
    good = _values(trainer.model.variables)
    real_step = trainer.train_step

    def diverging_step(batch):
        result = dict(real_step(batch))  # the update is applied, as a real blow-up would be
        return dict(result, **{"loss/in": tf.constant(np.nan)})

    trainer.train_step = diverging_step
    with pytest.raises(TrainingDivergedError) as raised:
        with trainer.writer.as_default():
            trainer.run_epoch(1)
    checkpoint = os.path.join(model_dir, "checkpoints", "ckpt-1")
    assert str(raised.value) == (
        f"training diverged in epoch 2: loss/in is nan at step 11 (pass 1); the last good "
        f"checkpoint, {checkpoint} (epoch 1), is kept and a re-run resumes from it. Try a "
        f"lower --lr (now 0.001)")
    assert runs.checkpoint_numbers(model_dir / "checkpoints") == [1]

    # A fresh run of the same folder, with a lower learning rate, starts from epoch 1's end.
    resumed = loop.Trainer(_config(data_dir, model_dir, lr=1e-4))
    resumed.restore()
    assert int(resumed.state.epoch) == 1 and int(resumed.state.step) == 10
    for restored, expected in zip(_values(resumed.model.variables), good):
        np.testing.assert_array_equal(restored, expected)
    assert float(resumed.session_optimizer.learning_rate) == pytest.approx(1e-4)
    # The finished run reports the rate it resumed with; settings.json keeps the first.
    resumed.train()
    job.finish(resumed)
    assert json.loads((model_dir / "metrics.json").read_text())["flags"]["lr"] == 1e-4
    assert json.loads((model_dir / "settings.json").read_text())["lr"] == 1e-3


@pytest.mark.slow
def test_checkpoints_hold_every_variable_and_dropout_state(data_dir, tmp_path):
    # Keras 3 keeps list-held layers and dropout seed states out of TensorFlow's object
    # graph; the best checkpoint alone (no optimizer) must still restore all of them.
    trainer = loop.Trainer(_config(data_dir, tmp_path / "run", epochs=1))
    trainer.run_epoch(0)
    saved = _values(trainer.model.variables)
    seed_states = [v for v in trainer.model.variables if "seed_generator" in v.path]
    assert seed_states and any(np.array(v)[1] > 0 for v in seed_states)

    other = loop.Trainer(_config(data_dir, tmp_path / "other", epochs=1, seed=8))
    other.checkpoints.best_checkpoint.restore(
        trainer.checkpoints.best_manager.latest_checkpoint).assert_existing_objects_matched()
    for restored, expected in zip(_values(other.model.variables), saved):
        np.testing.assert_array_equal(restored, expected)
