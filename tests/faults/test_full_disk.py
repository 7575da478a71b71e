"""A full disk: a write that fails for lack of space stops the run with one line naming the
path, leaves the previous checkpoint, export and metrics intact, and the same command
resumes once space is free. A file-size limit on the process stands in for the full disk
(writes past it fail with EFBIG, as they fail with ENOSPC on a full one)."""

import errno
import os
import resource
import signal

import pytest
import tensorflow as tf

from mtd_tf import io_utils
from mtd_tf.errors import WriteFailedError
from mtd_tf.training import checkpoints
from tests.faults import runs

FILE_SIZE_LIMIT = 16 << 10  # bytes: above settings.json, below a checkpoint's data file


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_an_atomic_write_without_space_is_one_error_and_keeps_the_old_file(tmp_path,
                                                                           monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text("previous")

    def no_space(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io_utils.os, "fsync", no_space)
    with pytest.raises(WriteFailedError) as raised:
        io_utils.atomic_write_text(path, "new")
    assert str(raised.value).startswith(f"{path}: cannot write (No space left on device)")
    assert "run the same command again to resume" in str(raised.value)
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["metrics.json"]


def test_other_write_errors_keep_their_own_type(tmp_path):
    with pytest.raises(PermissionError):
        with io_utils.no_space_reported(tmp_path):
            raise PermissionError(errno.EACCES, "Permission denied")


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_stops_the_run_and_the_same_command_resumes(
        data_dir, uninterrupted, copy_after_epoch_1):
    model_dir = copy_after_epoch_1
    command = runs.command(data_dir, model_dir)

    limited = runs.run(command, preexec_fn=_limit_file_size)

    assert limited.returncode == 2 and "Traceback" not in limited.stderr
    errors = [line for line in limited.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, limited.stderr
    assert errors[0].startswith(f"error: {model_dir}") and "(File too large)" in errors[0]
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert latest.endswith("ckpt-1") and checkpoints.damage(latest) is None
    assert not (model_dir / "metrics.json").exists()

    runs.assert_same_report(runs.train_in_process(data_dir, model_dir), uninterrupted[1])
