"""items.tsv: the raw id of each internal id, written and read back, refused when wrong."""

import numpy as np
import pytest

from mtd_tf.data import item_catalog
from mtd_tf.data import registry
from mtd_tf.errors import DataError
from tests import helpers

RAW = ["sku-17", "7", "Ünïcode ok", "07"]  # "7" and "07" are different raw ids


def test_round_trip_and_absent_file(tmp_path):
    assert item_catalog.read_raw_item_ids(tmp_path, 4) is None
    item_catalog.write_raw_item_ids(tmp_path, RAW)
    assert (tmp_path / "items.tsv").read_text(encoding="utf-8").splitlines()[:2] == [
        "item_id\traw_item_id", "1\tsku-17"]
    assert item_catalog.read_raw_item_ids(tmp_path, 4).tolist() == RAW
    # Training may use fewer ids than listed (M = the largest id in training).
    assert item_catalog.read_raw_item_ids(tmp_path, 3).tolist() == RAW[:3]


@pytest.mark.parametrize("text, line, problem", [
    ("id\traw\n1\ta\n", 1, "the first line must be the header"),
    ("item_id\traw_item_id\n1\ta\n3\tb\n", 3, "expected '2<TAB>raw id', got '3"),
    ("item_id\traw_item_id\n1\ta\n2 b\n", 3, "expected '2<TAB>raw id'"),
    ("item_id\traw_item_id\n1\ta\n2\t\n", 3, "raw id '' is empty"),
    ("item_id\traw_item_id\n1\ta\n2\t b\n", 3, "surrounding spaces"),
    ("item_id\traw_item_id\n1\ta\n2\tb\n3\ta\n", 4, "raw id 'a' repeats line 2"),
])
def test_a_bad_file_is_one_error_naming_file_and_line(tmp_path, text, line, problem):
    (tmp_path / "items.tsv").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=f"^{tmp_path / 'items.tsv'}: record {line}: .*"
                                        f"{problem.replace('(', '.').replace(')', '.')}"):
        item_catalog.read_raw_item_ids(tmp_path, 2)


def test_too_few_items_is_an_error(tmp_path):
    item_catalog.write_raw_item_ids(tmp_path, ["a", "b"])
    with pytest.raises(DataError, match="2 items listed, but training uses ids up to 3"):
        item_catalog.read_raw_item_ids(tmp_path, 3)


def test_a_dataset_folder_brings_its_raw_ids(tmp_path):
    data_dir = helpers.write_tiny_dataset(tmp_path)
    assert registry.load_dataset(helpers.TINY, data_dir).raw_item_ids is None
    raw = np.array([f"p{index:03d}" for index in range(1, helpers.TINY_NUM_ITEMS + 1)])
    item_catalog.write_raw_item_ids(tmp_path / helpers.TINY, raw)
    loaded = registry.load_dataset(helpers.TINY, data_dir)
    assert loaded.raw_item_ids.tolist() == raw[:loaded.num_items].tolist()
