"""The fault tests' shared runs: the tiny dataset and the 3-epoch run nobody interrupted,
built once for the whole folder."""

import json
import shutil

import pytest

from mtd_tf.data import formats
from mtd_tf.data import synthetic
from tests.faults import runs


@pytest.fixture(name="data_dir", scope="session")
def fixture_data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    train, prefixes, targets = synthetic.generate_synthetic_split(
        seed=0, num_items=150, num_sessions=1500)
    formats.write_text_split(data_dir / "tiny", train, prefixes, targets)
    return data_dir


@pytest.fixture(name="uninterrupted", scope="session")
def fixture_uninterrupted(data_dir, tmp_path_factory):
    """(model_dir, metrics.json) of the 3-epoch run nobody interrupted."""
    model_dir = tmp_path_factory.mktemp("uninterrupted")
    completed = runs.run(runs.command(data_dir, model_dir))
    assert completed.returncode == 0, completed.stderr
    return model_dir, json.loads((model_dir / "metrics.json").read_text())


@pytest.fixture(name="after_epoch_1", scope="session")
def fixture_after_epoch_1(data_dir, tmp_path_factory):
    """A run folder killed (SIGKILL) in epoch 2: its checkpoint of epoch 1 is all it has.
    Tests take copies (`copy_after_epoch_1`)."""
    model_dir = tmp_path_factory.mktemp("killed") / "run"
    runs.kill_after_epoch_1(runs.command(data_dir, model_dir), model_dir)
    return model_dir


@pytest.fixture(name="copy_after_epoch_1")
def fixture_copy_after_epoch_1(after_epoch_1, tmp_path):
    """This test's own copy of `after_epoch_1`."""
    model_dir = tmp_path / "run"
    shutil.copytree(after_epoch_1, model_dir)
    return model_dir
