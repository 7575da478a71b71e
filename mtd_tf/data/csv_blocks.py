"""Reads a delimited log file into checked columns, in parallel blocks of whole lines.

This is the machinery under `raw_logs` (which says how each public log is laid out), kept
apart so that the readers stay short. The file is cut into blocks of whole lines (about
32 MiB) that worker threads read and parse (`csv_block_parser`); the blocks are taken back
in file order, which numbers their lines, so a bad row is reported by its line number in
the file (the header is line 1):

- a row with too few or too many fields, an empty or non-integer id (only ASCII digits are
  accepted: ids are non-negative), an unusable text id, or a date that does not parse
  (`column_parsers` says what each column accepts) stops the read with a
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
import os
import time

import numpy as np
import pyarrow as pa
from absl import logging

from mtd_tf.data import csv_block_parser
from mtd_tf.errors import DataError

_BLOCK_BYTES = 32 << 20
_PROGRESS_EVERY_SECONDS = 5.0
_MAX_EXAMPLE_LINES = 10


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
class Layout:
    """How one raw log is laid out.

    Attributes:
      columns: every column, in file order.
      delimiter: field separator.
      header: True = the first line must be `delimiter.join(columns)`; None = it may be
        there (skipped if its first field is the first column's name).
      int_columns: columns that must hold non-negative integers.
      date_column: column holding the date, or None.
      date_format: how `date_column` is written: a strptime format, or a named format of
        `column_parsers.TIME_FORMATS` (ISO 8601, epoch seconds or milliseconds).
      date_prefix: only the first this many characters of the date are parsed (None: all).
      id_columns: columns holding text ids (`column_parsers.check_ids`), kept as text.
      string_columns: other columns read as text, unchecked.
    """

    columns: tuple
    delimiter: str
    header: object
    int_columns: tuple
    date_column: object = None
    date_format: str = ""
    date_prefix: object = None
    id_columns: tuple = ()
    string_columns: tuple = ()

    @property
    def needed_columns(self):
        date = (self.date_column,) if self.date_column else ()
        return self.int_columns + date + self.id_columns + self.string_columns


def read_columns(path, layout, skip_bad_rows):
    """Parses the whole file; returns ({column: values}, rows_read, SkipReport).

    Int columns come back as int64 NumPy arrays, the date column as int64 milliseconds,
    id and string columns as pyarrow `ChunkedArray`s of text (one chunk per block: 33
    million ids never become Python objects). rows_read counts data rows, bad ones included.
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
            except csv_block_parser.StrayCarriageReturn as error:
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
    columns = {}
    for name in layout.needed_columns:
        if name in layout.id_columns or name in layout.string_columns:
            columns[name] = pa.chunked_array(
                [chunk for part in parts[name] for chunk in part.chunks], type=pa.string())
        else:
            columns[name] = (np.concatenate(parts[name]) if parts[name]
                             else np.zeros(0, np.int64))
    return columns, rows_read, skipped


def header_fields(path, delimiter):
    """The fields of the file's first line (a header naming its columns)."""
    try:
        with open(path, "rb") as handle:
            first_line = handle.readline()
    except OSError as error:
        raise DataError(path, f"cannot be read: {error.strerror or error}") from error
    return _header_text(first_line).split(delimiter)


def _header_text(first_line):
    return first_line.rstrip(b"\r\n").decode("utf-8", errors="replace").lstrip("\ufeff")


def _skip_header(handle, path, layout):
    """Checks the header line, if any; returns (byte offset, line number) of the data."""
    first_line = handle.readline()
    header_text = _header_text(first_line)
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


def _parse_range(path, start, end, layout):
    with open(path, "rb") as handle:
        handle.seek(start)
        block = handle.read(end - start)
    return csv_block_parser.parse_block(block, layout, path)
