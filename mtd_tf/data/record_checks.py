"""The checks every record of a split passes, on records held in memory.

A record is a session or prefix (a sequence of ids: list, tuple or 1-D array) or a target.
Apart from `formats`, which parses and writes the files, because both formats share these
checks, reading and writing alike (a pickle's records, a caller's lists before writing).
"""

import itertools
import reprlib

import numpy as np

from mtd_tf.data.sessions import Sessions
from mtd_tf.data.sessions import row_splits_from_lengths
from mtd_tf.errors import DataError

MAX_ITEM_ID = int(np.iinfo(np.int32).max)

SEQUENCE_TYPES = (list, tuple, np.ndarray)
_BRIEF_REPR = reprlib.Repr()
_BRIEF_REPR.maxlevel = 3


def sessions_from_records(records, path, kind):
    """Validated `Sessions` from a sequence of id sequences (lists, tuples or 1-D arrays).

    Args:
      records: the sequences, e.g. a list of lists of ints.
      path: the file they came from (or are going to), for error messages.
      kind: "session" or "prefix", for error messages.

    Raises:
      DataError: for the first record that is not a non-empty sequence of valid ids.
    """
    if not _all_types_in(records, SEQUENCE_TYPES):
        _raise_for_first_bad_record(path, records, kind)
    lengths = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
    flat = list(itertools.chain.from_iterable(records))
    values = _int64_array_or_none(flat)
    if values is None or (lengths == 0).any() or not _ids_in_range(values):
        _raise_for_first_bad_record(path, records, kind)
    return Sessions(values.astype(np.int32), row_splits_from_lengths(lengths))


def targets_from_records(records, path):
    """Validated int32 targets from a sequence of ids; the record number is the pair's."""
    values = _int64_array_or_none(list(records))
    if values is None or not _ids_in_range(values):
        for record, item in enumerate(records, start=1):
            problem = describe_bad_id(item)
            if problem:
                raise DataError(path, f"target {problem}", record=record)
    return values.astype(np.int32)


def validated_sessions(sessions, path, kind):
    """`sessions` (a `Sessions` or a sequence of id sequences) checked, as `Sessions`."""
    if not isinstance(sessions, Sessions):
        return sessions_from_records(sessions, path, kind)
    if len(sessions.values) and not _ids_in_range(sessions.values):
        _raise_for_first_bad_record(path, sessions.to_lists(), kind)
    empty = np.flatnonzero(sessions.lengths == 0)
    if len(empty):
        raise DataError(path, f"empty {kind}", record=int(empty[0]) + 1)
    return sessions


def _all_types_in(items, allowed_types):
    return all(issubclass(item_type, allowed_types) for item_type in set(map(type, items)))


def _int64_array_or_none(items):
    """int64 array of `items` if every one is an int (Python or NumPy, not bool) fitting int64."""
    if not all(_is_integer_type(item_type) for item_type in set(map(type, items))):
        return None
    try:
        return np.array(items, dtype=np.int64).reshape(len(items))
    except OverflowError:
        return None


def _is_integer_type(item_type):
    return issubclass(item_type, (int, np.integer)) and not issubclass(item_type, bool)


def _ids_in_range(values):
    return len(values) == 0 or (values.min() >= 1 and values.max() <= MAX_ITEM_ID)


def _raise_for_first_bad_record(path, records, kind):
    """Scans record by record (only once something is known to be wrong) and raises."""
    for record, sequence in enumerate(records, start=1):
        if not isinstance(sequence, SEQUENCE_TYPES):
            raise DataError(path, f"{kind} is {type_phrase(sequence)}, not a list of ids",
                            record=record)
        if len(sequence) == 0:
            raise DataError(path, f"empty {kind}", record=record)
        for item in sequence:
            problem = describe_bad_id(item)
            if problem:
                raise DataError(path, problem, record=record)


def describe_bad_id(item):
    """Why `item` is not a valid id, or None if it is one."""
    if not _is_integer_type(type(item)):
        return f"{short_repr(item)} ({type_phrase(item)}) is not a positive integer id"
    if item < 1:
        return f"{item!r} is not a positive integer id"
    if item > MAX_ITEM_ID:
        return f"id {item} is larger than the largest allowed id {MAX_ITEM_ID}"
    return None


def type_phrase(value):
    """The type of `value` with its article ("a list", "an int"), for error messages."""
    name = type(value).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def short_repr(value, limit=40):
    """`value` shown in at most `limit` characters, for error messages."""
    # reprlib stops at a few levels and items: a pickle's nesting can outrun the stack.
    text = repr(value) if isinstance(value, str) else _BRIEF_REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
