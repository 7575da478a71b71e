"""dataset.json: a prepared folder records its settings, and training, statistics and the
baselines read them from it, whatever the folder's name; the published datasets' defaults
stay as they are where no such file exists."""

import datetime
import json
import os

import pytest

from mtd_tf.baselines import methods
from mtd_tf.baselines import tuning
from mtd_tf.data import augment
from mtd_tf.data import dataset_info
from mtd_tf.data import item_catalog
from mtd_tf.data import prepare
from mtd_tf.data import registry
from mtd_tf.errors import DataError
from mtd_tf.training import inputs
from tests import helpers
from tests.data import click_logs

DatasetDefaults = registry.DatasetDefaults


@pytest.fixture(name="shop")
def fixture_shop(tmp_path):
    """(data_dir, the dict prepare wrote): a clicks log prepared into data_dir/my_shop with
    f = 3 and a shortest prefix of 2."""
    raw = click_logs.write_clicks(tmp_path / "clicks.csv",
                                  click_logs.random_clicks(0, in_order=False))
    data_dir = tmp_path / "data"
    info = prepare.prepare("clicks", raw, str(data_dir / "my_shop"), frequency=3, test_days=1,
                           min_prefix_len=2)
    return data_dir, info


def test_the_folder_records_its_settings(shop):
    data_dir, info = shop
    assert dataset_info.read_dataset_info(data_dir / "my_shop") == info
    written = json.loads((data_dir / "my_shop" / dataset_info.DATASET_FILE).read_text())
    assert written == info
    assert (info["min_prefix_len"], info["frequency"]) == (2, 3)
    created = datetime.datetime.fromisoformat(info["created"])
    assert created.utcoffset() == datetime.timedelta(0)
    assert abs(datetime.datetime.now(datetime.timezone.utc) - created).total_seconds() < 600
    assert info["source"] == {
        "file": str(data_dir.parent / "clicks.csv"), "format": "clicks", "file_type": "csv",
        "session_column": "session_id", "time_column": "timestamp", "item_column": "item_id",
        "time_format": "iso"}
    assert info["protocol"] == {"name": prepare.PROTOCOL_NAME, "test_days": 1,
                                "min_session_length": 2, "min_item_count": 5,
                                "min_prefix_len": 2, "fraction": 1}
    loaded = registry.load_dataset("my_shop", data_dir)
    counts = info["counts"]
    assert (counts["train_sessions"], counts["test_samples"], counts["items"]) == (
        len(loaded.train), len(loaded.test_targets), loaded.num_items)
    assert counts["train_samples"] == augment.count_samples(loaded.train, 2)
    assert counts["test_sessions"] > 0 and counts["sessions_read"] == 300


def test_training_statistics_and_baselines_read_it(shop, tmp_path, monkeypatch):
    data_dir, _ = shop
    assert registry.defaults_for("my_shop", data_dir) == DatasetDefaults(2, 3)
    assert registry.defaults_for("my_shop") == DatasetDefaults(1, 1)  # no folder to read
    loaded = registry.load_dataset("my_shop", data_dir)
    assert loaded.defaults == registry.dataset_defaults(loaded) == DatasetDefaults(2, 3)

    config = helpers.tiny_config(data_dir, tmp_path / "run", dataset="my_shop", frequency=None)
    built = inputs.build_inputs(config)
    assert built.frequency == 3
    assert len(built.train) + len(built.valid) == augment.count_samples(loaded.train, 2)

    result = helpers.run_python(["-m", "mtd_tf.data.stats", "--dataset=my_shop",
                                 f"--data_dir={data_dir}"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["train_samples"] == augment.count_samples(loaded.train, 2)

    seen = []

    def record_prefix_length(method_class, train, num_items, min_prefix_len, **kwargs):
        seen.append(min_prefix_len)
        raise RuntimeError("stop after tuning's arguments")

    monkeypatch.setattr(tuning, "tune", record_prefix_length)
    with pytest.raises(RuntimeError, match="stop after"):
        methods.tune_and_evaluate("sr", loaded)
    assert seen == [2]


def test_published_defaults_stay_without_the_file(tmp_path):
    data_dir = helpers.write_tiny_dataset(tmp_path, name="diginetica")
    assert registry.load_dataset("diginetica", data_dir).defaults == DatasetDefaults(1, 4)
    assert registry.defaults_for("retailrocket", data_dir) == DatasetDefaults(2, 6)
    # A recorded file wins over the name.
    dataset_info.write_dataset_info(tmp_path / "diginetica", DatasetDefaults(2, 5), {}, {}, {})
    assert registry.load_dataset("diginetica", data_dir).defaults == DatasetDefaults(2, 5)


@pytest.mark.parametrize("text,problem", [
    ('{"min_prefix_len": 1,\n "frequency": }', r"record 2: not valid JSON: Expecting value"),
    ("[1, 2]", "expected a JSON object, found list"),
    ('{"min_prefix_len": 1, "frequency": 0}', "frequency must be a positive integer, found 0"),
    ('{"frequency": 2}', "min_prefix_len must be a positive integer, found None"),
    ('{"min_prefix_len": true, "frequency": 2}', "min_prefix_len must be a positive integer"),
])
def test_a_malformed_file_is_one_error_naming_it(tmp_path, text, problem):
    data_dir = helpers.write_tiny_dataset(tmp_path, name="mine")
    path = tmp_path / "mine" / dataset_info.DATASET_FILE
    path.write_text(text)
    with pytest.raises(DataError, match=f"^{path}: {problem}"):
        registry.load_dataset("mine", data_dir)


def test_cli_duplicate_raw_ids_in_items_tsv_are_one_error_line(shop):
    data_dir, _ = shop
    items_path = data_dir / "my_shop" / item_catalog.ITEMS_FILE
    lines = items_path.read_text().splitlines()
    raw_of_first = lines[1].split("\t")[1]
    lines[3] = f"3\t{raw_of_first}"
    items_path.write_text("\n".join(lines) + "\n")
    result = helpers.run_python(["-m", "mtd_tf.data.stats", "--dataset=my_shop",
                                 f"--data_dir={data_dir}"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {items_path}: record 4: raw id {raw_of_first!r} repeats line 2"]
    assert result.stdout == ""
    assert os.listdir(data_dir) == ["my_shop"]
