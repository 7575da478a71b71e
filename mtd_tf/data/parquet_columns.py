"""Reads named columns of a Parquet click log into checked columns, bad rows by row number.

The Parquet counterpart of `csv_blocks` (a delimited log): pyarrow reads the wanted
columns (in parallel, column-wise), and each is checked and converted whole by
`column_parsers`, so a value means the same in either file type. Ids may be stored as text
or integers (integers are read as their decimal text); times as Parquet timestamps or
dates (whose type says what they mean), integers or decimals (epoch seconds or
milliseconds, as the time format says), or text. A row holding a null or a bad value is
row N of the file (1-based; Parquet has no lines): it stops the read with
`DataError(path, problem, record=N)`, or with `skip_bad_rows` is dropped and counted in a
`csv_blocks.SkipReport`.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mtd_tf.data import column_parsers
from mtd_tf.data.csv_blocks import SkipReport
from mtd_tf.errors import DataError

# Parquet time units -> (multiply, floor-divide) to milliseconds.
_TO_MS = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}


def column_names(path):
    """The file's column names; a file that is not Parquet is a `DataError`."""
    try:
        return pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(path, f"cannot be read as Parquet: {error}") from None


def read_columns(path, id_columns, time_column, time_format, skip_bad_rows):
    """Reads and checks the named columns; returns ({column: values}, rows_read, SkipReport).

    Args:
      path: the Parquet file.
      id_columns: columns holding text ids; they come back as pyarrow string
        `ChunkedArray`s (`column_parsers.check_ids`).
      time_column: column holding the click's time; it comes back as int64 milliseconds.
      time_format: a key of `column_parsers.TIME_FORMATS`, for numbers and text.
      skip_bad_rows: drop bad rows instead of stopping at the first one.
    """
    try:
        table = pq.read_table(path, columns=[*id_columns, time_column])
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(path, f"cannot be read as Parquet: {error}") from None
    keep = np.ones(table.num_rows, dtype=bool)
    skipped = SkipReport()
    first_bad = None  # (row index, problem) of the earliest bad row
    columns = {}
    for name in (*id_columns, time_column):
        raw = table.column(name)
        if name == time_column:
            values, bad, describe = _times(path, name, raw, time_format)
        else:
            values, bad, describe = _ids(path, name, raw)
        if bad is not None:
            rows = np.flatnonzero(bad & keep)
            if len(rows):
                problem = f"{'unparsable' if name == time_column else 'bad'} {name}"
                skipped.add(problem, len(rows), rows + 1)
                if first_bad is None or rows[0] < first_bad[0]:
                    first_bad = (int(rows[0]), f"{problem}: {describe(int(rows[0]))}")
            keep &= ~bad
        columns[name] = values
    if first_bad is not None and not skip_bad_rows:
        raise DataError(path, first_bad[1], record=first_bad[0] + 1)
    if not keep.all():
        mask = pa.array(keep)
        columns = {name: (values[keep] if isinstance(values, np.ndarray)
                          else values.filter(mask)) for name, values in columns.items()}
    return columns, table.num_rows, skipped


def _ids(path, name, raw):
    """(string ChunkedArray, bad mask or None, row -> description) of an id column."""
    if pa.types.is_dictionary(raw.type):
        raw = raw.cast(raw.type.value_type)
    if not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)
            or pa.types.is_integer(raw.type)):
        raise DataError(path, f"column {name!r} holds {raw.type}; ids must be text or integers")
    strings = raw.cast(pa.string())
    null = pc.is_null(strings).to_numpy(zero_copy_only=False)
    strings = pc.fill_null(strings, "")
    bad = column_parsers.check_ids(strings) if not pa.types.is_integer(raw.type) else None
    bad = _either(bad, null)
    return strings, bad, lambda row: column_parsers.describe_bad_id(
        name, column_parsers.text_at(strings, row))


def _times(path, name, raw, time_format):
    """(int64 milliseconds, bad mask or None, row -> description) of the time column."""
    null = pc.is_null(raw).to_numpy(zero_copy_only=False)
    if pa.types.is_date(raw.type):
        raw = raw.cast(pa.timestamp("ms"))
    if pa.types.is_timestamp(raw.type):
        multiply, divide = _TO_MS[raw.type.unit]
        ticks = pc.fill_null(raw.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        return (np.floor_divide(ticks * multiply, divide), _either(None, null),
                lambda row: f"the {name} field is empty")
    if pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type):
        if time_format not in (column_parsers.EPOCH_SECONDS, column_parsers.EPOCH_MILLISECONDS):
            raise DataError(path, f"column {name!r} holds numbers ({raw.type}); give their "
                                  "unit with --time_format=s or --time_format=ms")
        numbers = pc.fill_null(raw.cast(pa.float64()), 0).to_numpy(zero_copy_only=False)
        scale = column_parsers.MS_PER_SECOND if time_format == column_parsers.EPOCH_SECONDS else 1
        negative = numbers < 0
        return (np.round(numbers * scale).astype(np.int64), _either(negative, null),
                lambda row: (f"the {name} field is empty" if null[row]
                             else f"{name} {numbers[row]!r} is negative"))
    if not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)):
        raise DataError(path, f"column {name!r} holds {raw.type}; times must be timestamps, "
                              "dates, numbers or text")
    strings = pc.fill_null(raw.cast(pa.string()), "")
    millis, bad = column_parsers.parse_times(strings, time_format)
    return millis, _either(bad, null), lambda row: column_parsers.describe_bad_time(
        name, column_parsers.text_at(strings, row), time_format)


def _either(bad, null):
    """The union of two bad-row masks (None = no bad row), or None."""
    union = null if bad is None else bad | null
    return union if union.any() else None
