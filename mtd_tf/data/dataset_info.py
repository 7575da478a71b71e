"""A dataset folder's `dataset.json`: the settings it was made with, recorded in the folder.

`mtd_tf.data.prepare` writes it, so that training, `mtd_tf.data.stats` and the baselines
take the dataset's own settings (shortest prefix, the training frequency `f`) from the
folder itself, whatever its name; a folder without one (the published splits) gets them
from its name (`registry.defaults_for`). The file also says where the split came from:

  min_prefix_len, frequency   the settings training reads (positive integers);
  created                     when it was written (UTC, ISO 8601);
  source                      the raw file and its format (and, for a log with named
                              columns, the file type, columns and time format);
  protocol                    the protocol's options (`protocol.Protocol`);
  counts                      the split's figures (`protocol.prepare_split`).
"""

import dataclasses
import datetime
import json
import os

from mtd_tf import io_utils
from mtd_tf.errors import DataError

DATASET_FILE = "dataset.json"


@dataclasses.dataclass(frozen=True)
class DatasetDefaults:
    """Settings that belong to a dataset rather than to the model.

    Attributes:
      min_prefix_len: shortest training prefix in prefix augmentation (RetailRocket's
        published split was built with 2, the others with 1; DESIGN.md section 1).
      frequency: `f`, session passes per graph step in each epoch (paper's training
        frequency; DESIGN.md section 4).
    """

    min_prefix_len: int
    frequency: int


def write_dataset_info(folder, defaults, source, protocol_options, counts):
    """Writes `folder/dataset.json` atomically; returns what it wrote.

    Args:
      folder: the dataset folder.
      defaults: `DatasetDefaults`.
      source: JSON-ready dict: the raw file and how it was read.
      protocol_options: JSON-ready dict of the protocol's options.
      counts: JSON-ready dict of the split's figures.
    """
    info = {
        **dataclasses.asdict(defaults),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "protocol": protocol_options,
        "counts": counts,
    }
    io_utils.atomic_write_text(os.path.join(folder, DATASET_FILE),
                               json.dumps(info, indent=2) + "\n")
    return info


def read_dataset_info(folder):
    """The parsed `folder/dataset.json`, or None without one.

    Raises:
      DataError: naming the file (and the line, for invalid JSON): not a JSON object, or
        min_prefix_len / frequency missing or not positive integers.
    """
    path = os.path.join(folder, DATASET_FILE)
    if not os.path.isfile(path):
        return None
    text = io_utils.read_file_bytes(path).decode("utf-8", errors="replace")
    try:
        info = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(path, f"not valid JSON: {error.msg}", record=error.lineno) from None
    if not isinstance(info, dict):
        raise DataError(path, f"expected a JSON object, found {type(info).__name__}")
    for field in dataclasses.fields(DatasetDefaults):
        value = info.get(field.name)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise DataError(path, f"{field.name} must be a positive integer, found {value!r}")
    return info


def read_defaults(folder):
    """The `DatasetDefaults` recorded in `folder/dataset.json`, or None without one."""
    info = read_dataset_info(folder)
    if info is None:
        return None
    return DatasetDefaults(**{field.name: info[field.name]
                              for field in dataclasses.fields(DatasetDefaults)})
