"""A finished run folder read back: its config and the weights it reported.

What comes after training (choosing a ranking-time prior, exporting again with it) needs
the model of a run exactly as its test and export saw it: the settings it recorded and its
best checkpoint (a refit's last epoch), without a trainer, its optimizers or its graph.
"""

import dataclasses
import json
import os

import tensorflow as tf

from mtd_tf.errors import MTDError
from mtd_tf.job import METRICS_FILE
from mtd_tf.training import checkpoints
from mtd_tf.training.config import TrainConfig
from mtd_tf.training.config import complete_record
from mtd_tf.training.run_settings import SETTINGS_FILE


def read_config(model_dir, data_dir=None):
    """The `TrainConfig` a finished run trained with (`data_dir`, if given, replaces the
    recorded one: a run moved to another machine reads its data from there).

    Raises:
      MTDError: `model_dir` is not a finished run folder.
    """
    for name in (SETTINGS_FILE, METRICS_FILE):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise MTDError(f"{model_dir}: not a finished run (no {name}); train it with "
                           "mtd_tf/main.py first")
    with open(os.path.join(model_dir, SETTINGS_FILE), encoding="utf-8") as file:
        recorded = json.load(file)
    recorded.pop("data", None)  # the data's fingerprint, not a setting
    if data_dir is not None:
        recorded["data_dir"] = data_dir
    return TrainConfig.from_settings(**complete_record(recorded))


def reported_epoch(model_dir):
    """The epoch whose weights the run tested and exported (metrics.json's best_epoch)."""
    with open(os.path.join(model_dir, METRICS_FILE), encoding="utf-8") as file:
        return int(json.load(file)["best_epoch"])


def load_model(model_dir, config, num_items, **model_settings):
    """The model of `config` (a `TrainConfig`; `model_settings` changed in its model
    part) for items 1..`num_items`, holding the run's reported weights.

    Raises:
      MTDError: the reported epoch's best checkpoint is missing or cannot be read.
    """
    model_config = dataclasses.replace(config.model, **model_settings)
    model = model_config.build(num_items)
    epoch = reported_epoch(model_dir)
    path = os.path.join(model_dir, "best", f"ckpt-{epoch}")
    why = checkpoints.damage(path)
    if why is not None:
        raise MTDError(f"{path}: the checkpoint of the reported epoch ({epoch}) cannot be "
                       f"read ({why})")
    checkpoints.restore_all(tf.train.Checkpoint(model=model), path)
    return model
