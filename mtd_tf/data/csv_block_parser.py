"""Parses one block of whole lines of a log, laid out as a `csv_blocks.Layout`, into columns.

pyarrow's CSV reader reads every field as a string; ids and dates (int64 milliseconds) are
then checked and converted column-wise (`column_parsers`), so no Python code runs per row.
Kept apart from `csv_blocks`, which cuts the file and puts the blocks back in order,
because this part sees only one block's bytes (it runs in worker threads): its line
numbers count from the block's first line.
"""

import dataclasses
import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from mtd_tf.data import column_parsers


class StrayCarriageReturn(Exception):
    """A lone carriage return at `line` of a block (the CSV parser would end a row there)."""

    def __init__(self, line):
        super().__init__("carriage return inside a line (lines must end with \\n or \\r\\n)")
        self.line = line


@dataclasses.dataclass(frozen=True)
class BadRows:
    """Rows of one block with the same problem: kind, int64 line numbers (sorted), and a
    description of the first one."""

    kind: str
    lines: np.ndarray
    detail: str


def parse_block(block, layout, path):
    """Parses whole lines; returns ({column: good rows' values}, [BadRows], lines, rows).

    Line numbers in BadRows count from 1 at the block's first line; lines: the block's
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
        bad_rows.append(BadRows(
            "wrong number of fields", lines,
            f"expected {len(layout.columns)} fields separated by {layout.delimiter!r}, found "
            f"{actual} in {column_parsers.clip(text)!r}"))
    # The table holds every line but those with a wrong field count, in order.
    line_of_row = np.delete(np.arange(num_lines, dtype=np.int64),
                            [number - 1 for number, _, _ in wrong_field_counts])
    keep = non_empty[line_of_row]  # [num_rows]; empty lines are ignored, not bad
    columns = {}
    for name in layout.needed_columns:
        raw = table.column(name)
        values, problem, kind, describe = _parse_column(name, raw, layout)
        if problem is not None:
            bad = np.flatnonzero(problem & keep)
            if len(bad):
                detail = describe(column_parsers.text_at(raw, int(bad[0])))
                bad_rows.append(BadRows(kind, line_of_row[bad] + 1, detail))
            keep &= ~problem
        columns[name] = values
    num_rows = int(non_empty.sum()) + len(wrong_field_counts)
    if not keep.all():
        mask = pa.array(keep)
        columns = {name: (values[keep] if isinstance(values, np.ndarray)
                          else values.filter(mask)) for name, values in columns.items()}
    return columns, bad_rows, num_lines, num_rows


def _parse_column(name, raw, layout):
    """(values, bad mask or None, problem kind, value -> description) of one column.

    Int and date columns become int64 NumPy arrays (dates in milliseconds); id and string
    columns stay pyarrow strings, which the caller encodes or compares without Python
    objects per row.
    """
    if name == layout.date_column:
        values, problem = column_parsers.parse_times(raw, layout.date_format, layout.date_prefix)
        return values, problem, f"unparsable {name}", lambda value: (
            column_parsers.describe_bad_time(name, value, layout.date_format,
                                             layout.date_prefix))
    if name in layout.int_columns:
        values, problem = column_parsers.parse_ints(raw)
        return values, problem, f"bad {name}", lambda value: (
            column_parsers.describe_bad_int(name, value))
    if name in layout.id_columns:
        return raw, column_parsers.check_ids(raw), f"bad {name}", lambda value: (
            column_parsers.describe_bad_id(name, value))
    return raw, None, None, None


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


def _raise_for_stray_carriage_return(block, path):
    """The CSV parser also ends lines at a lone carriage return; we count only newlines."""
    text = np.frombuffer(block, dtype=np.uint8)
    returns = np.flatnonzero(text == ord("\r"))
    stray = returns[(returns + 1 == len(text)) | (text[np.minimum(returns + 1, len(text) - 1)]
                                                  != ord("\n"))]
    if not len(stray):
        raise AssertionError(f"{path}: a block's lines do not parse one to a row")
    raise StrayCarriageReturn(1 + int(np.count_nonzero(text[:stray[0]] == ord("\n"))))


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
