"""One writer per run folder: a second training process on the same folder exits with one
line naming the first; read-only commands keep working beside a running job."""

import os
import shutil

import pytest

from mtd_tf import folder_lock
from mtd_tf import job
from mtd_tf.data import registry
from mtd_tf.errors import DatasetMissingError
from mtd_tf.serving import evaluation
from mtd_tf.serving import export
from mtd_tf.training.config import TrainConfig
from tests.faults import runs


def test_a_second_process_on_a_folder_in_use_exits_with_one_line(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    with folder_lock.exclusive_lock(str(model_dir / job.RUN_LOCK_FILE)) as holder:
        assert holder is None  # this test process stands for the first run
        completed = runs.run(runs.command(data_dir, model_dir))
        # Read while the first run still holds the folder (its lock tidies it on release).
        assert sorted(os.listdir(model_dir)) == [job.RUN_LOCK_FILE]  # it wrote nothing

    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {model_dir} is in use by another training process (pid "
                      f"{os.getpid()}): wait for it to finish, or use another --model_dir"]


def test_the_lock_is_free_again_when_its_holder_ends(tmp_path):
    path = str(tmp_path / "run" / job.RUN_LOCK_FILE)
    with folder_lock.exclusive_lock(path) as holder:
        assert holder is None
    with folder_lock.exclusive_lock(path) as holder:
        assert holder is None


def test_evaluate_reads_an_export_while_a_run_holds_its_folder(data_dir, uninterrupted,
                                                             tmp_path):
    source_dir, expected = uninterrupted
    model_dir = tmp_path / "run"
    shutil.copytree(source_dir / "export", model_dir / "export")
    dataset = registry.load_dataset("tiny", str(data_dir))
    with folder_lock.exclusive_lock(str(model_dir / job.RUN_LOCK_FILE)) as holder:
        assert holder is None
        served = evaluation.evaluate_export(export.load_export(str(model_dir / "export")),
                                            dataset, batch_size=256)["test"]
    assert served["P@20"] == expected["test"]["P@20"]  # the export serves what was tested


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    settings = dict(runs.TRAINING_SETTINGS, dataset="nosuch", data_dir=str(tmp_path / "data"))
    new_dir = tmp_path / "runs" / "nosuch_mtd"
    with pytest.raises(DatasetMissingError):
        job.train_and_evaluate(TrainConfig.from_settings(**settings, model_dir=str(new_dir)))
    assert not new_dir.exists()

    existing_dir = tmp_path / "mine"  # a folder the user made is theirs to keep
    existing_dir.mkdir()
    with pytest.raises(DatasetMissingError):
        job.train_and_evaluate(TrainConfig.from_settings(**settings,
                                                         model_dir=str(existing_dir)))
    assert existing_dir.is_dir()
