"""Runs of `mtd_tf/main.py` as a user starts them, for the fault tests: a 150-item synthetic
split, 3 epochs of 85 batches (seconds), and ways to kill or signal a run at a chosen
moment."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import tensorflow as tf

from mtd_tf.serving import export
from mtd_tf.training.config import TrainConfig
from tests import helpers
from tests.conftest import REPO_ROOT

TRAINING_SETTINGS = dict(dataset="tiny", epochs=3, graph_steps=5, batch_size=64,
                         embedding_dim=16, seed=7)
TRAINING_FLAGS = [f"--{name}={value}" for name, value in TRAINING_SETTINGS.items()]
POLL_SECONDS = 0.01


def train_in_process(data_dir, model_dir):
    """The job of `command(data_dir, model_dir)`, run in this process: for the faults
    whose proof needs no second process (a fresh one costs seconds of imports)."""
    return helpers.train_and_evaluate(TrainConfig.from_settings(
        **TRAINING_SETTINGS, data_dir=str(data_dir), model_dir=str(model_dir)))


def command(data_dir, model_dir, *extra):
    return [sys.executable, "mtd_tf/main.py", *TRAINING_FLAGS, f"--data_dir={data_dir}",
            f"--model_dir={model_dir}", *extra]


def environment():
    return {key: value for key, value in os.environ.items() if key != "MTD_DATA_DIR"}


def run(arguments, preexec_fn=None):
    """Runs `arguments` to its end; the CompletedProcess (text)."""
    return subprocess.run(arguments, cwd=REPO_ROOT, env=environment(), capture_output=True,
                          text=True, timeout=300, check=False, preexec_fn=preexec_fn)


def signal_when(arguments, ready, signum=signal.SIGKILL, timeout=240):
    """Starts `arguments`, polls `ready()`, then sends `signum`; fails if the run ends by
    itself first. Returns the CompletedProcess-like (returncode, stderr) once it ended."""
    process = subprocess.Popen(arguments, cwd=REPO_ROOT, env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None, "the run ended before it could be signalled"
            assert time.monotonic() < deadline, "timed out waiting for the moment to signal"
            time.sleep(POLL_SECONDS)
        os.kill(process.pid, signum)
        _, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def kill_when(arguments, ready, timeout=240):
    """Starts `arguments`, polls `ready()`, then SIGKILLs it; fails if it ends by itself."""
    returncode, _ = signal_when(arguments, ready, timeout=timeout)
    assert returncode == -signal.SIGKILL


def kill_after_epoch_1(arguments, model_dir):
    """Kills the run of `arguments` once epoch 1 is saved: the manager writes its index
    (`checkpoint`) last; epoch 2 then takes about a second."""
    kill_when(arguments, lambda: (model_dir / "checkpoints" / "checkpoint").exists())
    assert checkpoint_numbers(model_dir / "checkpoints") == [1], "killed outside epoch 2"


def checkpoint_numbers(folder):
    return sorted(int(path.name[len("ckpt-"):-len(".index")])
                  for path in pathlib.Path(folder).glob("ckpt-*.index"))


def leftovers(model_dir):
    """Temp folders of an export (`.export.*.tmp` / `.old`) beside `export/`."""
    return sorted(path.name for path in pathlib.Path(model_dir).glob(".export.*"))


def serve(export_dir, item_ids):
    signature = tf.saved_model.load(str(export_dir)).signatures[export.SIGNATURE_KEY]
    outputs = signature(item_ids=tf.constant(item_ids, tf.int64))
    return outputs["top_items"].numpy(), outputs["scores"].numpy()


def assert_same_report(resumed, expected):
    """What an interrupted run must reproduce of an uninterrupted one's metrics.json."""
    for key in ("test", "valid", "epochs_run", "best_epoch", "dataset", "variant"):
        assert resumed[key] == expected[key], key
