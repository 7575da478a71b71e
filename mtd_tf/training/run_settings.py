"""The settings a run directory was started with, so that resuming cannot change them unseen.

A checkpoint holds weights, not the settings that shaped them: resuming with another
--embedding_dim failed deep inside TensorFlow, and with another --dropout the run trained
on while metrics.json recorded a dropout the model was never trained with. A start writes
`settings.json`; once the directory holds a checkpoint or a metrics.json, every later start
there must match it, except in the settings a resume may change on purpose. (A start that
saved nothing pins nothing: its retry may change anything.)

The data are pinned too, by size and a digest: --data_dir may change on resume (data
moved), and a dataset prepared again under the same name would otherwise train on unseen.
"""

import hashlib
import json
import os

from absl import logging
import tensorflow as tf

from mtd_tf.errors import ConfigError
from mtd_tf.io_utils import atomic_write_text
from mtd_tf.training.config import DEFAULTS
from mtd_tf.training.config import changed_settings
from mtd_tf.training.config import complete_record

SETTINGS_FILE = "settings.json"
# Paths; `lr` (a diverged run resumes with a lower one, see `Trainer.restore`); `epochs`,
# `patience` (train longer, or stop sooner); `export_top_k` (shapes only the export);
# `strategy` and `peer_timeout`: the same global batches in the same order train the same
# model on one device or on several machines (only float summation order and the dropout
# masks, drawn per replica, differ), so a run may resume on more or fewer of them.
MAY_CHANGE_ON_RESUME = ("data_dir", "model_dir", "lr", "epochs", "patience", "export_top_k",
                        "strategy", "peer_timeout")

# What the workers of one multi-worker run may hold differently: where each machine keeps
# the data and the run folder, and how long each waits for the others.
MAY_DIFFER_BETWEEN_WORKERS = ("data_dir", "model_dir", "peer_timeout")


def worker_record(config, frequency, data):
    """The settings and data every worker of a multi-worker run must share (the same
    command, the same dataset), as canonical JSON text."""
    shared = {name: value for name, value in config.to_dict().items()
              if name not in MAY_DIFFER_BETWEEN_WORKERS}
    return json.dumps(dict(shared, frequency=frequency, data=data), sort_keys=True)


def data_fingerprint(inputs):
    """Sizes and a SHA-256 of `inputs`' samples (targets and lengths of every split): what
    a resume must find again, whatever folder it reads them from."""
    digest = hashlib.sha256()
    for samples in (inputs.train, inputs.valid, inputs.test):
        for array in (samples.targets, samples.lengths):
            digest.update(array.astype("<i4").tobytes())
            digest.update(b"|")
    return {"num_items": int(inputs.num_items),
            "samples": [len(inputs.train), len(inputs.valid), len(inputs.test)],
            "sha256": digest.hexdigest()}


def check_or_record(config, frequency, data=None, record=True):
    """Records `config` in a run directory with nothing to resume, else checks it.

    A directory with progress but no `settings.json` (started before it existed) is
    checked against its metrics.json's "flags" where it has one.

    Args:
      config: `TrainConfig` of this start.
      frequency: its session passes per epoch, resolved (the flag may leave it unset).
      data: `data_fingerprint` of the inputs it read; checked only against a directory
        that recorded one.
      record: False for a worker other than the chief of a multi-worker run: it checks
        what the chief recorded and writes nothing into the run directory.

    Raises:
      ConfigError: `config.model_dir` is not a folder, its settings file is unreadable,
        or it was started with settings or data this start changes.
    """
    model_dir = config.trainer.model_dir
    check_folder(model_dir)
    settings = dict(config.to_dict(), frequency=frequency)
    if data is not None:
        settings["data"] = data
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
        if record:
            os.makedirs(model_dir, exist_ok=True)
            atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")
        return
    _check_data(model_dir, config, recorded.get("data"), data)
    changed = [name for name in changed_settings(recorded, settings)
               if name not in MAY_CHANGE_ON_RESUME + ("data",)]
    if changed:
        recorded = complete_record(recorded)
        was = ", ".join(f"{name}={recorded.get(name, DEFAULTS.get(name))!r}" for name in changed)
        now = ", ".join(f"{name}={settings[name]!r}" for name in changed)
        raise ConfigError(f"{model_dir} holds a run started with {was}, not {now}: use another "
                          f"--model_dir, or the same settings to resume it")


def check_folder(model_dir):
    """Refuses a --model_dir that exists as something other than a folder."""
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ConfigError(f"--model_dir {model_dir} exists and is not a folder")


def _check_data(model_dir, config, recorded, data):
    """Refuses a resume whose data differ from those the run was started on."""
    if recorded is None or data is None or recorded == data:
        return
    was, now = _describe(recorded), _describe(data)
    if was == now:
        now = "as many, but other sessions"
    raise ConfigError(f"{model_dir} holds a run started on other data than --dataset="
                      f"{config.trainer.dataset} in {config.trainer.data_dir} gives now "
                      f"({was}; now {now}): "
                      f"use another --model_dir, or the data it was trained on")


def _describe(fingerprint):
    """'M items, a / b / c train / valid / test samples' of a (possibly hand-edited) record."""
    if not isinstance(fingerprint, dict):
        return "an unreadable record"
    samples = fingerprint.get("samples")
    sizes = " / ".join(map(str, samples)) if isinstance(samples, list) else "?"
    return f"{fingerprint.get('num_items', '?')} items, {sizes} train / valid / test samples"


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
