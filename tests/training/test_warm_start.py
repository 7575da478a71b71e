"""--warm_start_from: a run on tomorrow's data starts from today's best weights, items
matched by raw id; known items keep their vectors, and it gets ahead of a cold start."""

import json

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.data import formats
from mtd_tf.data import item_catalog
from mtd_tf.data import synthetic
from mtd_tf.data.sessions import Sessions
from mtd_tf.errors import ConfigError
from mtd_tf.training import loop
from tests import helpers

NUM_ITEMS, NUM_SESSIONS = 120, 1600
# The write-back Table 2 chose: the paper's (replace) overwrites the warm item table with
# the encoder's output at the first graph phase, which on this split lost the head start.
GRAPH = dict(graph_writeback="rescale", graph_mix=0.2, max_train_batches=None)


def write_day(data_dir, name, sessions, test_prefixes, test_targets, raw_of):
    """A dataset folder whose internal ids are renumbered by first appearance, with items.tsv
    giving each one's raw id `raw_of[original id]`."""
    order = {}
    for session in sessions:
        for item in session:
            order.setdefault(item, len(order) + 1)
    renumber = lambda rows: [[order[item] for item in row if item in order] for row in rows]
    kept = [index for index, prefix in enumerate(renumber(test_prefixes))
            if prefix and test_targets[index] in order]
    formats.write_text_split(
        data_dir / name, Sessions.from_lists(renumber(sessions)),
        Sessions.from_lists([renumber(test_prefixes)[index] for index in kept]),
        np.array([order[test_targets[index]] for index in kept], np.int32))
    raw = [None] * len(order)
    for item, internal in order.items():
        raw[internal - 1] = raw_of[item]
    item_catalog.write_raw_item_ids(data_dir / name, raw)


@pytest.fixture(scope="module", name="days")
def fixture_days(tmp_path_factory):
    """Day 1: the first half of a synthetic log by time. Day 2: the second half, whose
    items 1-10 are gone (their clicks removed) and where 10 new items appear."""
    data_dir = tmp_path_factory.mktemp("days")
    train, test_prefixes, test_targets = synthetic.generate_synthetic_split(
        seed=0, num_items=NUM_ITEMS, num_sessions=NUM_SESSIONS)
    sessions = train.to_lists()
    half = len(sessions) // 2
    raw_of = {item: f"sku-{item}" for item in range(1, NUM_ITEMS + 1)}
    raw_of.update({item: f"new-{item}" for item in range(NUM_ITEMS + 1, NUM_ITEMS + 11)})
    rng = np.random.default_rng(0)
    day2 = [[item for item in session if item > 10] for session in sessions[half:]]
    day2 = [session for session in day2 if len(session) >= 2]
    day2 += [rng.integers(NUM_ITEMS + 1, NUM_ITEMS + 11, size=3).tolist() for _ in range(30)]
    write_day(data_dir, "day1", sessions[:half], test_prefixes.to_lists(), test_targets, raw_of)
    write_day(data_dir, "day2", day2, test_prefixes.to_lists(), test_targets, raw_of)
    day1_run = data_dir / "day1_run"
    helpers.train_and_evaluate(helpers.tiny_config(data_dir, day1_run, dataset="day1",
                                                   epochs=4, **GRAPH))
    return data_dir, day1_run


def test_known_items_keep_their_vectors_new_ones_start_fresh(days, tmp_path):
    data_dir, day1_run = days
    assert (day1_run / item_catalog.ITEMS_FILE).is_file()  # a finished run keeps its ids
    trainer = loop.Trainer(helpers.tiny_config(data_dir, tmp_path / "warm", dataset="day2",
                                               warm_start_from=str(day1_run), **GRAPH))
    trainer.restore()
    best_epoch = json.loads((day1_run / "metrics.json").read_text())["best_epoch"]
    old_table = tf.train.load_checkpoint(str(day1_run / "best" / f"ckpt-{best_epoch}")).get_tensor(
        "model/item_embeddings/.ATTRIBUTES/VARIABLE_VALUE")
    old_raw = item_catalog.read_raw_item_ids(day1_run, len(old_table))
    new_raw = trainer.inputs.raw_item_ids
    table = trainer.model.item_embeddings.numpy()
    old_row = {raw: row for row, raw in enumerate(old_raw)}
    kept = [raw for raw in new_raw if raw in old_row]
    assert len(kept) > 50 and any(raw.startswith("new-") for raw in new_raw)
    for row, raw in enumerate(new_raw):
        if raw in old_row:
            np.testing.assert_array_equal(table[row], old_table[old_row[raw]])
    assert not any(raw in {f"sku-{item}" for item in range(1, 11)} for raw in new_raw)


def test_a_warm_start_gets_ahead_of_a_cold_one(days, tmp_path):
    data_dir, day1_run = days
    cold = helpers.train_and_evaluate(helpers.tiny_config(
        data_dir, tmp_path / "cold", dataset="day2", epochs=2, **GRAPH))
    warm = helpers.train_and_evaluate(helpers.tiny_config(
        data_dir, tmp_path / "warm", dataset="day2", epochs=1, warm_start_from=str(day1_run),
        **GRAPH))
    # One warm epoch validates better than the best of two cold ones.
    assert warm["valid"]["P@20"] > cold["valid"]["P@20"], (warm["valid"], cold["valid"])


def test_a_warm_start_refuses_other_model_settings_or_missing_ids(days, tmp_path):
    data_dir, day1_run = days
    with pytest.raises(ConfigError, match="other model settings .*embedding_dim"):
        loop.Trainer(helpers.tiny_config(data_dir, tmp_path / "a", dataset="day2", embedding_dim=8,
                                         warm_start_from=str(day1_run), **GRAPH)).restore()
    plain = helpers.write_tiny_dataset(tmp_path / "plain")
    with pytest.raises(ConfigError, match="this run's dataset has no items.tsv"):
        loop.Trainer(helpers.tiny_config(plain, tmp_path / "b", warm_start_from=str(day1_run),
                                         **GRAPH)).restore()
    with pytest.raises(ConfigError, match="not a finished run"):
        loop.Trainer(helpers.tiny_config(data_dir, tmp_path / "c", dataset="day2",
                                         warm_start_from=str(tmp_path))).restore()
