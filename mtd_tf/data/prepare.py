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

import dataclasses
import datetime
import json
import os
import re

import numpy as np
import pandas as pd
from absl import flags
from absl import logging

from mtd_tf import cli
from mtd_tf import io_utils
from mtd_tf.data import augment
from mtd_tf.data import formats
from mtd_tf.data import raw_logs
from mtd_tf.data import registry
from mtd_tf.data.sessions import Sessions
from mtd_tf.data.sessions import prefix_target_pairs
from mtd_tf.data.sessions import row_splits_from_lengths
from mtd_tf.errors import DataError
from mtd_tf.errors import DatasetMissingError
from mtd_tf.errors import MTDError

ITEMS_FILE = "items.tsv"
STATS_FILE = "stats.json"
PROTOCOL_NAME = "SR-GNN datasets/preprocess.py (CRIPAC-DIG/SR-GNN), see mtd_tf/data/prepare.py"

_SOURCES = {
    "yoochoose": "yoochoose-clicks.dat from the RecSys Challenge 2015 data (yoochoose-data.7z)",
    "diginetica": "train-item-views.csv from the CIKM Cup 2016 data (dataset-train-diginetica.zip)",
    "retailrocket": "events.csv from the RetailRocket e-commerce dataset (Kaggle)",
}


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Per-dataset constants of the protocol.

    Attributes:
      test_window_ms: split date = latest session date - this.
      min_session_length: shorter sessions are dropped, before and after the item filter.
      min_item_count: items clicked fewer times are removed.
      min_prefix_len: shortest prefix of a training sample or test pair.
    """

    test_window_ms: int
    min_session_length: int = 2
    min_item_count: int = 5
    min_prefix_len: int = 1


PROTOCOLS = {
    "yoochoose": Protocol(test_window_ms=raw_logs.MS_PER_DAY),
    "diginetica": Protocol(test_window_ms=7 * raw_logs.MS_PER_DAY),
    "retailrocket": Protocol(test_window_ms=7 * raw_logs.MS_PER_DAY, min_session_length=3,
                             min_prefix_len=2),
}


@dataclasses.dataclass(frozen=True)
class PreparedSplit:
    """A split in internal ids, plus the raw id of each internal id and the figures.

    Attributes:
      train: training sessions, oldest first, ids 1..M.
      test_prefixes, test_targets: the test pairs (int32 targets), longest prefix first.
      raw_item_ids: int64 [M]; internal id i + 1 is raw item raw_item_ids[i].
      stats: JSON-ready dict (see `prepare_split`).
    """

    train: Sessions
    test_prefixes: Sessions
    test_targets: np.ndarray
    raw_item_ids: np.ndarray
    stats: dict


def prepare_split(clicks, protocol, fraction=1):
    """Applies the protocol (module docstring) to a `raw_logs.ClickLog`.

    Args:
      clicks: the raw log's clicks.
      protocol: a `Protocol`.
      fraction: keep the most recent 1/fraction of training samples (Yoochoose: 64 or 4).

    Returns:
      A `PreparedSplit`.

    Raises:
      DataError: nothing is left for training or for testing.
    """
    session_codes, _ = pd.factorize(clicks.session_ids)  # [num_clicks], numbered by first row
    num_sessions = int(session_codes.max()) + 1 if len(session_codes) else 0
    row_order = _rows_by_session(session_codes, clicks.order_keys)  # None = already grouped
    lengths = np.bincount(session_codes, minlength=num_sessions)  # [num_sessions]
    starts = row_splits_from_lengths(lengths)[:-1]
    items = clicks.item_ids if row_order is None else clicks.item_ids[row_order]
    # The session's date is that of its last row in file order (largest row index).
    last_rows = (starts + lengths - 1 if row_order is None
                 else np.maximum.reduceat(row_order, starts) if num_sessions else starts)
    session_dates = clicks.dates[last_rows]  # [num_sessions], ms

    long_enough = lengths >= protocol.min_session_length  # [num_sessions]
    in_long_session = np.repeat(long_enough, lengths)  # [num_clicks]
    item_codes, _ = pd.factorize(items[in_long_session])
    frequent = np.zeros(len(items), dtype=bool)
    frequent[in_long_session] = (np.bincount(item_codes)[item_codes] >= protocol.min_item_count)
    del item_codes
    kept_lengths = (np.add.reduceat(frequent, starts, dtype=np.int64) if num_sessions
                    else lengths)  # [num_sessions]
    kept = kept_lengths >= protocol.min_session_length
    kept_lengths = np.where(kept, kept_lengths, 0)
    items = items[frequent & np.repeat(kept, lengths)]
    starts = row_splits_from_lengths(kept_lengths)[:-1]
    del frequent, in_long_session, row_order, session_codes
    if not kept.any():
        raise DataError(clicks.path, "no session is left after dropping short sessions and "
                                     f"items seen fewer than {protocol.min_item_count} times")

    max_date = int(session_dates[kept].max())
    split_date = max_date - protocol.test_window_ms
    train_order = _by_date(np.flatnonzero(kept & (session_dates < split_date)), session_dates)
    test_order = _by_date(np.flatnonzero(kept & (session_dates > split_date)), session_dates)
    if not len(train_order):
        raise DataError(clicks.path, f"no session is dated before the split date "
                                     f"{_iso(split_date)}: nothing to train on")
    full_train = _gather_sessions(items, starts, kept_lengths, train_order)
    train_raw, first_trimmed_from = _most_recent_samples(full_train, protocol.min_prefix_len,
                                                         fraction)
    test_raw = _gather_sessions(items, starts, kept_lengths, test_order)

    train_codes, raw_item_ids = pd.factorize(train_raw.values)
    train = Sessions((train_codes + 1).astype(np.int32), train_raw.row_splits)
    test_prefixes, test_targets, test_lengths = _test_pairs(
        test_raw, pd.Index(raw_item_ids), protocol.min_prefix_len)
    if not len(test_targets):
        raise DataError(clicks.path, f"no test pair is left from the sessions dated after the "
                                     f"split date {_iso(split_date)}")

    train_lengths = train.lengths
    stats = {
        "rows_read": clicks.rows_read,
        "rows_skipped": clicks.skipped.to_json(),
        "clicks_read": int(len(clicks.item_ids)),
        "sessions_read": num_sessions,
        "sessions_after_filters": int(kept.sum()),
        "max_date": _iso(max_date),
        "split_date": _iso(split_date),
        "sessions_on_split_date": int((kept & (session_dates == split_date)).sum()),
        "full_train_sessions": len(full_train),
        "full_train_samples": augment.count_samples(full_train, protocol.min_prefix_len),
        "fraction": fraction,
        "first_train_session_trimmed_from": first_trimmed_from,
        "min_prefix_len": protocol.min_prefix_len,
        "train_sessions": len(train),
        "train_samples": augment.count_samples(train, protocol.min_prefix_len),
        "test_sessions": len(test_lengths),
        "test_samples": int(len(test_targets)),
        "items": int(len(raw_item_ids)),
        "clicks": int(train_lengths.sum() + test_lengths.sum()),
        "avg_session_length": round(float(train_lengths.sum() + test_lengths.sum())
                                    / (len(train) + len(test_lengths)), 4),
        "max_train_session_length": int(train_lengths.max()),
    }
    return PreparedSplit(train, test_prefixes, test_targets,
                         np.asarray(raw_item_ids, dtype=np.int64), stats)


def _rows_by_session(session_codes, order_keys):
    """Row indices grouped by session, in file order or stably by `order_keys`; None if the
    rows already are grouped in file order."""
    if order_keys is None:
        if not len(session_codes) or (np.diff(session_codes) >= 0).all():
            return None
        return np.argsort(session_codes, kind="stable")
    order = np.argsort(order_keys, kind="stable")
    return order[np.argsort(session_codes[order], kind="stable")]


def _by_date(session_indices, session_dates):
    """Sorts sessions by date; ties keep their order (first row in the file)."""
    return session_indices[np.argsort(session_dates[session_indices], kind="stable")]


def _gather_sessions(values, starts, lengths, session_indices):
    """`Sessions` made of values[starts[i]:starts[i] + lengths[i]] for i in session_indices."""
    lengths = lengths[session_indices]
    row_splits = row_splits_from_lengths(lengths)
    positions = np.repeat(starts[session_indices] - row_splits[:-1], lengths)
    positions += np.arange(row_splits[-1], dtype=np.int64)
    return Sessions(values[positions], row_splits)


def _most_recent_samples(sessions, min_prefix_len, fraction):
    """The sessions holding the last int(n / fraction) of their n samples (step 6).

    Returns (sessions, original length of the first session if it was cut, else None).
    """
    if fraction == 1:
        return sessions, None
    samples = np.maximum(sessions.lengths - min_prefix_len, 0)  # [num_sessions]
    num_kept = int(samples.sum()) // fraction
    if num_kept == 0:
        raise MTDError(f"--fraction={fraction}: 1/{fraction} of the {int(samples.sum())} "
                       "training samples is less than one sample")
    samples_from = np.cumsum(samples[::-1])[::-1]  # [num_sessions]: samples of sessions i..
    first = int(np.flatnonzero(samples_from >= num_kept)[-1])
    # Session `first` contributes its last k samples, i.e. its prefixes of length
    # min_prefix_len .. min_prefix_len + k - 1: its first min_prefix_len + k items.
    from_first = num_kept - (int(samples_from[first + 1]) if first + 1 < len(samples) else 0)
    kept = sessions.take(first, len(sessions))
    first_length = int(kept.lengths[0])
    new_length = min_prefix_len + from_first
    if new_length == first_length:
        return kept, None
    values = np.delete(kept.values, np.arange(new_length, first_length))
    row_splits = kept.row_splits - (first_length - new_length)
    row_splits[0] = 0
    return Sessions(values, row_splits), first_length


def _test_pairs(test_raw, item_index, min_prefix_len):
    """(prefixes, int32 targets, lengths of the sessions used) from raw test sessions (step 8)."""
    ids = item_index.get_indexer(test_raw.values) + 1  # [num_test_clicks], 0 = unknown
    known = ids > 0
    lengths = (np.add.reduceat(known, test_raw.row_splits[:-1], dtype=np.int64)
               if len(test_raw) else np.zeros(0, np.int64))
    long_enough = lengths > min_prefix_len
    ids = ids[known & np.repeat(long_enough, test_raw.lengths)].astype(np.int32)
    lengths = lengths[long_enough]  # [num_sessions]
    prefixes, targets = prefix_target_pairs(
        Sessions(ids, row_splits_from_lengths(lengths)), min_prefix_len)
    return prefixes, targets, lengths


def _iso(milliseconds):
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, tz=datetime.timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds" if milliseconds % 1000
                                                 else "seconds")


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
    if dataset not in PROTOCOLS:
        raise MTDError(f"unknown --dataset {dataset!r}; choose one of {', '.join(PROTOCOLS)}")
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
    split = prepare_split(clicks, PROTOCOLS[dataset], fraction)
    stats = {"dataset": dataset_name(dataset, fraction), "raw_file": os.path.abspath(raw_path),
             "protocol": PROTOCOL_NAME, **split.stats}
    with io_utils.atomic_output_dir(out_dir) as folder:
        formats.write_text_split(folder, split.train, split.test_prefixes, split.test_targets)
        lines = np.char.add(np.arange(1, len(split.raw_item_ids) + 1).astype(str),
                            np.char.add("\t", split.raw_item_ids.astype(str)))
        io_utils.atomic_write_text(os.path.join(folder, ITEMS_FILE),
                                   "item_id\traw_item_id\n" + "\n".join(lines) + "\n")
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
    flags.DEFINE_enum("dataset", None, list(PROTOCOLS), "Which raw log --raw is.")
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
