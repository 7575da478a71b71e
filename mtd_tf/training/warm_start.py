"""Daily retraining: a run on a newer dataset starts from an older run's best weights.

Tomorrow's log has most of today's items, some new ones, and lacks some old ones. Items
are matched by their raw id (both datasets' `items.tsv`, which a finished run keeps in its
folder): a known item keeps its learned vector, a new item keeps its fresh initial one, a
gone item is dropped. Every other weight is copied as it is, so the model settings must be
the older run's. The optimizer starts afresh (its moments belong to the old catalogue).
"""

import dataclasses
import json
import os

from absl import logging
import numpy as np
import tensorflow as tf

from mtd_tf.data import item_catalog
from mtd_tf.errors import ConfigError
from mtd_tf.training.config import changed_settings
from mtd_tf.training.run_settings import SETTINGS_FILE

_TABLE_KEY = "model/item_embeddings/.ATTRIBUTES/VARIABLE_VALUE"


def warm_start(model, config, raw_item_ids, run_dir, infomax=None):
    """Loads `run_dir`'s best weights into the freshly built `model` (of `config`, a
    `TrainConfig`) whose items 1..M have the raw ids `raw_item_ids`, and its graph
    module's last weights into `infomax` (a `GraphInfomax`, whose weights do not depend on
    M; without them the first graph phase would overwrite the warm item table with a fresh
    encoder's output).

    Returns:
      {"kept", "new", "gone"}: item counts.

    Raises:
      ConfigError: `run_dir` is not a finished run, its model settings differ, or either
        side has no raw item ids.
    """
    metrics = _read_json(os.path.join(run_dir, "metrics.json"), run_dir)
    recorded = _read_json(os.path.join(run_dir, SETTINGS_FILE), run_dir)
    changed = changed_settings(recorded, {
        "model": config.trainer.model,
        **{field.name: getattr(config.model, field.name)
           for field in dataclasses.fields(config.model)}})
    if changed:
        raise ConfigError(f"--warm_start_from={run_dir}: it was trained with other model "
                          f"settings ({', '.join(changed)}); a warm start keeps them")
    checkpoint_path = os.path.join(run_dir, "best", f"ckpt-{int(metrics['best_epoch'])}")
    try:
        old_num_items = tf.train.load_checkpoint(
            checkpoint_path).get_variable_to_shape_map()[_TABLE_KEY][0]
    except (tf.errors.OpError, KeyError, ValueError):
        raise ConfigError(f"--warm_start_from={run_dir}: its best checkpoint "
                          f"{checkpoint_path} cannot be read") from None
    old_raw_ids = item_catalog.read_raw_item_ids(run_dir, old_num_items)
    if old_raw_ids is None or raw_item_ids is None:
        which = run_dir if old_raw_ids is None else "this run's dataset"
        raise ConfigError(f"--warm_start_from matches items by raw id, but {which} has no "
                          f"{item_catalog.ITEMS_FILE} (datasets made by mtd_tf.data.prepare "
                          "have one)")
    old_model = config.model.build(old_num_items)
    tf.train.Checkpoint(model=old_model).read(checkpoint_path).expect_partial()

    old_row = {raw: row for row, raw in enumerate(old_raw_ids)}
    rows = np.array([old_row.get(raw, -1) for raw in raw_item_ids])  # [M], -1 = new
    item_tables = {id(table) for table in model.item_tables()}
    for old, new in zip(old_model.weights, model.weights):
        if id(new) in item_tables:
            table = new.numpy()
            table[rows >= 0] = old.numpy()[rows[rows >= 0]]
            new.assign(table)
        else:
            new.assign(old)
    if infomax is not None:
        latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
        if latest is None:
            raise ConfigError(f"--warm_start_from={run_dir}: no epoch checkpoint holds its "
                              "graph module")
        tf.train.Checkpoint(infomax=infomax).read(latest).expect_partial()
    counts = {"kept": int((rows >= 0).sum()), "new": int((rows < 0).sum()),
              "gone": len(old_raw_ids) - int((rows >= 0).sum())}
    logging.info("warm start from %s (best epoch %d): %d items keep their vectors, %d new, "
                 "%d gone", run_dir, int(metrics["best_epoch"]), counts["kept"], counts["new"],
                 counts["gone"])
    return counts


def _read_json(path, run_dir):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        raise ConfigError(f"--warm_start_from={run_dir}: not a finished run ({path} is missing "
                          "or unreadable)") from None
