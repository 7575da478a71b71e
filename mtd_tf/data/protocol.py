"""The published preprocessing protocol: a raw log's clicks in, a split in internal ids out.

Kept apart from `prepare` (which reads the raw file, writes the dataset folder and is the
CLI) because this is pure array work: a `raw_logs.ClickLog` in, a `PreparedSplit` out. The
protocol's steps, numbered as in the comments below, are described in the docstring of
`mtd_tf/data/prepare.py`, which the CLI's `--help` prints for whoever prepares a dataset.
"""

import dataclasses
import datetime

import numpy as np
import pandas as pd

from mtd_tf import settings
from mtd_tf.data import augment
from mtd_tf.data import raw_logs
from mtd_tf.data.sessions import Sessions
from mtd_tf.data.sessions import prefix_target_pairs
from mtd_tf.data.sessions import row_splits_from_lengths
from mtd_tf.errors import DataError
from mtd_tf.errors import MTDError


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The protocol's options; each public log has its published values (`PROTOCOLS`), and
    `mtd_tf.data.prepare` makes a flag of each field (its help and check are here)."""

    test_days: float = settings.setting(
        7.0, "Test period in days: the sessions dated after the latest session date minus "
        "this are the test set (step 4).",
        check=settings.in_range(0, 36_500, low_open=True))
    min_session_length: int = settings.setting(
        2, "Sessions shorter than this are dropped, before and after the item filter "
        "(step 3).", check=settings.positive_int)
    min_item_count: int = settings.setting(
        5, "Items clicked fewer times than this (minimum item support) are removed (step 3).",
        check=settings.positive_int)
    min_prefix_len: int = settings.setting(
        1, "Shortest prefix of a test pair, recorded as the shortest training prefix of the "
        "dataset (step 8).", check=settings.positive_int)
    fraction: int = settings.setting(
        1, "Keep the most recent 1/fraction of the training samples (1 = all; Yoochoose's "
        "published splits use 64 and 4; step 6).", check=settings.positive_int)

    @property
    def test_window_ms(self):
        """split date = latest session date - this."""
        return round(self.test_days * raw_logs.MS_PER_DAY)


PROTOCOLS = {
    "yoochoose": Protocol(test_days=1.0, fraction=64),
    "diginetica": Protocol(test_days=7.0),
    "retailrocket": Protocol(test_days=7.0, min_session_length=3, min_prefix_len=2),
}


@dataclasses.dataclass(frozen=True)
class PreparedSplit:
    """A split in internal ids, plus the raw id of each internal id and the figures.

    Attributes:
      train: training sessions, oldest first, ids 1..M.
      test_prefixes, test_targets: the test pairs (int32 targets), longest prefix first.
      raw_item_ids: [M]; internal id i + 1 is raw item raw_item_ids[i] (int64 for the
        public logs, str for a log read by `click_log`).
      stats: JSON-ready dict (see `prepare_split`).
    """

    train: Sessions
    test_prefixes: Sessions
    test_targets: np.ndarray
    raw_item_ids: np.ndarray
    stats: dict


def prepare_split(clicks, protocol):
    """Applies the protocol (`mtd_tf.data.prepare` describes it) to a `raw_logs.ClickLog`.

    Args:
      clicks: the raw log's clicks.
      protocol: a `Protocol`.

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
        raise DataError(clicks.path, f"no session is left after dropping sessions shorter "
                                     f"than {protocol.min_session_length} clicks and items "
                                     f"seen fewer than {protocol.min_item_count} times "
                                     "(--min_session_length, --min_item_count)")

    max_date = int(session_dates[kept].max())
    split_date = max_date - protocol.test_window_ms
    train_order = _by_date(np.flatnonzero(kept & (session_dates < split_date)), session_dates)
    test_order = _by_date(np.flatnonzero(kept & (session_dates > split_date)), session_dates)
    if not len(train_order):
        raise DataError(clicks.path, f"no session is dated before the split date "
                                     f"{_iso(split_date)}: nothing to train on (the log "
                                     f"spans less than --test_days={protocol.test_days:g})")
    full_train = _gather_sessions(items, starts, kept_lengths, train_order)
    train_raw, first_trimmed_from = _most_recent_samples(full_train, protocol.min_prefix_len,
                                                         protocol.fraction)
    test_raw = _gather_sessions(items, starts, kept_lengths, test_order)

    train_codes, raw_item_ids = pd.factorize(train_raw.values)
    train = Sessions((train_codes + 1).astype(np.int32), train_raw.row_splits)
    test_prefixes, test_targets, test_lengths = _test_pairs(
        test_raw, pd.Index(raw_item_ids), protocol.min_prefix_len)
    if not len(test_targets):
        raise DataError(clicks.path, f"no test pair is left from the sessions dated after the "
                                     f"split date {_iso(split_date)} (--test_days="
                                     f"{protocol.test_days:g})")

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
        "fraction": protocol.fraction,
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
    raw_item_ids = np.asarray(raw_item_ids)
    if clicks.item_names is not None:
        raw_item_ids = clicks.item_names[raw_item_ids]
    return PreparedSplit(train, test_prefixes, test_targets, raw_item_ids, stats)


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
