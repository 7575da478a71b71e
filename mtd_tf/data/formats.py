"""Readers and writers for the two on-disk formats of a split, each record validated.

Pickle format (the field's published splits, read-only here):
  all_train_seq.txt  pickle of list[list[int]], training sessions, oldest first.
  test.txt           pickle of a pair (list[list[int]] prefixes, list[int] targets).

Text format (what the project writes and prefers to read):
  train_sessions.txt one session per line, item ids separated by single spaces.
  test_pairs.txt     one pair per line: prefix ids separated by single spaces, a tab, the
                     target id.

Every id must be a positive integer no larger than int32's maximum (0 is padding) and every
session and prefix non-empty (`record_checks`); the first bad record is reported as a
`DataError` naming the file, the 1-based record (= line) number and the problem. Parsing and
checking work on whole arrays (one regular expression over the file, one numeric parse), and
a slow per-record scan runs only to describe a record already known to be bad.
"""

import itertools
import os
import re

import numpy as np

from mtd_tf import io_utils
from mtd_tf.data.record_checks import MAX_ITEM_ID
from mtd_tf.data.record_checks import SEQUENCE_TYPES
from mtd_tf.data.record_checks import describe_bad_id
from mtd_tf.data.record_checks import sessions_from_records
from mtd_tf.data.record_checks import short_repr
from mtd_tf.data.record_checks import targets_from_records
from mtd_tf.data.record_checks import type_phrase
from mtd_tf.data.record_checks import validated_sessions
from mtd_tf.data.safe_pickle import load_restricted_pickle
from mtd_tf.data.sessions import Sessions
from mtd_tf.data.sessions import row_splits_from_lengths
from mtd_tf.errors import DataError
from mtd_tf.io_utils import read_file_bytes

TRAIN_PICKLE = "all_train_seq.txt"
TEST_PICKLE = "test.txt"
TRAIN_TEXT = "train_sessions.txt"
TEST_TEXT = "test_pairs.txt"

# At most 10 digits: anything longer exceeds MAX_ITEM_ID, and the bound keeps int64 parsing
# safe before the range check.
_ID = r"[0-9]{1,10}"
_IDS = rf"{_ID}(?: {_ID})*"
_TRAIN_LINE = re.compile(_IDS, re.ASCII)
_TEST_LINE = re.compile(rf"{_IDS}\t{_ID}", re.ASCII)
_TRAIN_FILE = re.compile(rf"(?:{_IDS}\n)*", re.ASCII)
_TEST_FILE = re.compile(rf"(?:{_IDS}\t{_ID}\n)*", re.ASCII)


def read_train_pickle(path):
    """Training sessions from a restricted pickle of list[list[int]]."""
    records = load_restricted_pickle(path)
    if not isinstance(records, (list, tuple)):
        raise DataError(path, f"expected a list of sessions, found {type_phrase(records)}")
    _refuse_shared_expansion(path, records)
    return sessions_from_records(records, path, "session")


def read_test_pickle(path):
    """(prefixes `Sessions`, int32 targets) from a restricted pickle of (prefixes, targets)."""
    records = load_restricted_pickle(path)
    if not isinstance(records, (list, tuple)):
        raise DataError(path, f"expected a pair (prefixes, targets), found {type_phrase(records)}")
    if len(records) != 2:
        raise DataError(path, f"expected a pair (prefixes, targets), found "
                              f"{type_phrase(records)} of {len(records)} items")
    prefix_records, target_records = records
    for part, what in ((prefix_records, "prefixes"), (target_records, "targets")):
        if not isinstance(part, (list, tuple)):
            raise DataError(path, f"expected the {what} to be a list, found {type_phrase(part)}")
    if len(prefix_records) != len(target_records):
        raise DataError(path, f"the pair's parts differ in length: {len(prefix_records)} "
                              f"prefixes but {len(target_records)} targets")
    _refuse_shared_expansion(path, prefix_records)
    prefixes = sessions_from_records(prefix_records, path, "prefix")
    return prefixes, targets_from_records(target_records, path)


def _refuse_shared_expansion(path, records):
    """Refuses a pickle whose memo references repeat lists into more ids than it has bytes.

    Every id a plain pickle stores costs at least two bytes, so more ids than bytes means
    one list object referenced many times: a small file that would expand into a huge
    array (a memory bomb), never a dataset written by the field's scripts.
    """
    total_ids = sum(len(record) for record in records if isinstance(record, SEQUENCE_TYPES))
    file_bytes = os.path.getsize(path)
    if total_ids > file_bytes:
        raise DataError(path, f"pickle expands to {total_ids} ids from {file_bytes} bytes "
                              "(shared lists repeated by reference); refusing to expand it")


def read_train_text(path):
    """Training sessions from a text file, one session per line."""
    text = _read_text(path)
    if not _TRAIN_FILE.fullmatch(text):
        _raise_for_first_bad_line(path, text, _TRAIN_LINE, _describe_train_line)
    values = _parse_ids(text)
    ids_per_line = _spaces_per_line(text) + 1
    _check_id_range(path, values, ids_per_line)
    return Sessions(values.astype(np.int32), row_splits_from_lengths(ids_per_line))


def read_test_text(path):
    """(prefixes `Sessions`, int32 targets) from a text file of `prefix<TAB>target` lines."""
    text = _read_text(path)
    if not _TEST_FILE.fullmatch(text):
        _raise_for_first_bad_line(path, text, _TEST_LINE, _describe_test_line)
    values = _parse_ids(text)  # per line: the prefix ids, then the target
    prefix_lengths = _spaces_per_line(text) + 1
    ids_per_line = prefix_lengths + 1
    _check_id_range(path, values, ids_per_line)
    is_target = np.zeros(len(values), dtype=bool)
    is_target[np.cumsum(ids_per_line) - 1] = True
    prefixes = Sessions(values[~is_target].astype(np.int32),
                        row_splits_from_lengths(prefix_lengths))
    return prefixes, values[is_target].astype(np.int32)


def write_train_text(path, sessions):
    """Writes sessions (a `Sessions` or a list of id lists) atomically, one per line."""
    sessions = validated_sessions(sessions, path, "session")
    separators = np.full(len(sessions.values), " ")
    separators[sessions.row_splits[1:] - 1] = "\n"
    _write_ids(path, sessions.values, separators)


def write_test_text(path, prefixes, targets):
    """Writes (prefix, target) pairs atomically as `prefix ids<TAB>target` lines."""
    prefixes = validated_sessions(prefixes, path, "prefix")
    targets = targets_from_records(targets, path)
    if len(prefixes) != len(targets):
        raise DataError(path, f"{len(prefixes)} prefixes but {len(targets)} targets")
    # Target p goes right after prefix p: position row_splits[p + 1] + p of the merged row.
    target_positions = prefixes.row_splits[1:] + np.arange(len(targets))
    merged = np.insert(prefixes.values.astype(np.int64), prefixes.row_splits[1:], targets)
    separators = np.full(len(merged), " ")
    separators[target_positions - 1] = "\t"
    separators[target_positions] = "\n"
    _write_ids(path, merged, separators)


def write_text_split(folder, train, test_prefixes, test_targets):
    """Writes TRAIN_TEXT and TEST_TEXT into `folder` (each file atomically)."""
    write_train_text(os.path.join(folder, TRAIN_TEXT), train)
    write_test_text(os.path.join(folder, TEST_TEXT), test_prefixes, test_targets)


def _read_text(path):
    """The file's text with LF line ends and a final newline (so every line ends in one)."""
    # Undecodable bytes become U+FFFD, which the line check then reports by line.
    text = read_file_bytes(path).decode("utf-8", errors="replace")
    text = text.replace("\r\n", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    return text


def _raise_for_first_bad_line(path, text, line_pattern, describe):
    for line_number, line in enumerate(text.split("\n")[:-1], start=1):
        if not line_pattern.fullmatch(line):
            raise DataError(path, describe(line), record=line_number)


def _describe_train_line(line):
    return _describe_ids_field(line, "session")


def _describe_test_line(line):
    if line.count("\t") != 1:
        return (f"expected prefix ids, one tab, then the target id; found "
                f"{line.count(chr(9))} tabs in {short_repr(line)}")
    prefix, target = line.split("\t")
    if " " in target:
        return f"expected one target id after the tab, found {short_repr(target)}"
    return _describe_ids_field(prefix, "prefix") or _describe_ids_field(target, "target")


def _describe_ids_field(field, kind):
    """Why a space-separated field of ids is malformed, or None if it is well formed."""
    if not field:
        return f"empty {kind}"
    for token in field.split(" "):
        if not token:
            return "ids must be separated by single spaces (found an empty id)"
        if not (token.isascii() and token.isdigit()):
            return f"{short_repr(token)} is not a positive integer id"
        if len(token) > 10:
            return f"id {token} is larger than the largest allowed id {MAX_ITEM_ID}"
    return None


def _parse_ids(text):
    """Every id in an already validated text, in order; tabs and newlines separate too."""
    if not text:
        return np.zeros(0, dtype=np.int64)
    return np.fromstring(text.replace("\t", " "), dtype=np.int64, sep=" ")


def _spaces_per_line(text):
    """int64 [num_lines]: the number of spaces on each line of a validated ASCII text."""
    characters = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    spaces_so_far = np.cumsum(characters == ord(" "))
    at_line_ends = spaces_so_far[characters == ord("\n")]
    return np.diff(at_line_ends, prepend=0)


def _check_id_range(path, values, ids_per_line):
    """Raises for the first id outside 1..MAX_ITEM_ID, naming its line."""
    bad = np.flatnonzero((values < 1) | (values > MAX_ITEM_ID))
    if len(bad):
        line_number = int(np.searchsorted(np.cumsum(ids_per_line), bad[0], side="right")) + 1
        raise DataError(path, describe_bad_id(int(values[bad[0]])), record=line_number)


def _write_ids(path, values, separators):
    """Writes values[i] followed by separators[i] for every i, atomically."""
    tokens = values.astype(str).tolist()
    text = "".join(itertools.chain.from_iterable(zip(tokens, separators.tolist())))
    io_utils.atomic_write_text(path, text)
