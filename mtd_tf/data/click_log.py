"""Reads any click log with named columns (a shop's own) into a `raw_logs.ClickLog`.

A CSV (`,`), TSV (tab) or Parquet file with one click per row and, among any others, a
column for the session id, one for the click's time and one for the item id
(`ClickLogFormat` names them; `mtd_tf.data.prepare --format=clicks` makes a flag of each
field). How it is read, so that the published protocol applies to it as to the public
logs:

- Ids are text, compared as written ("07" and "7" are two items); an item's id is written
  to `items.tsv` as it is, so it must be non-empty with no spaces around it and no tab
  or line break inside. Integer ids in a Parquet file are read as their decimal text.
- Times: `--time_format` says how text (and Parquet numbers) are written: ISO 8601 (a
  date, or a date and time, optionally with fractions of a second and `Z` or an offset;
  no offset is read as UTC), or seconds or milliseconds since 1970-01-01 UTC. Parquet
  timestamp and date columns are read by their type.
- A session's clicks are put in time order (equal times keep file order), and a
  session's date is its latest click; sessions keep the order of their first rows in the
  file (the protocol's tie rule for equal dates).
- A CSV or TSV file's first line names its columns; fields are not quoted (a quote is an
  ordinary character, so a field cannot hold the separator). A bad row is reported by its
  line number (the header is line 1), a Parquet file's by its row number (1-based).
"""

import dataclasses
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtd_tf import settings
from mtd_tf.data import column_parsers
from mtd_tf.data import csv_blocks
from mtd_tf.data import parquet_columns
from mtd_tf.data import raw_logs
from mtd_tf.errors import ConfigError
from mtd_tf.errors import DataError

AUTO = "auto"
CSV, TSV, PARQUET = "csv", "tsv", "parquet"
_DELIMITERS = {CSV: ",", TSV: "\t"}
_FILE_TYPES_BY_EXTENSION = {".csv": CSV, ".tsv": TSV, ".tab": TSV, ".parquet": PARQUET,
                            ".pq": PARQUET}


@dataclasses.dataclass(frozen=True)
class ClickLogFormat:
    """How a click log with named columns is laid out."""

    file_type: str = settings.setting(
        AUTO, "File type of --raw: csv, tsv or parquet; auto = by its extension (.csv; .tsv "
        "or .tab; .parquet or .pq).", choices=(AUTO, CSV, TSV, PARQUET))
    session_column: str = settings.setting(
        "session_id", "Column holding the session id (text; rows with the same id form one "
        "session).")
    time_column: str = settings.setting(
        "timestamp", "Column holding the click's time (see --time_format).")
    item_column: str = settings.setting(
        "item_id", "Column holding the item id (text, written to items.tsv as it is).")
    time_format: str = settings.setting(
        column_parsers.ISO_8601, "How --time_column's text (or Parquet numbers) is written: "
        + "; ".join(f"{name} = {description}" for name, description
                    in column_parsers.TIME_FORMATS.items())
        + ". Parquet timestamp and date columns are read by their type.",
        choices=tuple(column_parsers.TIME_FORMATS))

    @property
    def columns(self):
        return (self.session_column, self.time_column, self.item_column)


def file_type_of(path, log_format):
    """The file type `log_format` names, or the one `path`'s extension says."""
    if log_format.file_type != AUTO:
        return log_format.file_type
    extension = os.path.splitext(path)[1].lower()
    if extension not in _FILE_TYPES_BY_EXTENSION:
        raise ConfigError(f"--raw {path}: cannot tell its file type from the extension "
                          f"{extension or '(none)'!r}; give --file_type=csv, tsv or parquet")
    return _FILE_TYPES_BY_EXTENSION[extension]


def read_click_log(path, log_format, skip_bad_rows=False):
    """Reads the log at `path` as `log_format` (a `ClickLogFormat`) says.

    Returns:
      `raw_logs.ClickLog` with sessions numbered by first row, clicks grouped by session
      and in time order (so `order_keys` is None), and `item_names` the text ids.

    Raises:
      ConfigError: two of the columns are the same, or the file type is unknown.
      DataError: naming the file (and the line or row): a column is missing, or a row is
        bad (unless skip_bad_rows).
    """
    settings.check_fields(log_format)
    if len(set(log_format.columns)) < 3:
        raise ConfigError(f"--session_column, --time_column and --item_column must name three "
                          f"different columns, got {', '.join(log_format.columns)}")
    file_type = file_type_of(path, log_format)
    id_columns = (log_format.session_column, log_format.item_column)
    if file_type == PARQUET:
        _check_columns(path, parquet_columns.column_names(path), log_format, record=None)
        columns, rows_read, skipped = parquet_columns.read_columns(
            path, id_columns, log_format.time_column, log_format.time_format, skip_bad_rows)
    else:
        delimiter = _DELIMITERS[file_type]
        header = csv_blocks.header_fields(path, delimiter)
        _check_columns(path, header, log_format, record=1)
        layout = csv_blocks.Layout(
            columns=tuple(header), delimiter=delimiter, header=True, int_columns=(),
            date_column=log_format.time_column, date_format=log_format.time_format,
            id_columns=id_columns)
        columns, rows_read, skipped = csv_blocks.read_columns(path, layout, skip_bad_rows)
    session_codes, _ = _encode(columns[log_format.session_column])
    item_codes, item_names = _encode(columns[log_format.item_column])
    item_names = item_names.to_numpy(zero_copy_only=False)  # M strings, not one per click
    times = columns[log_format.time_column]
    order = _by_session_then_time(session_codes, times)
    if order is not None:
        session_codes, item_codes, times = session_codes[order], item_codes[order], times[order]
    return raw_logs.ClickLog(session_codes, item_codes, times, None, path, rows_read, skipped,
                             item_names=item_names)


def _check_columns(path, names, log_format, record):
    """Each of the three columns must appear exactly once among `names`."""
    flag_of = {log_format.session_column: "session_column",
               log_format.time_column: "time_column", log_format.item_column: "item_column"}
    for column in log_format.columns:
        count = names.count(column)
        if count == 1:
            continue
        if count > 1:
            raise DataError(path, f"column {column!r} appears {count} times", record=record)
        shown = ", ".join(repr(name) for name in names[:20]) + (", ..." if len(names) > 20
                                                               else "")
        quoted = any(len(name) > 1 and name[0] == name[-1] == '"' for name in names)
        hint = (" (fields are read without unquoting: write the log without quotes)"
                if quoted else "")
        raise DataError(path, f"no column {column!r} (--{flag_of[column]}); the columns are "
                              f"{shown}{hint}", record=record)


def _encode(strings):
    """(int64 codes numbering the values by first appearance, pyarrow [codes] the values)."""
    if not strings.num_chunks:
        return np.zeros(0, np.int64), pa.array([], pa.string())
    encoded = pc.dictionary_encode(strings)
    # pyarrow encodes the chunks with one memo and gives each the whole dictionary; should
    # a version give each chunk its own, unify them (slower: it remaps the indices).
    dictionary = encoded.chunk(0).dictionary
    if not all(chunk.dictionary.equals(dictionary) for chunk in encoded.chunks[1:]):
        encoded = pa.table({"ids": encoded}).unify_dictionaries().column("ids")
        dictionary = encoded.chunk(0).dictionary
    codes = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False)
                            for chunk in encoded.chunks]).astype(np.int64)
    return codes, dictionary


def _by_session_then_time(session_codes, times):
    """Row order grouping sessions (by first row) with their clicks in time order, stable;
    None when the rows already are in that order (a log written session by session)."""
    same_session = np.diff(session_codes) == 0  # [num_clicks - 1]
    if (np.diff(session_codes) >= 0).all() and (np.diff(times)[same_session] >= 0).all():
        return None
    return np.lexsort((times, session_codes))  # stable: equal times keep file order
