"""Checks and converts one column of a click log, held as pyarrow strings: ids and times.

Shared by the two ways a log is read (`csv_block_parser`, one block of a delimited file at
a time; `parquet_columns`, a Parquet file's columns), so a value means the same whichever
file holds it. Each parser works on the whole column in pyarrow's compute kernels (no
Python code per row) and returns the converted values with a mask of the bad rows; the
caller names the file and the row. A slower per-value path runs only on a column already
known to hold a bad value, to find which rows they are.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MS_PER_SECOND = 1000
_NS_PER_MS = 1_000_000
# Longer digit strings could overflow int64 (ids and millisecond timestamps are far shorter).
_MAX_INT_DIGITS = 18
# Seconds since 1970 with 12 digits reach the year 33658; milliseconds times 1000 stay in int64.
_MAX_SECONDS_DIGITS = 12

ISO_8601 = "iso"
EPOCH_SECONDS = "s"
EPOCH_MILLISECONDS = "ms"
# What each named time format accepts (anything else is a strptime pattern).
TIME_FORMATS = {
    ISO_8601: "an ISO 8601 date or time: 2026-12-06, 2026-12-06T10:15:00 or "
              "2026-12-06 10:15:00.123, optionally ending in Z or an offset such as +01:00 "
              "(no offset = UTC)",
    EPOCH_SECONDS: "seconds since 1970-01-01 UTC, whole or with decimals",
    EPOCH_MILLISECONDS: "whole milliseconds since 1970-01-01 UTC",
}
_ISO_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
                r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?"
                r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$")
# A zone after the time's minutes or seconds (a date alone ends in "-DD", which is no zone).
_ZONE_PATTERN = r":[0-9]{2}(\.[0-9]*)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
_SECONDS_PATTERN = rf"^[0-9]{{1,{_MAX_SECONDS_DIGITS}}}(\.[0-9]{{1,9}})?$"
# A raw item id is written to items.tsv as it is, which reads it back with Python's
# str.splitlines and str.strip (`item_catalog`): no tab nor line break of splitlines inside,
# no whitespace of str.isspace at either end.
_LINE_BREAKS = r"\x{0A}-\x{0D}\x{1C}-\x{1E}\x{85}\x{2028}\x{2029}"
_WHITESPACE = (r"\x{09}-\x{0D}\x{1C}-\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}"
               r"\x{2029}\x{202F}\x{205F}\x{3000}")
_BAD_ID_PATTERN = rf"^[{_WHITESPACE}]|[{_WHITESPACE}]$|[\t{_LINE_BREAKS}]"


def parse_ints(strings):
    """(int64 values with 0 where bad, bool mask of bad rows or None) from a string column;
    only ASCII digits are accepted (ids are non-negative)."""
    digits_only = pc.and_(pc.ascii_is_decimal(strings),
                          pc.less_equal(pc.binary_length(strings), _MAX_INT_DIGITS))
    good = digits_only.to_numpy(zero_copy_only=False)
    if good.all():
        return pc.cast(strings, pa.int64()).to_numpy(zero_copy_only=False), None
    cleaned = pc.if_else(digits_only, strings, "0")
    return pc.cast(cleaned, pa.int64()).to_numpy(zero_copy_only=False), ~good


def parse_times(strings, time_format, prefix=None):
    """(int64 milliseconds since 1970 UTC with 0 where bad, bool mask of bad rows or None).

    Args:
      strings: pyarrow string array.
      time_format: a key of `TIME_FORMATS`, else a strptime pattern (read as UTC).
      prefix: parse only the first this many characters (None: all).
    """
    if prefix is not None:
        strings = pc.utf8_slice_codeunits(strings, 0, prefix)
    if time_format == ISO_8601:
        return _parse_iso(strings)
    if time_format == EPOCH_MILLISECONDS:
        return parse_ints(strings)
    if time_format == EPOCH_SECONDS:
        return _parse_seconds(strings)
    parsed = pc.strptime(strings, format=time_format, unit="s", error_is_null=True)
    bad = pc.is_null(parsed).to_numpy(zero_copy_only=False)
    seconds = pc.fill_null(pc.cast(parsed, pa.int64()), 0).to_numpy(zero_copy_only=False)
    return seconds * MS_PER_SECOND, (bad if bad.any() else None)


def check_ids(strings):
    """Bool mask of the rows whose text id is unusable, or None: empty, invalid UTF-8,
    spaces around it, or a tab or line break inside (items.tsv could not hold it)."""
    bad = pc.or_(pc.equal(pc.binary_length(strings), 0),
                 pc.match_substring_regex(strings, _BAD_ID_PATTERN))
    bad = bad.to_numpy(zero_copy_only=False)
    try:
        strings.validate(full=True)
    except pa.ArrowInvalid:  # rare: find the rows, one value at a time
        bad = bad | _invalid_utf8(strings)
    return bad if bad.any() else None


def describe_bad_int(name, value):
    if value == "":
        return f"the {name} field is empty"
    return f"{name} {clip(value)!r} is not a non-negative integer"


def describe_bad_time(name, value, time_format, prefix=None):
    if value == "":
        return f"the {name} field is empty"
    if time_format in TIME_FORMATS:
        return f"{name} {clip(value)!r} is not {TIME_FORMATS[time_format]}"
    if prefix is None:
        return f"{name} {clip(value)!r} does not parse as {time_format!r}"
    return (f"{name} {clip(value)!r}: its first {prefix} characters do not parse as "
            f"{time_format!r}")


def describe_bad_id(name, value):
    if value == "":
        return f"the {name} field is empty"
    return (f"{name} {clip(value)!r} is not a usable id (invalid UTF-8, spaces around it, or a "
            "tab or line break inside)")


def text_at(strings, row):
    """The value of one row as Python text (invalid UTF-8 shown with replacement marks)."""
    raw = pc.cast(strings.slice(row, 1), pa.binary())[0].as_py()
    return "" if raw is None else raw.decode("utf-8", errors="replace")


def clip(text, limit=80):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _parse_iso(strings):
    """ISO 8601 text (see `TIME_FORMATS`) to milliseconds; a zone offset is honoured."""
    has_zone = pc.ends_with(strings, "Z").to_numpy(zero_copy_only=False)
    if not has_zone.all():  # the regular expression costs more: only for offsets
        has_zone = pc.match_substring_regex(strings, _ZONE_PATTERN).to_numpy(
            zero_copy_only=False)
    millis = np.zeros(len(strings), dtype=np.int64)
    bad = np.zeros(len(strings), dtype=bool)
    for zoned in (False, True):
        rows = np.flatnonzero(has_zone == zoned)
        if not len(rows):
            continue
        part = strings if len(rows) == len(strings) else strings.take(pa.array(rows))
        target = pa.timestamp("ns", tz="UTC" if zoned else None)
        values, part_bad = _cast_each(part, target)
        millis[rows] = np.floor_divide(values, _NS_PER_MS)
        bad[rows] = part_bad
    return millis, (bad if bad.any() else None)


def _cast_each(strings, target):
    """(int64 values with 0 where bad, bool mask of bad) casting strings to a timestamp.

    A cast fails whole when one value does not parse (and failing is slow), so the values
    are first screened by the ISO pattern; the few that pass it but name no real moment
    (month 13) are found by halving the failing part.
    """
    bad = np.zeros(len(strings), dtype=bool)
    try:
        return _cast_to_int64(strings, target), bad
    except pa.ArrowInvalid:
        pass
    bad = ~pc.match_substring_regex(strings, _ISO_PATTERN).to_numpy(zero_copy_only=False)
    values = np.zeros(len(strings), dtype=np.int64)
    pending = [np.flatnonzero(~bad)]
    while pending:
        rows = pending.pop()
        try:
            values[rows] = _cast_to_int64(strings.take(pa.array(rows)), target)
        except pa.ArrowInvalid:
            if len(rows) == 1:
                bad[rows] = True
            else:
                pending += [rows[:len(rows) // 2], rows[len(rows) // 2:]]
    return values, bad


def _cast_to_int64(strings, target):
    return pc.cast(pc.cast(strings, target), pa.int64()).to_numpy(zero_copy_only=False)


def _parse_seconds(strings):
    """Seconds since 1970, whole or decimal, to whole milliseconds (rounded)."""
    whole, bad = parse_ints(strings)
    if bad is None and (pc.max(pc.binary_length(strings)).as_py() or 0) <= _MAX_SECONDS_DIGITS:
        return whole * MS_PER_SECOND, None
    good = pc.match_substring_regex(strings, _SECONDS_PATTERN)
    seconds = pc.cast(pc.if_else(good, strings, "0"), pa.float64()).to_numpy(
        zero_copy_only=False)
    bad = ~good.to_numpy(zero_copy_only=False)
    return np.round(seconds * MS_PER_SECOND).astype(np.int64), (bad if bad.any() else None)


def _invalid_utf8(strings):
    """Bool mask of the values that are not valid UTF-8 (a Python loop: error path only)."""
    raw = pc.cast(strings, pa.binary()).to_pylist()
    bad = np.zeros(len(raw), dtype=bool)
    for row, value in enumerate(raw):
        try:
            value is None or value.decode("utf-8")
        except UnicodeDecodeError:
            bad[row] = True
    return bad
