"""Readers for the public raw click logs: Yoochoose, Diginetica and RetailRocket.

Each reader turns one log into a `ClickLog`: flat arrays, one entry per click, in the order
that `mtd_tf.data.prepare` needs (see there for the protocol). Here is how each log is laid
out and what its columns mean; `csv_blocks` reads the file, and says which rows are bad and
how they are reported or, with `skip_bad_rows=True`, skipped.
"""

import dataclasses

import numpy as np
import pyarrow.compute as pc

from mtd_tf.data import csv_blocks
from mtd_tf.data.column_parsers import MS_PER_SECOND

MS_PER_DAY = 86_400 * MS_PER_SECOND
# RetailRocket: a visitor's views more than this far apart belong to different sessions.
SESSION_GAP_MS = 30 * 60 * MS_PER_SECOND


@dataclasses.dataclass(frozen=True)
class ClickLog:
    """The clicks of a raw log, one entry per click.

    Attributes:
      session_ids: int64 [num_clicks], the session each click belongs to.
      item_ids: int64 [num_clicks], raw item ids, or codes into `item_names`.
      dates: int64 [num_clicks], milliseconds since 1970-01-01 of the date written on the
        row, read as UTC (SR-GNN's `time.mktime` reads it in local time; the two agree
        wherever the local zone has no daylight saving, as in China where it was run).
      order_keys: int64 [num_clicks] or None; clicks are ordered inside a session by this key
        (stable: ties keep file order), or by file order when None.
      path: the file read.
      rows_read: data rows read, bad ones included (not the header nor empty lines).
      skipped: what was skipped (all zero unless skip_bad_rows).
      item_names: None when `item_ids` are the log's own (integer) ids; else str [codes],
        the log's text id of each code in `item_ids` (`click_log`).
    """

    session_ids: np.ndarray
    item_ids: np.ndarray
    dates: np.ndarray
    order_keys: object
    path: str
    rows_read: int
    skipped: csv_blocks.SkipReport
    item_names: np.ndarray = None


# yoochoose-clicks.dat has no header; SR-GNN's script expects one added by hand
# (session_id,timestamp,item_id,category), so either is accepted. SR-GNN parses
# `timestamp[:19]` (the fraction of a second and the "Z" are ignored).
YOOCHOOSE = csv_blocks.Layout(
    columns=("session_id", "timestamp", "item_id", "category"), delimiter=",", header=None,
    int_columns=("session_id", "item_id"), date_column="timestamp",
    date_format="%Y-%m-%dT%H:%M:%S", date_prefix=19)
DIGINETICA = csv_blocks.Layout(
    columns=("session_id", "user_id", "item_id", "timeframe", "eventdate"), delimiter=";",
    header=True, int_columns=("session_id", "item_id", "timeframe"),
    date_column="eventdate", date_format="%Y-%m-%d")
RETAILROCKET = csv_blocks.Layout(
    columns=("timestamp", "visitorid", "event", "itemid", "transactionid"), delimiter=",",
    header=True, int_columns=("timestamp", "visitorid", "itemid"), string_columns=("event",))


def read_yoochoose(path, skip_bad_rows=False):
    """Reads `yoochoose-clicks.dat`: session_id,timestamp,item_id,category (ISO-8601 time).

    A session's clicks stay in file order (SR-GNN does not sort them); every click carries
    its row's time truncated to the second.
    """
    columns, rows_read, skipped = csv_blocks.read_columns(path, YOOCHOOSE, skip_bad_rows)
    return ClickLog(columns["session_id"], columns["item_id"], columns["timestamp"], None,
                    path, rows_read, skipped)


def read_diginetica(path, skip_bad_rows=False):
    """Reads `train-item-views.csv` (`;`-separated, header session_id;user_id;item_id;
    timeframe;eventdate). Clicks are ordered inside a session by `timeframe` (SR-GNN sorts
    them stably by it); the date of a click is its `eventdate` at 00:00."""
    columns, rows_read, skipped = csv_blocks.read_columns(path, DIGINETICA, skip_bad_rows)
    return ClickLog(columns["session_id"], columns["item_id"], columns["eventdate"],
                    columns["timeframe"], path, rows_read, skipped)


def read_retailrocket(path, skip_bad_rows=False):
    """Reads RetailRocket `events.csv` (timestamp,visitorid,event,itemid,transactionid) and
    cuts each visitor's `view` events into sessions.

    Other events are dropped. A visitor's views, sorted by timestamp (ties keep file order),
    start a new session after a gap of more than 30 minutes (`SESSION_GAP_MS`; a gap of
    exactly 30:00.000 stays in the session). The clicks come back sorted by (visitor,
    time), so session ids number sessions by (visitor, start) and a session's last click is
    its latest view; dates are the events' millisecond timestamps.
    """
    columns, rows_read, skipped = csv_blocks.read_columns(path, RETAILROCKET, skip_bad_rows)
    is_view = pc.equal(columns["event"], "view").to_numpy(zero_copy_only=False)
    times, visitors, items = (columns[name][is_view]
                              for name in ("timestamp", "visitorid", "itemid"))
    order = np.argsort(times, kind="stable")
    order = order[np.argsort(visitors[order], kind="stable")]  # [num_views], by (visitor, time)
    times, visitors, items = times[order], visitors[order], items[order]
    new_session = np.ones(len(order), dtype=bool)
    new_session[1:] = (visitors[1:] != visitors[:-1]) | (np.diff(times) > SESSION_GAP_MS)
    session_ids = np.cumsum(new_session) - 1
    return ClickLog(session_ids, items, times, None, path, rows_read, skipped)


READERS = {"yoochoose": read_yoochoose, "diginetica": read_diginetica,
           "retailrocket": read_retailrocket}
