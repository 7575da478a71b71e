"""The restricted unpickler admits lists, tuples and ints, and runs nothing from the file."""

import io
import os
import pickle

import pytest

from mtd_tf.data import safe_pickle
from mtd_tf.data.safe_pickle import load_restricted_pickle
from mtd_tf.errors import DataError

ALL_PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


class _CreatesMarkerFile:
    """Unpickling this calls os.system, as a hostile published split could."""

    def __init__(self, marker_path):
        self.marker_path = marker_path

    def __reduce__(self):
        return os.system, (f"touch {self.marker_path}",)


def _write(tmp_path, data, name="data.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("protocol", ALL_PROTOCOLS)
def test_loads_train_and_test_shapes_in_every_protocol(tmp_path, protocol):
    train = [[1, 2, 3], [4], [70000, 2**40]]  # 2**40 needs LONG/LONG1
    test = ([[1, 2], [3]], [3, 4])
    shared = [5, 6]
    memoized = [shared, shared]  # the same list twice: the pickler uses the memo
    for value in (train, test, list(test), memoized, []):
        path = _write(tmp_path, pickle.dumps(value, protocol=protocol))
        assert load_restricted_pickle(path) == value


@pytest.mark.parametrize("protocol", ALL_PROTOCOLS)
def test_reduce_to_os_system_is_refused_before_it_runs(tmp_path, protocol):
    marker = tmp_path / "marker"
    payload = [[1, 2], _CreatesMarkerFile(marker)]
    path = _write(tmp_path, pickle.dumps(payload, protocol=protocol))

    with pytest.raises(DataError, match=r"pickle refers to (os|posix)\.system: only lists"):
        load_restricted_pickle(path)
    assert not marker.exists()


def test_global_builtins_eval_is_named(tmp_path):
    path = _write(tmp_path, b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(DataError) as raised:
        load_restricted_pickle(path)
    assert str(raised.value) == (
        f"{path}: pickle refers to builtins.eval: only lists, tuples and ints are allowed")


@pytest.mark.parametrize("value, meaning", [
    ({1: 2}, "a dict"),
    ([[1.5]], "a float"),
    ([["3"]], "a string"),
    ([[b"3"]], "bytes"),
    ([[True]], "a bool"),
    ([[None]], "None"),
    ({1}, "a set"),
])
def test_other_types_are_refused_by_name(tmp_path, value, meaning):
    path = _write(tmp_path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    with pytest.raises(DataError, match=f"contains {meaning} at byte"):
        load_restricted_pickle(path)


@pytest.mark.parametrize("value", [{1: 2}, [[1.5]], [["3"]], [[b"3"]], [[True]], [[None]], {1}])
@pytest.mark.parametrize("protocol", [0, 1, 2, 3])
def test_other_types_are_refused_in_old_protocols(tmp_path, value, protocol):
    # Old protocols spell sets and bytes as calls to a global (__builtin__.set,
    # _codecs.encode), which is refused by name.
    path = _write(tmp_path, pickle.dumps(value, protocol=protocol))
    with pytest.raises(DataError, match="only lists, tuples and ints are allowed"):
        load_restricted_pickle(path)


def test_protocol_0_bool_written_as_int_is_refused(tmp_path):
    # Protocol 0 spells True as INT with argument "01": the INT opcode alone is not enough.
    assert pickle.dumps([True], protocol=0).count(b"I01\n") == 1
    path = _write(tmp_path, pickle.dumps([True], protocol=0))
    with pytest.raises(DataError, match="contains a bool"):
        load_restricted_pickle(path)


def test_empty_file_is_refused(tmp_path):
    path = _write(tmp_path, b"")
    with pytest.raises(DataError, match=r"data\.pkl: file is empty$"):
        load_restricted_pickle(path)


def test_truncated_file_is_refused(tmp_path):
    data = pickle.dumps([[1, 2, 3]] * 50, protocol=4)
    path = _write(tmp_path, data[:len(data) // 2])
    with pytest.raises(DataError, match="file is truncated or not a pickle"):
        load_restricted_pickle(path)


@pytest.mark.parametrize("data", [b"hello world\n", b"1 2 3\n4 5\n", b"<html>"])
def test_text_file_is_refused(tmp_path, data):
    path = _write(tmp_path, data)
    with pytest.raises(DataError, match="not a pickle"):
        load_restricted_pickle(path)


@pytest.mark.parametrize("data", [
    b"K\x01a.",  # APPEND onto an int
    b"h\x05.",  # GET of a memo slot never set
    b"e.",  # APPENDS with no MARK
])
def test_allowed_opcodes_in_a_nonsensical_order_are_refused(tmp_path, data):
    path = _write(tmp_path, data)
    with pytest.raises(DataError, match="file is not a valid pickle"):
        load_restricted_pickle(path)


def test_unpickler_cannot_import_even_without_the_opcode_scan():
    # Second line of defence: were the whitelist wrong, find_class would still refuse.
    data = pickle.dumps(_CreatesMarkerFile("never"), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refers to"):
        safe_pickle._NoGlobalsUnpickler(io.BytesIO(data)).load()


def test_fast_path_admits_only_whitelisted_opcodes():
    assert set(safe_pickle._FIXED_SIZE_OPCODES) <= safe_pickle._ALLOWED_OPCODES


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_fast_path_recognises_modern_pickles_of_small_ints(tmp_path, protocol):
    # 46 is the STOP byte: as BININT1's argument it must not end the match early.
    value = ([[46, 46], [1, 300, 70000]] * 200, [46, 5])
    data = pickle.dumps(value, protocol=protocol)
    assert safe_pickle._FAST_PATH_PICKLE.fullmatch(data)
    assert load_restricted_pickle(_write(tmp_path, data)) == value


@pytest.mark.parametrize("value", [[[2**40]], [[True]], [[1.5]], [["a"]]])
def test_fast_path_leaves_other_content_to_the_full_scan(value):
    assert not safe_pickle._FAST_PATH_PICKLE.fullmatch(pickle.dumps(value, protocol=4))
