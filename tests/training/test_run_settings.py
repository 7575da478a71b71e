"""A run directory keeps the settings it was started with; a resume may change only a few."""

import json
import logging
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.data.augment import Samples
from mtd_tf.errors import ConfigError
from mtd_tf.training import run_settings
from mtd_tf.training.config import TrainConfig


def _config(tmp_path, **overrides):
    return TrainConfig.from_settings(model_dir=str(tmp_path / "run"), **overrides)


def _save_checkpoint(tmp_path, folder="checkpoints"):
    """Gives the run directory something to resume, as an epoch or mid-epoch save would."""
    checkpoint = tf.train.Checkpoint(step=tf.Variable(1))
    tf.train.CheckpointManager(checkpoint, str(tmp_path / "run" / folder), 1).save()


def _start(tmp_path, folder="checkpoints", **overrides):
    run_settings.check_or_record(_config(tmp_path, **overrides), frequency=1)
    _save_checkpoint(tmp_path, folder)


def test_first_start_records_the_settings_with_the_resolved_frequency(tmp_path):
    config = _config(tmp_path, embedding_dim=32)
    run_settings.check_or_record(config, frequency=4)
    with open(tmp_path / "run" / run_settings.SETTINGS_FILE) as handle:
        recorded = json.load(handle)
    assert recorded == dict(config.to_dict(), frequency=4)
    _save_checkpoint(tmp_path)
    run_settings.check_or_record(config, frequency=4)  # the same settings resume


@pytest.mark.parametrize("folder", ["checkpoints", "mid_epoch"])
def test_a_changed_setting_is_refused_naming_old_and_new(tmp_path, folder):
    _start(tmp_path, folder, embedding_dim=100)
    with pytest.raises(ConfigError, match=r"run holds a run started with dropout=0.2, "
                                          r"embedding_dim=100, not dropout=0.5, "
                                          r"embedding_dim=32: use another --model_dir"):
        run_settings.check_or_record(_config(tmp_path, embedding_dim=32, dropout=0.5),
                                     frequency=1)
    with pytest.raises(ConfigError, match=r"frequency=1, not frequency=2"):
        run_settings.check_or_record(_config(tmp_path), frequency=2)


def test_a_start_that_saved_nothing_pins_nothing(tmp_path):
    run_settings.check_or_record(_config(tmp_path, batch_size=512), frequency=1)
    run_settings.check_or_record(_config(tmp_path, batch_size=64), frequency=1)  # the retry
    _save_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match=r"batch_size=64, not batch_size=512"):
        run_settings.check_or_record(_config(tmp_path, batch_size=512), frequency=1)


def test_a_resume_may_change_paths_lr_epochs_patience_top_k_and_strategy(tmp_path):
    _start(tmp_path)
    changed = _config(tmp_path, data_dir="elsewhere", lr=1e-4, epochs=20, patience=5,
                      export_top_k=50, strategy="mirrored", peer_timeout=10.0)
    run_settings.check_or_record(changed, frequency=1)
    assert set(run_settings.MAY_CHANGE_ON_RESUME) == {
        "data_dir", "model_dir", "lr", "epochs", "patience", "export_top_k", "strategy",
        "peer_timeout"}


def test_a_setting_missing_from_an_older_record_counts_as_its_default(tmp_path):
    _start(tmp_path)
    path = tmp_path / "run" / run_settings.SETTINGS_FILE
    recorded = json.loads(path.read_text())
    del recorded["score_scale"]
    path.write_text(json.dumps(recorded))
    run_settings.check_or_record(_config(tmp_path), frequency=1)
    with pytest.raises(ConfigError, match=r"score_scale=0.0, not score_scale=16.0"):
        run_settings.check_or_record(_config(tmp_path, score_scale=16.0), frequency=1)


def test_a_run_from_before_settings_json_is_checked_against_its_metrics(tmp_path, caplog):
    config = _config(tmp_path, dropout=0.3)
    os.makedirs(config.trainer.model_dir)
    metrics = tmp_path / "run" / "metrics.json"
    metrics.write_text(json.dumps({"flags": dict(config.to_dict(), frequency=1)}))
    run_settings.check_or_record(config, frequency=1)
    with pytest.raises(ConfigError, match=r"dropout=0.3, not dropout=0.2"):
        run_settings.check_or_record(_config(tmp_path), frequency=1)
    # Without flags to check against, the start says so and records itself.
    metrics.write_text("{}")
    with caplog.at_level(logging.WARNING):
        run_settings.check_or_record(_config(tmp_path), frequency=1)
    assert "started before runs recorded their settings" in caplog.text
    assert json.loads((tmp_path / "run" / run_settings.SETTINGS_FILE).read_text())[
        "dropout"] == 0.2


def test_unusable_model_dir_or_record_is_one_config_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"--model_dir .*afile exists and is not a folder"):
        run_settings.check_or_record(TrainConfig.from_settings(model_dir=str(tmp_path / "afile")), 1)
    _start(tmp_path)
    for text in ("{not json", "[1, 2]", "\udcff"):
        (tmp_path / "run" / run_settings.SETTINGS_FILE).write_text(text, errors="surrogateescape")
        with pytest.raises(ConfigError, match=r"settings.json: unreadable"):
            run_settings.check_or_record(_config(tmp_path), frequency=1)


def _inputs(targets_per_split, num_items=9):
    """Stand-in `TrainingInputs`: the fingerprint reads only num_items and the samples."""
    def samples(targets):
        targets = np.asarray(targets, np.int32)
        return Samples(item_ids=np.ones((len(targets), 3), np.int32),
                       lengths=np.full(len(targets), 2, np.int32), targets=targets)
    train, valid, test = map(samples, targets_per_split)
    return types.SimpleNamespace(num_items=num_items, train=train, valid=valid, test=test)


def test_the_data_fingerprint_changes_with_any_target_or_length():
    base = run_settings.data_fingerprint(_inputs([[1, 2, 3], [4], [5, 6]]))
    assert base["num_items"] == 9 and base["samples"] == [3, 1, 2]
    assert run_settings.data_fingerprint(_inputs([[1, 2, 3], [4], [5, 6]])) == base
    moved = _inputs([[1, 2, 3], [4], [5, 6]])
    moved.test.lengths[0] = 1
    others = [run_settings.data_fingerprint(_inputs([[1, 2, 4], [4], [5, 6]])),
              run_settings.data_fingerprint(moved),
              # The same targets cut at another split boundary are other data too.
              run_settings.data_fingerprint(_inputs([[1, 2], [3, 4], [5, 6]]))]
    assert len({fingerprint["sha256"] for fingerprint in others + [base]}) == 4


def test_a_resume_on_other_data_is_refused_naming_both(tmp_path):
    data = run_settings.data_fingerprint(_inputs([[1, 2, 3], [4], [5, 6]]))
    run_settings.check_or_record(_config(tmp_path), frequency=1, data=data)
    _save_checkpoint(tmp_path)
    # Moved data (another --data_dir, the same samples) resume.
    run_settings.check_or_record(_config(tmp_path, data_dir="moved"), frequency=1, data=data)
    bigger = run_settings.data_fingerprint(_inputs([[1, 2, 3, 7], [4], [5, 6]], num_items=10))
    with pytest.raises(ConfigError, match=(
            r"run holds a run started on other data than --dataset=synthetic in moved gives "
            r"now \(9 items, 3 / 1 / 2 train / valid / test samples; now 10 items, 4 / 1 / 2 "
            r"train / valid / test samples\): use another --model_dir, or the data it was "
            r"trained on")):
        run_settings.check_or_record(_config(tmp_path, data_dir="moved"), frequency=1,
                                     data=bigger)
    reshuffled = run_settings.data_fingerprint(_inputs([[3, 2, 1], [4], [5, 6]]))
    with pytest.raises(ConfigError, match=r"\(9 items, 3 / 1 / 2 train / valid / test "
                                          r"samples; now as many, but other sessions\)"):
        run_settings.check_or_record(_config(tmp_path), frequency=1, data=reshuffled)


def test_a_record_without_data_does_not_check_them(tmp_path):
    _start(tmp_path)  # a settings.json from before data were recorded
    other = run_settings.data_fingerprint(_inputs([[1], [2], [3]]))
    run_settings.check_or_record(_config(tmp_path), frequency=1, data=other)
