"""The settings a run directory was started with, so that resuming cannot change them unseen.

A checkpoint holds weights, not the settings that shaped them: resuming with another
--embedding_dim failed deep inside TensorFlow, and with another --dropout the run trained
on while metrics.json recorded a dropout the model was never trained with. A start writes
`settings.json`; once the directory holds a checkpoint or a metrics.json, every later start
there must match it, except in the settings a resume may change on purpose. (A start that
saved nothing pins nothing: its retry may change anything.)
"""

import json
import os

from absl import logging
import tensorflow as tf

from mtd_tf.errors import ConfigError
from mtd_tf.io_utils import atomic_write_text
from mtd_tf.training.config import DEFAULTS
from mtd_tf.training.config import changed_settings

SETTINGS_FILE = "settings.json"
# Paths; `lr` (a diverged run resumes with a lower one, see `Trainer.restore`); `epochs`,
# `patience` (train longer, or stop sooner); `export_top_k` (shapes only the export).
MAY_CHANGE_ON_RESUME = ("data_dir", "model_dir", "lr", "epochs", "patience", "export_top_k")


def check_or_record(config, frequency):
    """Records `config` in a run directory with nothing to resume, else checks it.

    A directory with progress but no `settings.json` (started before it existed) is
    checked against its metrics.json's "flags" where it has one.

    Args:
      config: `TrainConfig` of this start.
      frequency: its session passes per epoch, resolved (the flag may leave it unset).

    Raises:
      ConfigError: `config.model_dir` is not a folder, its settings file is unreadable,
        or it was started with settings this start changes.
    """
    model_dir = config.model_dir
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ConfigError(f"--model_dir {model_dir} exists and is not a folder")
    settings = dict(config.to_dict(), frequency=frequency)
    path = os.path.join(model_dir, SETTINGS_FILE)
    metrics_path = os.path.join(model_dir, "metrics.json")
    recorded = None
    if _has_progress(model_dir, metrics_path):
        if os.path.exists(path):
            recorded = _read_object(path)
        elif os.path.exists(metrics_path):
            flags = _read_object(metrics_path).get("flags")
            recorded = flags if isinstance(flags, dict) else None
        if recorded is None:
            logging.warning("%s was started before runs recorded their settings: resuming it "
                            "with other settings is not caught", model_dir)
    if recorded is None:
        os.makedirs(model_dir, exist_ok=True)
        atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")
        return
    changed = [name for name in changed_settings(recorded, settings)
               if name not in MAY_CHANGE_ON_RESUME]
    if changed:
        was = ", ".join(f"{name}={recorded.get(name, DEFAULTS.get(name))!r}" for name in changed)
        now = ", ".join(f"{name}={settings[name]!r}" for name in changed)
        raise ConfigError(f"{model_dir} holds a run started with {was}, not {now}: use another "
                          f"--model_dir, or the same settings to resume it")


def _has_progress(model_dir, metrics_path):
    """Whether a start here would resume: a checkpoint (epoch or mid-epoch) or metrics.json."""
    return os.path.exists(metrics_path) or any(
        tf.train.latest_checkpoint(os.path.join(model_dir, folder))
        for folder in ("checkpoints", "mid_epoch"))


def _read_object(path):
    """The JSON object in `path`; one ConfigError line when it is not one."""
    try:
        with open(path) as handle:
            value = json.load(handle)
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"{path}: unreadable ({error}); the run directory's settings are "
                          f"checked against it") from None
    return value
