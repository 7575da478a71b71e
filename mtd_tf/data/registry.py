"""Dataset names, per-dataset defaults, and loading a split from its folder.

A dataset lives in `data_dir/<canonical name>/`, either as the project's text files
(preferred) or as the field's pickle pair. "synthetic" is generated there on first use.
A dataset's own settings (`DatasetDefaults`) come from its folder's `dataset.json` when it
has one (`dataset_info`), else from its name.
"""

import dataclasses
import difflib
import os
import re
import shlex

import numpy as np
from absl import logging

from mtd_tf.data import dataset_info
from mtd_tf.data import formats
from mtd_tf.data import item_catalog
from mtd_tf.data.dataset_info import DatasetDefaults
from mtd_tf.data.sessions import Sessions
from mtd_tf.data.sessions import SessionDataset
from mtd_tf.data.sessions import row_splits_from_lengths
from mtd_tf.errors import DataError
from mtd_tf.errors import DatasetMissingError
from mtd_tf.errors import MTDError

DATASET_ALIASES = {"yoochoose": "yoochoose1_64"}
SYNTHETIC = "synthetic"
_SYNTHETIC_DEFAULT_SIZES = (2000, 20000)
_SYNTHETIC_SIZED = re.compile(r"synthetic_m([0-9]+)_s([0-9]+)")
DEFAULT_DATA_DIR = "data"
DATA_DIR_ENV = "MTD_DATA_DIR"


@dataclasses.dataclass(frozen=True)
class LoadedDataset(SessionDataset):
    """A `SessionDataset` and what `load_dataset` changed to align its test pairs.

    Attributes (beyond `SessionDataset`'s):
      unknown_prefix_ids: test prefix ids above M, dropped from their prefixes.
      emptied_prefixes: prefixes left with no id by that (kept, with length 0).
      unknown_targets: test targets above M (kept; each is a miss).
      raw_item_ids: str [M], the raw id of each item 1..M from the folder's `items.tsv`
        (`item_catalog`), or None for a folder without one.
      defaults: the dataset's `DatasetDefaults` (`defaults_for`).
    """

    unknown_prefix_ids: int = 0
    emptied_prefixes: int = 0
    unknown_targets: int = 0
    raw_item_ids: np.ndarray = None
    defaults: DatasetDefaults = None

    def unknown_id_counts(self):
        """The three counts under the keys `metrics.json` records them with."""
        return {"test_unknown_prefix_ids": self.unknown_prefix_ids,
                "test_emptied_prefixes": self.emptied_prefixes,
                "test_unknown_targets": self.unknown_targets}


_DEFAULTS = {
    "yoochoose1_64": DatasetDefaults(min_prefix_len=1, frequency=1),
    "diginetica": DatasetDefaults(min_prefix_len=1, frequency=4),
    "retailrocket": DatasetDefaults(min_prefix_len=2, frequency=6),
}
_FALLBACK_DEFAULTS = DatasetDefaults(min_prefix_len=1, frequency=1)

# (train file, test file, train reader, test reader), the preferred format first.
_FORMATS_BY_PREFERENCE = (
    (formats.TRAIN_TEXT, formats.TEST_TEXT, formats.read_train_text, formats.read_test_text),
    (formats.TRAIN_PICKLE, formats.TEST_PICKLE, formats.read_train_pickle,
     formats.read_test_pickle),
)


def canonical_name(name):
    """The folder name for `name` ("yoochoose" -> "yoochoose1_64"); refuses path-like names."""
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise MTDError(f"invalid dataset name {name!r}: it must be a plain folder name")
    return DATASET_ALIASES.get(name, name)


def is_named_dataset(name):
    """Whether `name` is one of the published datasets or a synthetic one."""
    return canonical_name(name) in _DEFAULTS or synthetic_sizes(name) is not None


def synthetic_sizes(name):
    """(items, sessions) of a synthetic dataset name, else None: `synthetic` is the
    default 2,000 items and 20,000 sessions; `synthetic_m<ITEMS>_s<SESSIONS>` (e.g.
    `synthetic_m1000000_s2000000`) draws another size into its own folder."""
    if name == SYNTHETIC:
        return _SYNTHETIC_DEFAULT_SIZES
    match = _SYNTHETIC_SIZED.fullmatch(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def defaults_for(name, data_dir=None):
    """`DatasetDefaults` of a dataset: those its folder under `data_dir` records in its
    `dataset.json` (a folder made by `mtd_tf.data.prepare`, whatever its name); else the
    published dataset's (aliases resolved); else (1, 1).

    Raises:
      DataError: the folder's `dataset.json` is malformed.
    """
    canonical = canonical_name(name)
    if data_dir is not None:
        recorded = dataset_info.read_defaults(os.path.join(resolve_data_dir(data_dir),
                                                           canonical))
        if recorded is not None:
            return recorded
    return _DEFAULTS.get(canonical, _FALLBACK_DEFAULTS)


def dataset_defaults(dataset):
    """`DatasetDefaults` of a dataset in memory: a loaded one's (`LoadedDataset.defaults`,
    read with its folder), else those of its name."""
    return getattr(dataset, "defaults", None) or defaults_for(dataset.name)


def resolve_data_dir(flag_value):
    """--data_dir if given, else $MTD_DATA_DIR if set, else "data"."""
    return flag_value or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR


def load_dataset(name, data_dir, seed=0):
    """Loads a split and aligns its test pairs with the items known to training.

    Items are 1..M with M the largest id in the training sessions. Test pairs are all
    kept, so the test count stays the published one:
      - a prefix id above M (never seen in training, so it has no embedding) is dropped
        from its prefix; a prefix whose ids are all unknown is kept with length 0 and
        ranked by training popularity (`mtd_tf.scoring`), as the export serves it;
      - a target above M is kept: no score can rank it, so it counts as a miss.
    Both counts are logged as warnings when non-zero (the published splits have none)
    and returned in the dataset's `unknown_id_counts()`.

    Args:
      name: dataset name or alias ("yoochoose", "diginetica", "retailrocket",
        "synthetic", or any folder under `data_dir`).
      data_dir: folder holding dataset folders (None: `resolve_data_dir(None)`).
      seed: seed for generating "synthetic" when its files are absent (ignored otherwise).

    Returns:
      `LoadedDataset` (a `SessionDataset`) named by the canonical name.

    Raises:
      DatasetMissingError: the folder holds neither format; the message names the
        download command.
      DataError: a file is malformed, or there are no training sessions or test pairs.
      MTDError: `data_dir` is a file, or `name` is not a plain folder name.
    """
    data_dir = resolve_data_dir(data_dir)
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise MTDError(f"--data_dir {data_dir} exists and is not a folder")
    canonical = canonical_name(name)
    folder = os.path.join(data_dir, canonical)
    sizes = synthetic_sizes(canonical)
    if sizes is not None:
        _generate_or_reuse_synthetic(folder, seed, *sizes)
    train, test_prefixes, test_targets = _read_split(name, data_dir, folder)
    num_items = int(train.values.max())
    original_prefixes = test_prefixes
    test_prefixes = _drop_unknown_prefix_ids(test_prefixes, num_items, canonical)
    unknown_prefix_ids = len(original_prefixes.values) - len(test_prefixes.values)
    emptied_prefixes = int(np.count_nonzero(
        (test_prefixes.lengths == 0) & (original_prefixes.lengths > 0)))
    unknown_targets = int(np.count_nonzero(test_targets > num_items))
    if unknown_targets:
        logging.warning("%s: %d of %d test targets are not training items (ids > %d); they "
                        "count as misses", canonical, unknown_targets, len(test_targets),
                        num_items)
    defaults = defaults_for(canonical, data_dir)
    raw_item_ids = item_catalog.read_raw_item_ids(folder, num_items)
    logging.info("Loaded %s: %d training sessions, %d test pairs, %d items (shortest "
                 "training prefix %d, f %d)", canonical, len(train), len(test_targets),
                 num_items, defaults.min_prefix_len, defaults.frequency)
    return LoadedDataset(canonical, train, test_prefixes, test_targets, num_items,
                         unknown_prefix_ids=unknown_prefix_ids,
                         emptied_prefixes=emptied_prefixes, unknown_targets=unknown_targets,
                         raw_item_ids=raw_item_ids, defaults=defaults)


def _has_files(folder, *filenames):
    return all(os.path.isfile(os.path.join(folder, filename)) for filename in filenames)


def _generate_or_reuse_synthetic(folder, seed, num_items, num_sessions):
    """Generates the synthetic split on first use; a later use with another seed reuses it,
    and says so, since the run's recorded seed would otherwise claim it drew the data."""
    # Imported here: only the synthetic dataset needs the generator.
    from mtd_tf.data import synthetic  # pylint: disable=import-outside-toplevel

    if not _has_files(folder, formats.TRAIN_TEXT, formats.TEST_TEXT):
        logging.info("Generating the synthetic dataset (seed %d, %d items, %d sessions) in %s",
                     seed, num_items, num_sessions, folder)
        try:
            synthetic.write_synthetic_dataset(folder, seed=seed, num_items=num_items,
                                              num_sessions=num_sessions)
        except ValueError as error:
            raise MTDError(f"dataset {os.path.basename(folder)}: {error}") from None
        return
    drawn_with = synthetic.recorded_seed(folder)
    if drawn_with is not None and drawn_with != seed:
        logging.warning("%s was generated with seed %d and is reused: --seed=%d seeds only "
                        "shuffling and initialisation (delete the folder to draw the data with "
                        "seed %d)", folder, drawn_with, seed, seed)


def _read_split(name, data_dir, folder):
    """(train, test prefixes, test targets) from the text files, else the pickle pair."""
    for train_file, test_file, read_train, read_test in _FORMATS_BY_PREFERENCE:
        if _has_files(folder, train_file, test_file):
            train_path = os.path.join(folder, train_file)
            train = read_train(train_path)
            if len(train) == 0:
                raise DataError(train_path, "no training sessions")
            test_path = os.path.join(folder, test_file)
            test_prefixes, test_targets = read_test(test_path)
            if len(test_targets) == 0:
                raise DataError(test_path, "no test pairs")
            return train, test_prefixes, test_targets
    if canonical_name(name) in _DEFAULTS:
        hint = (f"Download it with: python -m mtd_tf.data.download "
                f"--dataset={shlex.quote(name)} --data_dir={shlex.quote(str(data_dir))}")
    else:
        closest = closest_dataset_name(name, data_dir)
        hint = " ".join(filter(None, (
            closest and f"Did you mean --dataset={closest}?",
            "Make one with: python -m mtd_tf.data.prepare, or name a folder under --data_dir")))
    raise DatasetMissingError(
        f"dataset {name!r} not found: {folder} needs {formats.TRAIN_TEXT} and "
        f"{formats.TEST_TEXT}, or {formats.TRAIN_PICKLE} and {formats.TEST_PICKLE}. {hint}")


def closest_dataset_name(name, data_dir):
    """The known dataset or folder name `name` most likely mistypes or abbreviates, else None."""
    try:
        folders = [entry.name for entry in os.scandir(data_dir) if entry.is_dir()]
    except OSError:
        folders = []
    known = sorted({*_DEFAULTS, *DATASET_ALIASES, SYNTHETIC, *folders} - {name})
    match = difflib.get_close_matches(name, known, n=1)
    if match:
        return match[0]
    # difflib misses short abbreviations ("digi"): a prefix of one name only stands for it.
    extending = [candidate for candidate in known if candidate.startswith(name)]
    return extending[0] if len(extending) == 1 else None


def _drop_unknown_prefix_ids(prefixes, num_items, dataset_name):
    """Removes ids above `num_items` from every prefix; prefixes may become empty."""
    known = prefixes.values <= num_items
    if known.all():
        return prefixes
    prefix_of_value = np.repeat(np.arange(len(prefixes)), prefixes.lengths)
    new_lengths = np.bincount(prefix_of_value[known], minlength=len(prefixes))
    affected = np.count_nonzero(new_lengths != prefixes.lengths)
    emptied = np.count_nonzero((new_lengths == 0) & (prefixes.lengths > 0))
    logging.warning("%s: dropped %d test prefix ids unknown to training (ids > %d) from %d "
                    "prefixes; %d prefixes became empty and are kept", dataset_name,
                    np.count_nonzero(~known), num_items, affected, emptied)
    return Sessions(prefixes.values[known], row_splits_from_lengths(new_lengths))
