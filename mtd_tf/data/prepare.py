"""Turns a public raw click log into a dataset folder, by the published protocol.

    python -m mtd_tf.data.prepare --dataset=yoochoose|diginetica|retailrocket \\
        --raw=FILE --out=DIR [--fraction=64|4] [--skip_bad_rows]

writes, atomically (a failed run leaves no output folder behind), DIR/ with
  train_sessions.txt, test_pairs.txt  the split in the project's text format (DESIGN.md section 1);
  items.tsv    header `item_id<TAB>raw_item_id`, then one line per internal id 1..M;
  stats.json   the Table 1 figures and how they were reached.
Use it as any dataset folder: `--dataset=<basename of DIR> --data_dir=<parent of DIR>`.
Training takes a dataset's own settings (shortest prefix, f) from the folder's name, so DIR
must be named for its dataset (diginetica, retailrocket) unless the defaults fit it anyway,
and not for an alias (`yoochoose` names the folder yoochoose1_64, so DIR=yoochoose is refused).

The protocol is SR-GNN's `datasets/preprocess.py` (CRIPAC-DIG/SR-GNN), which the MTD authors
reused, reproduced with its quirks (`prepare_split` does it on whole arrays):

 1. Clicks are grouped by session id (a session split over separate runs of the file is
    one session). Yoochoose keeps file order inside a session; Diginetica sorts a session's
    clicks stably by `timeframe`; RetailRocket sessions are cut by `raw_logs`.
 2. A session's date is the date written on its *last row in file order* (SR-GNN keeps the
    `curdate` of the row read last), not its latest date: Yoochoose the timestamp truncated
    to the second, Diginetica the `eventdate` day, RetailRocket the last view's timestamp.
 3. Sessions shorter than `min_session_length` are dropped (SR-GNN: length 1; RetailRocket:
    length <= 2). Then items clicked fewer than 5 times, counted over every click left
    (repeats included, test period included), are removed, and sessions shorter than
    `min_session_length` dropped again.
 4. split date = the latest session date - 1 day (Yoochoose) or 7 days (Diginetica,
    RetailRocket). Training = sessions dated strictly before it, test = strictly after;
    sessions dated exactly on it are in neither (SR-GNN uses `<` and `>`).
 5. Both sets are sorted by date; ties keep the order of the sessions' first rows in the
    file (Python's sort is stable over a dict filled in file order).
 6. Yoochoose 1/F: SR-GNN augments the training sessions into samples, session by session,
    longest prefix first ([a,b,c,d] -> ([a,b,c],d), ([a,b],c), ([a],b)), and keeps the last
    int(n / F) of the n samples. Those are whole sessions plus the shortest k prefixes of
    the first one; we keep that session's first k + 1 items, so that prefix augmentation of
    train_sessions.txt gives exactly SR-GNN's `train.txt` samples (SR-GNN's
    `all_train_seq.txt` holds that first session whole; the difference is at most one
    session's tail). F must leave at least one sample (SR-GNN's `[-0:]` would keep all).
 7. Items are numbered 1..M by first appearance over the (kept) training sessions in order.
    For 1/F this numbering and the "known to training" test below use the kept sessions,
    as in the MTD authors' published yoochoose1_64 (items exactly 1..17,376, every test id
    a training id, 55,400 test pairs where SR-GNN's full-training filter gives 55,898);
    SR-GNN numbers over the full training set. Their order of ids is not reproducible (it
    is not first appearance) and does not matter to any model.
 8. Test sessions lose the items unknown to training, then those shorter than
    min_prefix_len + 1 are dropped; each gives (s[:t], s[t]) for t = len - 1 down to
    `min_prefix_len` (1; RetailRocket 2, as in its published split), longest prefix first.

Ids are compared as integers (SR-GNN compares strings, so "07" and "7" would differ; the
public logs write no leading zeros). Dates are read as UTC; see raw_logs.ClickLog.
"""

import json
import os
import re

from absl import flags
from absl import logging

from mtd_tf import cli
from mtd_tf import io_utils
from mtd_tf.data import formats
from mtd_tf.data import item_catalog
from mtd_tf.data import protocol
from mtd_tf.data import raw_logs
from mtd_tf.data import registry
from mtd_tf.errors import DatasetMissingError
from mtd_tf.errors import MTDError

STATS_FILE = "stats.json"
PROTOCOL_NAME = "SR-GNN datasets/preprocess.py (CRIPAC-DIG/SR-GNN), see mtd_tf/data/prepare.py"

_SOURCES = {
    "yoochoose": "yoochoose-clicks.dat from the RecSys Challenge 2015 data (yoochoose-data.7z)",
    "diginetica": "train-item-views.csv from the CIKM Cup 2016 data (dataset-train-diginetica.zip)",
    "retailrocket": "events.csv from the RetailRocket e-commerce dataset (Kaggle)",
}


def dataset_name(dataset, fraction):
    """The folder name the published splits use: yoochoose1_64, diginetica, ..."""
    return f"yoochoose1_{fraction}" if dataset == "yoochoose" else dataset


def prepare(dataset, raw_path, out_dir, fraction=None, skip_bad_rows=False):
    """Reads `raw_path`, applies the protocol and writes `out_dir` atomically.

    Args:
      dataset: "yoochoose", "diginetica" or "retailrocket".
      raw_path: the raw log.
      out_dir: output folder; replaced if it holds an earlier output of this tool.
      fraction: Yoochoose only: keep the most recent 1/fraction of training samples
        (default 64); must be None or 1 for the others.
      skip_bad_rows: drop malformed rows (counted in stats.json) instead of stopping.

    Returns:
      The stats dict written to stats.json.
    """
    if dataset not in protocol.PROTOCOLS:
        raise MTDError(f"unknown --dataset {dataset!r}; choose one of "
                       f"{', '.join(protocol.PROTOCOLS)}")
    if dataset == "yoochoose":
        fraction = 64 if fraction is None else fraction
    elif fraction not in (None, 1):
        raise MTDError(f"--fraction applies to yoochoose only, not to {dataset}")
    fraction = fraction or 1
    if fraction < 1:
        raise MTDError(f"--fraction must be a positive integer, got {fraction}")
    _check_folder_name(dataset_name(dataset, fraction), out_dir)
    if os.path.isdir(raw_path):
        raise MTDError(f"--raw {raw_path} is a folder; --raw takes the file {_SOURCES[dataset]}")
    if not os.path.isfile(raw_path):
        raise DatasetMissingError(f"{raw_path}: no such file; --raw takes {_SOURCES[dataset]}")
    _check_replaceable(out_dir)

    clicks = raw_logs.READERS[dataset](raw_path, skip_bad_rows=skip_bad_rows)
    split = protocol.prepare_split(clicks, protocol.PROTOCOLS[dataset], fraction)
    stats = {"dataset": dataset_name(dataset, fraction), "raw_file": os.path.abspath(raw_path),
             "protocol": PROTOCOL_NAME, **split.stats}
    with io_utils.atomic_output_dir(out_dir) as folder:
        formats.write_text_split(folder, split.train, split.test_prefixes, split.test_targets)
        item_catalog.write_raw_item_ids(folder, split.raw_item_ids)
        io_utils.atomic_write_text(os.path.join(folder, STATS_FILE),
                                   json.dumps(stats, indent=2) + "\n")
    logging.info("%s: %d training sessions (%d samples), %d test pairs, %d items -> %s",
                 stats["dataset"], stats["train_sessions"], stats["train_samples"],
                 stats["test_samples"], stats["items"], out_dir)
    return stats


def _check_folder_name(name, out_dir):
    """Refuses a folder that training could not find by its name, would take for another
    dataset, or would give other settings."""
    folder = os.path.basename(os.path.normpath(out_dir))
    if registry.canonical_name(folder) != folder:
        raise MTDError(f"--out {out_dir}: --dataset={folder} reads the folder "
                       f"{registry.canonical_name(folder)}, not this one; name the folder "
                       f"{name}")
    if folder != name and (registry.is_named_dataset(folder)
                           or re.fullmatch(r"yoochoose1_[0-9]+", folder)):
        raise MTDError(f"--out {out_dir}: {folder} names another dataset; name the folder "
                       f"{name}")
    if registry.defaults_for(folder) != registry.defaults_for(name):
        raise MTDError(f"--out {out_dir}: training takes {name}'s settings (shortest prefix, "
                       f"f) from its folder's name, and {folder!r} would not get them; name "
                       f"the folder {name}")


def _check_replaceable(out_dir):
    """Refuses to replace a folder that this tool did not write (it would be deleted)."""
    if not os.path.exists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise MTDError(f"--out {out_dir} exists and is not a folder")
    if os.listdir(out_dir) and not os.path.isfile(os.path.join(out_dir, STATS_FILE)):
        raise MTDError(f"--out {out_dir} is a non-empty folder not written by this tool (no "
                       f"{STATS_FILE}); choose another or remove it")


def _define_flags():
    flags.DEFINE_enum("dataset", None, list(protocol.PROTOCOLS), "Which raw log --raw is.")
    flags.DEFINE_string("raw", None, "The raw log: " + "; ".join(
        f"{name}: {source}" for name, source in _SOURCES.items()) + ".")
    flags.DEFINE_string("out", None, "Output folder (replaced atomically).")
    flags.DEFINE_integer("fraction", None, "Yoochoose only: keep the most recent 1/fraction of "
                         "training samples (64 or 4; default 64).", lower_bound=1)
    flags.DEFINE_bool("skip_bad_rows", False, "Drop malformed rows (counted in stats.json) "
                      "instead of stopping at the first one.")
    flags.mark_flags_as_required(["dataset", "raw", "out"])


def main(argv):
    del argv  # Unused.
    stats = prepare(flags.FLAGS.dataset, flags.FLAGS.raw, flags.FLAGS.out, flags.FLAGS.fraction,
                    flags.FLAGS.skip_bad_rows)
    print(json.dumps({key: stats[key] for key in (
        "dataset", "train_sessions", "train_samples", "test_samples", "items")}
        | {"out": flags.FLAGS.out}))


if __name__ == "__main__":
    _define_flags()
    cli.run_app(main)
