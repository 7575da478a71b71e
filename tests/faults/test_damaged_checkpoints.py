"""A damaged checkpoint (truncated data file, corrupt index, missing shard) is reported in
one warning line and the next older one is used; when none is usable the run stops with
one error line naming the damaged files, exit status 2 and no traceback."""

import json
import logging
import shutil

import pytest
import tensorflow as tf

from mtd_tf import job
from mtd_tf.errors import MTDError
from mtd_tf.training import checkpoints
from mtd_tf.training import loop
from tests import helpers
from tests.faults import runs


def _data_file(prefix):
    return prefix.parent / f"{prefix.name}.data-00000-of-00001"


def _truncate(prefix):
    data = _data_file(prefix)
    data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])


def _corrupt_index(prefix):
    (prefix.parent / f"{prefix.name}.index").write_bytes(b"not a checkpoint index" * 10)


def _remove_shard(prefix):
    _data_file(prefix).unlink()


DAMAGES = {"truncated data file": _truncate, "corrupt index": _corrupt_index,
           "missing shard": _remove_shard}


@pytest.fixture(name="two_checkpoints")
def fixture_two_checkpoints(tmp_path):
    """Prefixes of two small checkpoints (oldest first), as a manager lists them."""
    variable = tf.Variable(tf.range(1000, dtype=tf.float32))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable), str(tmp_path),
                                         max_to_keep=2)
    return [tmp_path / path.rsplit("/", 1)[1]
            for path in (manager.save(checkpoint_number=1), manager.save(checkpoint_number=2))]


@pytest.mark.parametrize("damage", DAMAGES)
def test_each_damage_is_found_and_the_older_checkpoint_chosen(two_checkpoints, damage):
    older, newer = two_checkpoints
    assert checkpoints.damage(str(newer)) is None
    DAMAGES[damage](newer)
    assert checkpoints.damage(str(newer))  # a few words on why
    path, damaged = checkpoints.newest_readable([str(older), str(newer)])
    assert path == str(older) and len(damaged) == 1 and damaged[0].startswith(str(newer))


def _unreported_copy(source_dir, model_dir):
    """The uninterrupted run's folder without its report and export: a re-run restores
    its newest epoch checkpoint (epoch 3, finished), tests and exports."""
    for name in ("checkpoints", "best"):
        shutil.copytree(source_dir / name, model_dir / name)
    for name in ("settings.json", "timing.json"):
        shutil.copy(source_dir / name, model_dir / name)


@pytest.mark.slow
def test_a_truncated_newest_checkpoint_falls_back_and_loses_nothing(
        data_dir, uninterrupted, tmp_path, caplog):
    source_dir, expected = uninterrupted
    model_dir = tmp_path / "run"
    _unreported_copy(source_dir, model_dir)
    _truncate(model_dir / "checkpoints" / "ckpt-3")
    caplog.set_level(logging.INFO)
    # Also on absl's own logger: a test that parsed absl flags earlier in the process
    # leaves it at WARNING, which would drop the "resumed ... after epoch" line.
    caplog.set_level(logging.INFO, logger="absl")

    resumed = runs.train_in_process(data_dir, model_dir)

    warnings = [record.getMessage() for record in caplog.records
                if "is damaged" in record.getMessage()]
    assert len(warnings) == 1 and "ckpt-3" in warnings[0], warnings
    assert any("after epoch 2" in record.getMessage()  # epoch 3 again, from ckpt-2
               for record in caplog.records)
    runs.assert_same_report(resumed, expected)
    assert json.loads((model_dir / "metrics.json").read_text()) == json.loads(
        json.dumps(resumed))


def test_no_usable_checkpoint_is_one_error(data_dir, uninterrupted, tmp_path):
    # One `error:` line and exit 2 for any MTDError: tests/test_cli.py.
    model_dir = tmp_path / "run"
    _unreported_copy(uninterrupted[0], model_dir)
    _truncate(model_dir / "checkpoints" / "ckpt-3")
    _corrupt_index(model_dir / "checkpoints" / "ckpt-2")

    with pytest.raises(MTDError) as raised:
        runs.train_in_process(data_dir, model_dir)

    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{model_dir}: no checkpoint can be read")
    assert "ckpt-2" in message and "ckpt-3" in message and f"Delete {model_dir}" in message


def test_a_damaged_best_checkpoint_is_one_error_before_testing(data_dir, uninterrupted,
                                                               tmp_path):
    source_dir, expected = uninterrupted
    model_dir = tmp_path / "run"
    _unreported_copy(source_dir, model_dir)
    best = model_dir / "best" / f"ckpt-{expected['best_epoch']}"
    earlier = [number for number in runs.checkpoint_numbers(model_dir / "best")
               if number < expected["best_epoch"]]
    for number in earlier:  # no earlier best to fall back on
        _remove_shard(model_dir / "best" / f"ckpt-{number}")
    _truncate(best)

    with pytest.raises(MTDError, match="no best checkpoint can be read"):
        runs.train_in_process(data_dir, model_dir)
    assert not (model_dir / "metrics.json").exists()


def test_a_damaged_best_checkpoint_falls_back_to_the_previous_best(tmp_path, monkeypatch):
    data_dir = helpers.write_tiny_dataset(tmp_path / "data")
    trainer = loop.Trainer(helpers.tiny_config(data_dir, tmp_path / "run", max_train_batches=1))
    valid_p20 = iter([10.0, 20.0])  # epoch 2 improves: best/ keeps epochs 1 and 2
    with monkeypatch.context() as patch:
        patch.setattr(loop.Trainer, "evaluate", lambda self, samples, description: {
            "P@20": next(valid_p20), "MRR@20": 1.0})
        trainer.train()
    assert int(trainer.state.best_epoch) == 2
    assert runs.checkpoint_numbers(tmp_path / "run" / "best") == [1, 2]
    epoch_1 = tf.train.load_checkpoint(str(tmp_path / "run" / "best" / "ckpt-1")).get_tensor(
        "model/item_embeddings/.ATTRIBUTES/VARIABLE_VALUE")
    _truncate(tmp_path / "run" / "best" / "ckpt-2")

    report = job.final_report(trainer)

    assert report["best_epoch"] == 1
    assert (trainer.model.item_embeddings.numpy() == epoch_1).all()
