"""Both formats round-trip, and every kind of bad record is reported with its number."""

import pickle
import re

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from mtd_tf.data import formats
from mtd_tf.data import record_checks
from mtd_tf.data.sessions import Sessions
from mtd_tf.errors import DataError

TRAIN = [[1, 2, 3], [4], [2, 5, 5, 1]]
PREFIXES = [[1, 2], [3], [5, 4, 2]]
TARGETS = [3, 1, 6]


def _write_pickle(tmp_path, value, name=formats.TRAIN_PICKLE, protocol=4):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    return path


def _write_text(tmp_path, text, name):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# Round trips.


def test_text_files_have_the_documented_layout(tmp_path):
    formats.write_text_split(tmp_path, TRAIN, PREFIXES, TARGETS)
    assert (tmp_path / formats.TRAIN_TEXT).read_text() == "1 2 3\n4\n2 5 5 1\n"
    assert (tmp_path / formats.TEST_TEXT).read_text() == "1 2\t3\n3\t1\n5 4 2\t6\n"


def test_text_round_trip(tmp_path):
    formats.write_text_split(tmp_path, Sessions.from_lists(TRAIN),
                             Sessions.from_lists(PREFIXES), np.array(TARGETS, np.int32))
    train = formats.read_train_text(tmp_path / formats.TRAIN_TEXT)
    prefixes, targets = formats.read_test_text(tmp_path / formats.TEST_TEXT)
    assert train.to_lists() == TRAIN
    assert prefixes.to_lists() == PREFIXES
    assert targets.tolist() == TARGETS
    assert train.values.dtype == np.int32 and train.row_splits.dtype == np.int64
    assert prefixes.values.dtype == np.int32 and targets.dtype == np.int32


def test_writers_accept_numpy_ids_and_arrays(tmp_path):
    path = tmp_path / formats.TRAIN_TEXT
    formats.write_train_text(path, [np.array([7, 8], np.int64), [np.int32(9)]])
    assert path.read_text() == "7 8\n9\n"


def test_largest_id_round_trips(tmp_path):
    path = tmp_path / formats.TRAIN_TEXT
    formats.write_train_text(path, [[record_checks.MAX_ITEM_ID, 1]])
    assert formats.read_train_text(path).to_lists() == [[record_checks.MAX_ITEM_ID, 1]]


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("container", [list, tuple])
def test_pickle_pair_reads(tmp_path, protocol, container):
    train_path = _write_pickle(tmp_path, TRAIN, protocol=protocol)
    test_path = _write_pickle(tmp_path, container([PREFIXES, TARGETS]), formats.TEST_PICKLE,
                              protocol)
    assert formats.read_train_pickle(train_path).to_lists() == TRAIN
    prefixes, targets = formats.read_test_pickle(test_path)
    assert prefixes.to_lists() == PREFIXES
    assert targets.tolist() == TARGETS


_ids = st.integers(min_value=1, max_value=record_checks.MAX_ITEM_ID)
_id_lists = st.lists(st.lists(_ids, min_size=1, max_size=6), max_size=8)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(train=_id_lists, test=_id_lists.flatmap(
    lambda prefixes: st.tuples(st.just(prefixes),
                               st.lists(_ids, min_size=len(prefixes), max_size=len(prefixes)))))
def test_any_valid_split_round_trips_through_text_and_pickle(tmp_path_factory, train, test):
    folder = tmp_path_factory.mktemp("split")
    prefixes, targets = test
    formats.write_text_split(folder, train, prefixes, targets)
    assert formats.read_train_text(folder / formats.TRAIN_TEXT).to_lists() == train
    read_prefixes, read_targets = formats.read_test_text(folder / formats.TEST_TEXT)
    assert (read_prefixes.to_lists(), read_targets.tolist()) == (prefixes, targets)
    assert formats.read_train_pickle(_write_pickle(folder, train)).to_lists() == train


def test_text_reader_accepts_crlf_and_a_missing_final_newline(tmp_path):
    path = _write_text(tmp_path, "1 2\r\n3", formats.TRAIN_TEXT)
    assert formats.read_train_text(path).to_lists() == [[1, 2], [3]]


def test_empty_text_file_holds_no_records(tmp_path):
    assert len(formats.read_train_text(_write_text(tmp_path, "", formats.TRAIN_TEXT))) == 0
    prefixes, targets = formats.read_test_text(_write_text(tmp_path, "", formats.TEST_TEXT))
    assert len(prefixes) == 0 and len(targets) == 0


# Bad records in text files: the record number is the 1-based line number.


@pytest.mark.parametrize("text, record, problem", [
    ("1 2\n4 x3\n", 2, "'x3' is not a positive integer id"),
    ("1 2\n3\n0 4\n", 3, "0 is not a positive integer id"),
    ("1 -2\n", 1, "'-2' is not a positive integer id"),
    ("1.5\n", 1, "'1.5' is not a positive integer id"),
    ("1\n\n2\n", 2, "empty session"),
    ("1  2\n", 1, "ids must be separated by single spaces"),
    ("1 2 \n", 1, "ids must be separated by single spaces"),
    ("1\t2\n", 1, "'1\\t2' is not a positive integer id"),
    ("5\n2147483648\n", 2, "id 2147483648 is larger than the largest allowed id 2147483647"),
    ("99999999999\n", 1, "id 99999999999 is larger than the largest allowed id"),
    (b"1 \xff2\n", 1, "is not a positive integer id"),
])
def test_bad_train_text_lines(tmp_path, text, record, problem):
    path = _write_text(tmp_path, text, formats.TRAIN_TEXT)
    with pytest.raises(DataError) as raised:
        formats.read_train_text(path)
    assert raised.value.record == record
    assert problem in raised.value.problem
    assert str(raised.value).startswith(f"{path}: record {record}: ")


@pytest.mark.parametrize("text, record, problem", [
    ("1 2\t3\n4 5\n", 2, "found 0 tabs"),
    ("1\t2\t3\n", 1, "found 2 tabs"),
    ("1\t2 3\n", 1, "expected one target id after the tab"),
    ("\t3\n", 1, "empty prefix"),
    ("1 2\t\n", 1, "empty target"),
    ("1 2\t3\n4\t0\n", 2, "0 is not a positive integer id"),
    ("1 0\t3\n", 1, "0 is not a positive integer id"),
    ("1 y\t3\n", 1, "'y' is not a positive integer id"),
])
def test_bad_test_text_lines(tmp_path, text, record, problem):
    path = _write_text(tmp_path, text, formats.TEST_TEXT)
    with pytest.raises(DataError) as raised:
        formats.read_test_text(path)
    assert raised.value.record == record
    assert problem in raised.value.problem


# Bad records in pickles: the record number is the session's (or pair's) 1-based index.


@pytest.mark.parametrize("train, record, problem", [
    ([[1, 2], [3, 0]], 2, "0 is not a positive integer id"),
    ([[1, 2], [3], [-4]], 3, "-4 is not a positive integer id"),
    ([[1, 2], []], 2, "empty session"),
    ([[1, [2, 3]]], 1, "[2, 3] (a list) is not a positive integer id"),  # nested too deep
    ([[1], 2], 2, "session is an int, not a list of ids"),
    ([[2**31]], 1, "id 2147483648 is larger than the largest allowed id"),
    ([[2**70]], 1, "larger than the largest allowed id"),
])
def test_bad_train_pickle_records(tmp_path, train, record, problem):
    path = _write_pickle(tmp_path, train)
    with pytest.raises(DataError) as raised:
        formats.read_train_pickle(path)
    assert raised.value.record == record
    assert problem in raised.value.problem


def test_train_pickle_that_is_not_a_list(tmp_path):
    with pytest.raises(DataError, match="expected a list of sessions, found an int"):
        formats.read_train_pickle(_write_pickle(tmp_path, 5))


@pytest.mark.parametrize("value, record, problem", [
    ([[[1]], [2], [3]], None, "expected a pair (prefixes, targets), found a list of 3 items"),
    (([[1]],), None, "expected a pair (prefixes, targets), found a tuple of 1 items"),
    (7, None, "expected a pair (prefixes, targets), found an int"),
    (([[1]], 2), None, "expected the targets to be a list, found an int"),
    (([[1], [2]], [3]), None, "2 prefixes but 1 targets"),
    (([[1], []], [3, 4]), 2, "empty prefix"),
    (([[1], [2]], [3, 0]), 2, "target 0 is not a positive integer id"),
    (([[1], [2]], [3, [4]]), 2, "target [4] (a list) is not a positive integer id"),
])
def test_bad_test_pickles(tmp_path, value, record, problem):
    path = _write_pickle(tmp_path, value, formats.TEST_PICKLE)
    with pytest.raises(DataError) as raised:
        formats.read_test_pickle(path)
    assert raised.value.record == record
    assert problem in raised.value.problem


def test_deeply_nested_pickle_is_one_data_error(tmp_path):
    # Sessions [[1, 2], [[[...[1]...]]]]: 5,000 levels, built opcode by opcode (pickle.dumps
    # would itself run out of stack). Describing the bad id must not recurse through them.
    depth = 5000
    path = tmp_path / formats.TRAIN_PICKLE
    path.write_bytes(b"\x80\x02](](K\x01K\x02e" + b"]" * depth + b"K\x01" + b"a" * depth + b"e.")
    with pytest.raises(DataError) as raised:
        formats.read_train_pickle(path)
    assert raised.value.record == 2
    assert raised.value.problem == "[[[[...]]]] (a list) is not a positive integer id"


def test_hostile_pickle_is_refused_by_the_readers(tmp_path):
    path = tmp_path / formats.TRAIN_PICKLE
    path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(DataError, match="builtins.eval"):
        formats.read_train_pickle(path)


# Writers validate before touching the file.


@pytest.mark.parametrize("sessions, problem", [
    ([[1, True]], "True (a bool) is not a positive integer id"),
    ([[1, 2.0]], "2.0 (a float) is not a positive integer id"),
    ([[1], "23"], "session is a str, not a list of ids"),
    (Sessions.from_lists([[1], []]), "empty session"),
    (Sessions.from_lists([[1], [0]]), "0 is not a positive integer id"),
])
def test_bad_sessions_are_not_written_and_the_old_file_survives(tmp_path, sessions, problem):
    path = tmp_path / formats.TRAIN_TEXT
    formats.write_train_text(path, [[1, 2]])
    with pytest.raises(DataError, match=re.escape(problem)):
        formats.write_train_text(path, sessions)
    assert path.read_text() == "1 2\n"
    assert [p.name for p in tmp_path.iterdir()] == [formats.TRAIN_TEXT]


def test_test_writer_checks_the_pair_lengths(tmp_path):
    with pytest.raises(DataError, match="2 prefixes but 1 targets"):
        formats.write_test_text(tmp_path / formats.TEST_TEXT, [[1], [2]], [3])


def test_pickle_repeating_one_list_by_reference_is_refused_before_expanding(tmp_path):
    # 5,000 references to one 1,000-id list: ~13 kB on disk, 5 million ids once expanded.
    path = tmp_path / "all_train_seq.txt"
    shared = list(range(1, 1001))
    path.write_bytes(pickle.dumps([shared] * 5000))
    with pytest.raises(DataError, match=r"expands to 5000000 ids from \d+ bytes"):
        formats.read_train_pickle(path)


@pytest.mark.parametrize("reader", [formats.read_train_pickle, formats.read_train_text])
def test_unreadable_path_is_a_data_error_naming_it(tmp_path, reader):
    with pytest.raises(DataError, match=rf"{tmp_path}: cannot read file \(Is a directory\)"):
        reader(tmp_path)
    with pytest.raises(DataError, match=r"missing\.txt: cannot read file \(No such file"):
        reader(tmp_path / "missing.txt")
