"""Dataset names, defaults, data folder resolution and loading."""

import logging
import pickle

import pytest

from mtd_tf.data import formats
from mtd_tf.data import registry
from mtd_tf.data import synthetic
from mtd_tf.errors import DataError
from mtd_tf.errors import DatasetMissingError
from mtd_tf.errors import MTDError


def _write_pickle_pair(folder, train, prefixes, targets):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / formats.TRAIN_PICKLE).write_bytes(pickle.dumps(train, protocol=4))
    (folder / formats.TEST_PICKLE).write_bytes(pickle.dumps((prefixes, targets), protocol=4))


def test_alias_and_canonical_names():
    assert registry.canonical_name("yoochoose") == "yoochoose1_64"
    assert registry.canonical_name("yoochoose1_64") == "yoochoose1_64"
    assert registry.canonical_name("my_data") == "my_data"


@pytest.mark.parametrize("name", ["", ".", "..", "../etc", "a/b"])
def test_path_like_names_are_refused(name):
    with pytest.raises(MTDError, match="invalid dataset name"):
        registry.canonical_name(name)


def test_defaults_per_dataset():
    assert registry.defaults_for("yoochoose") == registry.DatasetDefaults(1, 1)
    assert registry.defaults_for("yoochoose1_64") == registry.DatasetDefaults(1, 1)
    assert registry.defaults_for("diginetica") == registry.DatasetDefaults(1, 4)
    assert registry.defaults_for("retailrocket") == registry.DatasetDefaults(2, 6)
    assert registry.defaults_for("synthetic") == registry.DatasetDefaults(1, 1)
    assert registry.defaults_for("anything") == registry.DatasetDefaults(1, 1)


def test_data_dir_flag_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("MTD_DATA_DIR", raising=False)
    assert registry.resolve_data_dir(None) == "data"
    monkeypatch.setenv("MTD_DATA_DIR", "/from/env")
    assert registry.resolve_data_dir(None) == "/from/env"
    assert registry.resolve_data_dir("/from/flag") == "/from/flag"


def test_loads_the_pickle_pair(tmp_path):
    _write_pickle_pair(tmp_path / "tiny", [[1, 2], [3, 1, 4]], [[1], [2, 3]], [2, 4])
    dataset = registry.load_dataset("tiny", tmp_path)
    assert dataset.name == "tiny"
    assert dataset.train.to_lists() == [[1, 2], [3, 1, 4]]
    assert dataset.test_prefixes.to_lists() == [[1], [2, 3]]
    assert dataset.test_targets.tolist() == [2, 4]
    assert dataset.num_items == 4  # the largest id in training


def test_text_files_are_preferred_over_the_pickles(tmp_path):
    folder = tmp_path / "tiny"
    _write_pickle_pair(folder, [[1, 2]], [[1]], [2])
    formats.write_text_split(folder, [[5, 6, 7]], [[5, 6]], [7])
    dataset = registry.load_dataset("tiny", tmp_path)
    assert dataset.train.to_lists() == [[5, 6, 7]]
    assert dataset.num_items == 7


def test_missing_dataset_names_the_download_command(tmp_path):
    with pytest.raises(DatasetMissingError) as raised:
        registry.load_dataset("diginetica", tmp_path)
    assert (f"python -m mtd_tf.data.download --dataset=diginetica --data_dir={tmp_path}"
            in str(raised.value))


def test_a_misspelt_name_gets_a_suggestion_not_a_download_command(tmp_path):
    (tmp_path / "my_clicks").mkdir()
    (tmp_path / "my_click.txt").write_text("a file is no dataset")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / formats.TRAIN_TEXT).write_text("1 2\n")
    for typo, suggestion in (("synthtic", "synthetic"), ("my_click", "my_clicks"),
                             ("digenetica", "diginetica"), ("digi", "diginetica"),
                             ("retail", "retailrocket")):
        with pytest.raises(DatasetMissingError, match=rf"Did you mean --dataset={suggestion}\? "
                                                      r"Make one with: python -m"):
            registry.load_dataset(typo, tmp_path)
    # A prefix of several names suggests none of them.
    with pytest.raises(DatasetMissingError, match=r"'yoo' not found: .*\. Make one with"):
        registry.load_dataset("yoo", tmp_path)
    # A folder is never suggested to itself.
    with pytest.raises(DatasetMissingError, match=r"\. Make one with: python -m mtd_tf.data."):
        registry.load_dataset("half", tmp_path)


def test_a_file_as_data_dir_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(MTDError, match=r"--data_dir .*afile exists and is not a folder"):
        registry.load_dataset("synthetic", tmp_path / "afile")


def test_half_a_text_split_counts_as_missing(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    formats.write_train_text(folder / formats.TRAIN_TEXT, [[1, 2]])
    with pytest.raises(DatasetMissingError, match=formats.TEST_TEXT):
        registry.load_dataset("tiny", tmp_path)


def test_no_training_sessions_is_an_error(tmp_path):
    folder = tmp_path / "tiny"
    _write_pickle_pair(folder, [], [[1]], [2])
    with pytest.raises(DataError, match="all_train_seq.txt: no training sessions"):
        registry.load_dataset("tiny", tmp_path)


def test_unknown_test_ids(tmp_path, caplog):
    # Training knows items 1..3. Pair 2 loses id 9 from its prefix; pair 3's prefix has
    # only unknown ids and is kept empty; pair 4's unknown target is kept (a sure miss).
    _write_pickle_pair(tmp_path / "tiny", [[1, 2, 3]],
                       [[1, 2], [9, 2], [7, 8], [3]], [3, 1, 2, 5])
    with caplog.at_level(logging.WARNING):
        dataset = registry.load_dataset("tiny", tmp_path)
    assert dataset.num_items == 3
    assert dataset.test_prefixes.to_lists() == [[1, 2], [2], [], [3]]
    assert dataset.test_targets.tolist() == [3, 1, 2, 5]
    warnings = " ".join(record.getMessage() for record in caplog.records)
    assert "dropped 3 test prefix ids" in warnings
    assert "from 2 prefixes; 1 prefixes became empty" in warnings
    assert "1 of 4 test targets are not training items" in warnings


def test_synthetic_is_generated_once_with_the_seed(tmp_path, monkeypatch):
    calls = []

    def write_tiny_synthetic(folder, seed=0, num_items=None, num_sessions=None):
        calls.append((seed, num_items, num_sessions))
        formats.write_text_split(folder, [[1, 2, 3]], [[1]], [2])

    monkeypatch.setattr(synthetic, "write_synthetic_dataset", write_tiny_synthetic)
    first = registry.load_dataset("synthetic", tmp_path, seed=7)
    second = registry.load_dataset("synthetic", tmp_path, seed=7)
    assert calls == [(7, 2000, 20000)]  # the default size
    assert first.name == second.name == "synthetic"
    assert second.train.to_lists() == [[1, 2, 3]]


def test_synthetic_reused_with_another_seed_says_so(tmp_path, caplog):
    registry.load_dataset("synthetic", tmp_path, seed=0)
    assert synthetic.recorded_seed(tmp_path / "synthetic") == 0
    with caplog.at_level(logging.WARNING):
        registry.load_dataset("synthetic", tmp_path, seed=0)
        assert not caplog.records
        registry.load_dataset("synthetic", tmp_path, seed=1)
    assert [record.getMessage() for record in caplog.records] == [
        f"{tmp_path / 'synthetic'} was generated with seed 0 and is reused: --seed=1 seeds "
        "only shuffling and initialisation (delete the folder to draw the data with seed 1)"]


def test_real_yoochoose_through_its_alias(shared_data_dir):
    dataset = registry.load_dataset("yoochoose", shared_data_dir)
    assert dataset.name == "yoochoose1_64"
    assert len(dataset.train) == 116_167
    assert len(dataset.test_targets) == len(dataset.test_prefixes) == 55_400
    assert dataset.num_items == 17_376


def test_a_sized_synthetic_name_draws_that_catalogue_into_its_own_folder(tmp_path):
    assert registry.synthetic_sizes("synthetic") == (2000, 20000)
    assert registry.synthetic_sizes("synthetic_m300_s500") == (300, 500)
    assert registry.synthetic_sizes("synthetic_m300") is None
    assert registry.is_named_dataset("synthetic_m300_s500")
    dataset = registry.load_dataset("synthetic_m300_s500", tmp_path, seed=1)
    assert dataset.name == "synthetic_m300_s500" and dataset.num_items <= 300
    assert len(dataset.train) == 450  # 90% of the sessions train
    assert (tmp_path / "synthetic_m300_s500" / "seed.txt").read_text() == "1\n"
    assert not (tmp_path / "synthetic").exists()
    with pytest.raises(MTDError, match="^dataset synthetic_m1_s500: need num_items >= 2"):
        registry.load_dataset("synthetic_m1_s500", tmp_path)
    assert not (tmp_path / "synthetic_m1_s500").exists()
