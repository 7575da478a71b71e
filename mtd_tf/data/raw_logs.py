"""Readers for the public raw click logs: Yoochoose, Diginetica and RetailRocket.

Each reader turns one log into a `ClickLog`: flat arrays, one entry per click, in the order
that `mtd_tf.data.prepare` needs (see there for the protocol). The file is cut into blocks of
whole lines (about 32 MiB) that worker threads read and parse with pyarrow's CSV reader,
every field as a string; ids and dates are then checked and converted column-wise, so no
Python code runs per row. The blocks are taken back in file order, which numbers their
lines, so a bad row is reported by its line number in the file (the header is line 1):

- a row with too few or too many fields, an empty or non-integer id (only ASCII digits are
  accepted: ids are non-negative), or a date that does not parse stops the read with a
  `DataError(path, problem, record=line_number)`, the first one in the file;
- with `skip_bad_rows=True` such rows are dropped instead, and counted per problem in a
  `SkipReport` (with the first few line numbers) that the caller logs and records.

Empty lines are ignored, as Python's `csv` module (used by SR-GNN's preprocess.py) ignores
them. Quote characters have no special meaning (the public logs contain none): a quoted id
is reported as a non-integer id.
"""

import collections
import concurrent.futures
import dataclasses
import io
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from absl import logging

from mtd_tf.errors import DataError

MS_PER_SECOND = 1000
MS_PER_DAY = 86_400 * MS_PER_SECOND
# RetailRocket: a visitor's views more than this far apart belong to different sessions.
SESSION_GAP_MS = 30 * 60 * MS_PER_SECOND
_BLOCK_BYTES = 32 << 20
_PROGRESS_EVERY_SECONDS = 5.0
_MAX_EXAMPLE_LINES = 10
# Longer digit strings could overflow int64 (ids and millisecond timestamps are far shorter).
_MAX_INT_DIGITS = 18


@dataclasses.dataclass(frozen=True)
class ClickLog:
    """The clicks of a raw log, one entry per click.

    Attributes:
      session_ids: int64 [num_clicks], the session each click belongs to.
      item_ids: int64 [num_clicks], raw item ids.
      dates: int64 [num_clicks], milliseconds since 1970-01-01 of the date written on the
        row, read as UTC (SR-GNN's `time.mktime` reads it in local time; the two agree
        wherever the local zone has no daylight saving, as in China where it was run).
      order_keys: int64 [num_clicks] or None; clicks are ordered inside a session by this key
        (stable: ties keep file order), or by file order when None.
      path: the file read.
      rows_read: data rows read, bad ones included (not the header nor empty lines).
      skipped: what was skipped (all zero unless skip_bad_rows).
    """

    session_ids: np.ndarray
    item_ids: np.ndarray
    dates: np.ndarray
    order_keys: object
    path: str
    rows_read: int
    skipped: "SkipReport"


@dataclasses.dataclass
class SkipReport:
    """Bad rows dropped under skip_bad_rows: counts per problem and the first line numbers."""

    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    first_lines: list = dataclasses.field(default_factory=list)

    @property
    def total(self):
        return sum(self.counts.values())

    def add(self, problem_kind, count, lines):
        self.counts[problem_kind] += count
        self.first_lines.extend(int(line) for line in lines[:_MAX_EXAMPLE_LINES])
        self.first_lines = sorted(self.first_lines)[:_MAX_EXAMPLE_LINES]

    def to_json(self):
        return {"total": self.total, "by_problem": dict(sorted(self.counts.items())),
                "first_lines": self.first_lines}


@dataclasses.dataclass(frozen=True)
class _Layout:
    """How one raw log is laid out.

    Attributes:
      columns: every column, in file order.
      delimiter: field separator.
      header: True = the first line must be `delimiter.join(columns)`; None = it may be
        there (skipped if its first field is the first column's name).
      int_columns: columns that must hold non-negative integers.
      date_column: column holding the date, or None.
      date_format: strptime format of `date_column`.
      date_prefix: only the first this many characters of the date are parsed (None: all).
      string_columns: other columns read as strings.
    """

    columns: tuple
    delimiter: str
    header: object
    int_columns: tuple
    date_column: object = None
    date_format: str = ""
    date_prefix: object = None
    string_columns: tuple = ()

    @property
    def needed_columns(self):
        date = (self.date_column,) if self.date_column else ()
        return self.int_columns + date + self.string_columns


# yoochoose-clicks.dat has no header; SR-GNN's script expects one added by hand
# (session_id,timestamp,item_id,category), so either is accepted. SR-GNN parses
# `timestamp[:19]` (the fraction of a second and the "Z" are ignored).
YOOCHOOSE = _Layout(columns=("session_id", "timestamp", "item_id", "category"), delimiter=",",
                    header=None, int_columns=("session_id", "item_id"), date_column="timestamp",
                    date_format="%Y-%m-%dT%H:%M:%S", date_prefix=19)
DIGINETICA = _Layout(columns=("session_id", "user_id", "item_id", "timeframe", "eventdate"),
                     delimiter=";", header=True,
                     int_columns=("session_id", "item_id", "timeframe"),
                     date_column="eventdate", date_format="%Y-%m-%d")
RETAILROCKET = _Layout(columns=("timestamp", "visitorid", "event", "itemid", "transactionid"),
                       delimiter=",", header=True, int_columns=("timestamp", "visitorid", "itemid"),
                       string_columns=("event",))


def read_yoochoose(path, skip_bad_rows=False):
    """Reads `yoochoose-clicks.dat`: session_id,timestamp,item_id,category (ISO-8601 time).

    A session's clicks stay in file order (SR-GNN does not sort them); every click carries
    its row's time truncated to the second.
    """
    columns, rows_read, skipped = _read_columns(path, YOOCHOOSE, skip_bad_rows)
    return ClickLog(columns["session_id"], columns["item_id"], columns["timestamp"], None,
                    path, rows_read, skipped)


def read_diginetica(path, skip_bad_rows=False):
    """Reads `train-item-views.csv` (`;`-separated, header session_id;user_id;item_id;
    timeframe;eventdate). Clicks are ordered inside a session by `timeframe` (SR-GNN sorts
    them stably by it); the date of a click is its `eventdate` at 00:00."""
    columns, rows_read, skipped = _read_columns(path, DIGINETICA, skip_bad_rows)
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
    columns, rows_read, skipped = _read_columns(path, RETAILROCKET, skip_bad_rows)
    is_view = columns["event"]
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


def _read_columns(path, layout, skip_bad_rows):
    """Parses the whole file; returns ({column: numpy array}, rows_read, SkipReport).

    Int columns come back as int64, the date column as int64 milliseconds, RetailRocket's
    `event` as a bool array (True = "view"). rows_read counts data rows, bad ones included.
    """
    path = os.fspath(path)
    try:
        total_bytes = os.path.getsize(path)
        handle = open(path, "rb")
    except OSError as error:
        raise DataError(path, f"cannot be read: {error.strerror or error}") from error
    parts = collections.defaultdict(list)
    skipped = SkipReport()
    rows_read = 0
    workers = max(1, min(4, os.cpu_count() or 1))
    started = last_report = time.monotonic()
    with handle, concurrent.futures.ThreadPoolExecutor(workers) as pool:
        data_start, next_line_number = _skip_header(handle, path, layout)
        ranges = _block_ranges(handle, data_start, total_bytes)
        pending = collections.deque()  # at most workers + 1 blocks in memory at once
        while True:
            while len(pending) < workers + 1:
                byte_range = next(ranges, None)
                if byte_range is None:
                    break
                pending.append((byte_range, pool.submit(_parse_range, path, *byte_range, layout)))
            if not pending:
                break
            (_, block_end), future = pending.popleft()
            try:
                columns, bad_rows, num_lines, num_rows = future.result()
            except _StrayCarriageReturn as error:
                raise DataError(path, str(error), record=next_line_number + error.line - 1)
            rows_read += num_rows
            bad_rows = [dataclasses.replace(bad, lines=bad.lines + next_line_number - 1)
                        for bad in bad_rows]  # block lines -> file lines
            next_line_number += num_lines
            if bad_rows and not skip_bad_rows:
                first = min(bad_rows, key=lambda bad: bad.lines[0])
                raise DataError(path, f"{first.kind}: {first.detail}", record=int(first.lines[0]))
            for bad in bad_rows:
                skipped.add(bad.kind, len(bad.lines), bad.lines)
            for name, values in columns.items():
                parts[name].append(values)
            if time.monotonic() - last_report > _PROGRESS_EVERY_SECONDS:
                last_report = time.monotonic()
                logging.info("%s: read %.0f%% (%d of %d MiB, %d rows)", path,
                             100.0 * block_end / max(total_bytes, 1), block_end >> 20,
                             total_bytes >> 20, rows_read)
    logging.info("%s: read %d rows in %.1f s", path, rows_read, time.monotonic() - started)
    if skipped.total:
        counts = ", ".join(f"{count} {kind}" for kind, count in sorted(skipped.counts.items()))
        logging.warning("%s: skipped %d bad rows (%s; first at lines %s)", path, skipped.total,
                        counts, ", ".join(map(str, skipped.first_lines)))
    dtypes = {name: (bool if name == "event" else np.int64) for name in layout.needed_columns}
    columns = {name: (np.concatenate(parts[name]) if parts[name] else np.zeros(0, dtypes[name]))
               for name in layout.needed_columns}
    return columns, rows_read, skipped


def _skip_header(handle, path, layout):
    """Checks the header line, if any; returns (byte offset, line number) of the data."""
    first_line = handle.readline()
    header_text = first_line.rstrip(b"\r\n").decode("utf-8", errors="replace").lstrip("\ufeff")
    expected_header = layout.delimiter.join(layout.columns)
    if layout.header is True:
        if header_text != expected_header:
            raise DataError(path, f"expected the header {expected_header!r}, found "
                                  f"{header_text[:200]!r}", record=1)
        return len(first_line), 2
    if layout.header is None and header_text.split(layout.delimiter)[0] == layout.columns[0]:
        return len(first_line), 2
    return 0, 1


def _block_ranges(handle, start, total_bytes):
    """Yields (start, end) byte offsets of blocks of whole lines, about _BLOCK_BYTES each.

    Only a few bytes around each cut are read here: the workers read the blocks, so the
    main thread (which holds the GIL) does almost nothing per block.
    """
    while start < total_bytes:
        end = min(start + _BLOCK_BYTES, total_bytes)
        handle.seek(end)
        while end < total_bytes:  # move the cut to just after the next newline
            piece = handle.read(1 << 16)
            newline = piece.find(b"\n")
            if newline >= 0:
                end += newline + 1
                break
            end += len(piece)
        yield start, end
        start = end


class _StrayCarriageReturn(Exception):
    """A lone carriage return at `line` of a block (the CSV parser would end a row there)."""

    def __init__(self, line):
        super().__init__("carriage return inside a line (lines must end with \\n or \\r\\n)")
        self.line = line


def _parse_range(path, start, end, layout):
    with open(path, "rb") as handle:
        handle.seek(start)
        block = handle.read(end - start)
    return _parse_block(block, layout, path)


@dataclasses.dataclass(frozen=True)
class _BadRows:
    """Rows of one block with the same problem: kind, int64 line numbers (sorted), and a
    description of the first one."""

    kind: str
    lines: np.ndarray
    detail: str


def _parse_block(block, layout, path):
    """Parses whole lines; returns ({column: good rows' values}, [_BadRows], lines, rows).

    Line numbers in _BadRows count from 1 at the block's first line; lines: the block's
    line count; rows: its non-empty lines. A line with several problems counts once, under
    the first (wrong field count, then the columns in `layout.needed_columns` order).
    """
    wrong_field_counts = []

    def on_invalid_row(row):
        wrong_field_counts.append((row.number, row.actual_columns, row.text))
        return "skip"

    try:  # a Python row handler slows parsing down by half: only use it when needed
        table = _read_csv(block, layout)
    except pa.ArrowInvalid:
        table = _read_csv(block, layout, on_invalid_row)
    # numpy releases the GIL where bytes.count would hold it.
    num_lines = int(np.count_nonzero(np.frombuffer(block, np.uint8) == ord("\n")))
    num_lines += not block.endswith(b"\n")
    if table.num_rows + len(wrong_field_counts) != num_lines:
        _raise_for_stray_carriage_return(block, path)
    non_empty = _non_empty_lines(block, num_lines)  # [num_lines]
    bad_rows = []
    if wrong_field_counts:
        number, actual, text = wrong_field_counts[0]
        lines = np.array([number for number, _, _ in wrong_field_counts], dtype=np.int64)
        non_empty[lines - 1] = False  # counted as bad rows, not as empty lines
        bad_rows.append(_BadRows(
            "wrong number of fields", lines,
            f"expected {len(layout.columns)} fields separated by {layout.delimiter!r}, found "
            f"{actual} in {_clip(text)!r}"))
    # The table holds every line but those with a wrong field count, in order.
    line_of_row = np.delete(np.arange(num_lines, dtype=np.int64),
                            [number - 1 for number, _, _ in wrong_field_counts])
    keep = non_empty[line_of_row]  # [num_rows]; empty lines are ignored, not bad
    columns = {}
    for name in layout.needed_columns:
        raw = table.column(name)
        if name == layout.date_column:
            values, problem = _parse_dates(raw, layout)
            kind = f"unparsable {name}"
        elif name in layout.int_columns:
            values, problem = _parse_ints(raw)
            kind = f"bad {name}"
        else:  # RetailRocket's event: only views are kept
            values, problem = pc.equal(raw, "view").to_numpy(zero_copy_only=False), None
        if problem is not None:
            bad = np.flatnonzero(problem & keep)
            if len(bad):
                detail = _describe_bad_value(name, raw[int(bad[0])].as_py(), layout)
                bad_rows.append(_BadRows(kind, line_of_row[bad] + 1, detail))
            keep &= ~problem
        columns[name] = values
    num_rows = int(non_empty.sum()) + len(wrong_field_counts)
    return ({name: values[keep] for name, values in columns.items()}, bad_rows, num_lines,
            num_rows)


def _read_csv(block, layout, on_invalid_row=None):
    """Every needed column as strings; rows with a wrong field count go to on_invalid_row
    (or raise ArrowInvalid when it is None)."""
    # use_threads=False keeps the parser serial, so it knows each invalid row's line number
    # (the blocks themselves are parsed in parallel).
    return pa_csv.read_csv(
        io.BytesIO(block),
        read_options=pa_csv.ReadOptions(column_names=list(layout.columns), use_threads=False,
                                        block_size=max(len(block), 1 << 20)),
        parse_options=pa_csv.ParseOptions(delimiter=layout.delimiter, quote_char=False,
                                          ignore_empty_lines=False,
                                          invalid_row_handler=on_invalid_row),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in layout.needed_columns},
            include_columns=list(layout.needed_columns), null_values=[],
            strings_can_be_null=False, check_utf8=False))


def _parse_ints(strings):
    """(int64 values with 0 where bad, bool mask of bad) from a string column."""
    digits_only = pc.and_(pc.ascii_is_decimal(strings),
                          pc.less_equal(pc.binary_length(strings), _MAX_INT_DIGITS))
    good = digits_only.to_numpy(zero_copy_only=False)
    if good.all():
        return pc.cast(strings, pa.int64()).to_numpy(zero_copy_only=False), None
    cleaned = pc.if_else(digits_only, strings, "0")
    return pc.cast(cleaned, pa.int64()).to_numpy(zero_copy_only=False), ~good


def _parse_dates(strings, layout):
    """(int64 milliseconds, bool mask of bad) from a date string column (naive = UTC)."""
    if layout.date_prefix is not None:
        strings = pc.utf8_slice_codeunits(strings, 0, layout.date_prefix)
    parsed = pc.strptime(strings, format=layout.date_format, unit="s", error_is_null=True)
    bad = pc.is_null(parsed).to_numpy(zero_copy_only=False)
    seconds = pc.fill_null(pc.cast(parsed, pa.int64()), 0).to_numpy(zero_copy_only=False)
    return seconds * MS_PER_SECOND, (bad if bad.any() else None)


def _raise_for_stray_carriage_return(block, path):
    """The CSV parser also ends lines at a lone carriage return; we count only newlines."""
    text = np.frombuffer(block, dtype=np.uint8)
    returns = np.flatnonzero(text == ord("\r"))
    stray = returns[(returns + 1 == len(text)) | (text[np.minimum(returns + 1, len(text) - 1)]
                                                  != ord("\n"))]
    if not len(stray):
        raise AssertionError(f"{path}: a block's lines do not parse one to a row")
    raise _StrayCarriageReturn(1 + int(np.count_nonzero(text[:stray[0]] == ord("\n"))))


def _non_empty_lines(block, num_lines):
    """bool [num_lines]: False for empty lines (nothing, or a lone carriage return)."""
    if not (block.startswith((b"\n", b"\r\n")) or b"\n\n" in block or b"\n\r\n" in block
            or block.endswith(b"\n\r")):
        return np.ones(num_lines, dtype=bool)
    text = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(text == ord("\n"))
    if len(ends) < num_lines:  # the last line has no newline
        ends = np.append(ends, len(text))
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts
    lone_return = (lengths == 1) & (text[np.minimum(starts, len(text) - 1)] == ord("\r"))
    return (lengths > 0) & ~lone_return


def _describe_bad_value(name, value, layout):
    if value == "":
        return f"the {name} field is empty"
    if name != layout.date_column:
        return f"{name} {_clip(value)!r} is not a non-negative integer"
    if layout.date_prefix is None:
        return f"{name} {_clip(value)!r} does not parse as {layout.date_format!r}"
    return (f"{name} {_clip(value)!r}: its first {layout.date_prefix} characters do not parse "
            f"as {layout.date_format!r}")


def _clip(text, limit=80):
    return text if len(text) <= limit else text[:limit - 3] + "..."
