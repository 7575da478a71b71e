"""Tests for mtd_tf.data.prepare (raw logs -> dataset folder), protocol, raw_logs, csv_blocks.

Faithfulness is checked two ways: against `reference_protocol`, a plain loop transliteration
of SR-GNN's datasets/preprocess.py (plus the RetailRocket cut and the documented 1/F rule),
on the real Diginetica sample and on random logs; and on small logs whose answers are
worked out by hand in the comments. Logs with named columns (`--format=clicks`) are tested
in test_click_log.py, the folder's dataset.json in test_dataset_info.py.
"""

import itertools
import json
import os
import random
import subprocess
import sys
import time

import pytest

from mtd_tf.data import csv_blocks
from mtd_tf.data import dataset_info
from mtd_tf.data import formats
from mtd_tf.data import item_catalog
from mtd_tf.data import prepare
from mtd_tf.data import protocol
from mtd_tf.data import registry
from mtd_tf.errors import ConfigError
from mtd_tf.errors import DataError
from mtd_tf.errors import DatasetMissingError
from mtd_tf.errors import MTDError
from tests.data.reference_protocol import reference_protocol as _reference_protocol

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_FOLDER_NUMBERS = itertools.count()

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def _output(out_dir):
    """(train lines, test lines, items lines, the split's figures) of a prepared folder."""
    read = lambda name: (out_dir / name).read_text().splitlines()  # noqa: E731
    return (read(formats.TRAIN_TEXT), read(formats.TEST_TEXT), read(item_catalog.ITEMS_FILE),
            json.loads((out_dir / dataset_info.DATASET_FILE).read_text())["counts"])


def _prepare(tmp_path, dataset, raw, fraction=None, **kwargs):
    out_dir = tmp_path / f"prepared{next(_FOLDER_NUMBERS)}"  # a new folder each time
    prepare.prepare(dataset, raw, str(out_dir), fraction=fraction, **kwargs)
    return _output(out_dir)


def _yoochoose_row(session, timestamp, item, category="0"):
    return f"{session},{timestamp},{item},{category}"


# --------------------------------------------------------------------------------------
# Faithfulness
# --------------------------------------------------------------------------------------


def test_diginetica_sample_equals_reference_loop(shared_data_dir, tmp_path):
    raw = shared_data_dir / "raw" / "diginetica_sample_train-item-views.csv"
    if not raw.is_file():
        pytest.skip(f"{raw} not found")
    train, test, items, stats = _prepare(tmp_path, "diginetica", str(raw))
    expected_train, expected_test, expected_items = _reference_protocol(str(raw), "diginetica")
    assert train == expected_train
    assert test == expected_test
    assert items == expected_items
    # The figures SR-GNN's own script prints for this sample (item_ctr 310 -> 309 items).
    assert (stats["train_sessions"], stats["train_samples"], stats["test_samples"],
            stats["items"]) == (469, 1205, 99, 309)
    assert stats["split_date"] == "2016-05-25T00:00:00"
    assert stats["sessions_on_split_date"] == 9


# Hand-made Yoochoose log. Item 44 is clicked 5 times, but once in a length-1 session, so
# it counts 4 and goes; 66 counts exactly 5 and stays (but only test sessions hold it).
YOOCHOOSE_LOG = [
    _yoochoose_row(1, "2014-04-01T10:00:00.100Z", 11),  # line 1
    _yoochoose_row(1, "2014-04-01T10:01:00.000Z", 22),
    _yoochoose_row(1, "2014-04-01T10:02:00.000Z", 33),
    _yoochoose_row(2, "2014-04-01T09:00:00.000Z", 44),  # length-1 session
    _yoochoose_row(5, "2014-04-01T22:00:00.000Z", 33),  # line 5: session 5 starts
    _yoochoose_row(6, "2014-04-01T22:30:00.000Z", 11),
    _yoochoose_row(6, "2014-04-01T23:00:00.000Z", 22),  # session 6 dated 23:00:00
    _yoochoose_row(5, "2014-04-01T23:00:00.500Z", 11, "S"),  # session 5 again: 23:00:00 too
    _yoochoose_row(3, "2014-04-02T08:00:00.000Z", 22),
    _yoochoose_row(3, "2014-04-02T08:05:00.000Z", 11),  # line 10
    _yoochoose_row(3, "2014-04-02T07:00:00.000Z", 22),  # last row, earliest time: 07:00
    _yoochoose_row(4, "2014-04-02T11:00:00.000Z", 11),
    _yoochoose_row(4, "2014-04-02T12:00:00.999Z", 33),  # 12:00:00 = the split date
    _yoochoose_row(7, "2014-04-02T12:00:01.000Z", 44),  # only item 44: emptied
    _yoochoose_row(7, "2014-04-02T12:20:00.000Z", 44),  # line 15
    _yoochoose_row(12, "2014-04-03T09:00:00.000Z", 66),
    _yoochoose_row(12, "2014-04-03T09:01:00.000Z", 66),
    _yoochoose_row(12, "2014-04-03T09:02:00.000Z", 66),
    _yoochoose_row(8, "2014-04-03T10:00:00.000Z", 11),
    _yoochoose_row(8, "2014-04-03T10:01:00.000Z", 66),  # line 20
    _yoochoose_row(8, "2014-04-03T10:02:00.000Z", 44),
    _yoochoose_row(8, "2014-04-03T10:03:00.000Z", 22),
    _yoochoose_row(8, "2014-04-03T10:04:00.000Z", 33),
    _yoochoose_row(9, "2014-04-03T11:00:00.000Z", 66),
    _yoochoose_row(9, "2014-04-03T11:01:00.000Z", 22),  # line 25
    _yoochoose_row(10, "2014-04-03T11:30:00.000Z", 44),
    _yoochoose_row(10, "2014-04-03T11:31:00.000Z", 11),
    _yoochoose_row(10, "2014-04-03T12:00:00.000Z", 33),  # the latest session date
    _yoochoose_row(11, "2014-04-03T12:30:00.000Z", 33),  # latest time in the file, but
    _yoochoose_row(11, "2014-04-03T11:59:00.000Z", 22),  # line 30: session 11 is 11:59
]


def test_yoochoose_hand_log(tmp_path):
    raw = _write(tmp_path, "yoochoose-clicks.dat", YOOCHOOSE_LOG)
    train, test, items, stats = _prepare(tmp_path, "yoochoose", raw, fraction=1)
    # After the filters: 1 [11 22 33] 04-01 10:02; 5 [33 11] and 6 [11 22] both 04-01
    # 23:00:00; 3 [22 11 22] 04-02 07:00; 4 [11 33] 04-02 12:00:00; 12 [66 66 66];
    # 8 [11 66 22 33]; 9 [66 22]; 10 [11 33] 04-03 12:00:00 (max); 11 [33 22] 11:59.
    # Split 04-02 12:00:00: session 4 is in neither set (a per-session latest time would
    # make 11's 12:30 the max and put 4 in training). Training sorted by date, 5 before 6
    # (5's first row comes first, though its last row comes after 6's).
    assert train == ["1 2 3", "3 1", "1 2", "2 1 2"]
    assert items == ["item_id\traw_item_id", "1\t11", "2\t22", "3\t33"]
    # Test by date: 12 -> [] dropped; 8 -> [1 2 3]; 9 -> [2] dropped; 11 -> [3 2]; 10 -> [1 3].
    assert test == ["1 2\t3", "1\t2", "3\t2", "1\t3"]
    assert stats["max_date"] == "2014-04-03T12:00:00"
    assert stats["split_date"] == "2014-04-02T12:00:00"
    assert (stats["sessions_read"], stats["sessions_after_filters"],
            stats["sessions_on_split_date"]) == (12, 10, 1)
    assert (stats["train_sessions"], stats["train_samples"], stats["test_sessions"],
            stats["test_samples"], stats["items"]) == (4, 6, 3, 4, 3)
    assert (train, test, items) == _reference_protocol(raw, "yoochoose")


def test_yoochoose_header_line_is_accepted(tmp_path):
    raw = _write(tmp_path, "yoochoose-clicks.dat",
                 ["session_id,timestamp,item_id,category"] + YOOCHOOSE_LOG)
    train, test, _, stats = _prepare(tmp_path, "yoochoose", raw, fraction=1)
    assert train == ["1 2 3", "3 1", "1 2", "2 1 2"]
    assert test == ["1 2\t3", "1\t2", "3\t2", "1\t3"]
    assert stats["rows_read"] == len(YOOCHOOSE_LOG)


def _fraction_log():
    # 33 training sessions on 04-01: 32 x [7 8 9], then [8 9 7]: 66 samples. One test
    # session [9 7 8] on 04-03 (split 04-02).
    rows = []
    for session in range(1, 34):
        items = [8, 9, 7] if session == 33 else [7, 8, 9]
        for k, item in enumerate(items):
            rows.append(_yoochoose_row(session, f"2014-04-01T{session // 60:02d}:"
                                                f"{session % 60:02d}:{k:02d}.000Z", item))
    rows += [_yoochoose_row(100, f"2014-04-03T10:00:0{k}.000Z", item)
             for k, item in enumerate([9, 7, 8])]
    return rows


def test_yoochoose_fraction_64_by_hand(tmp_path):
    raw = _write(tmp_path, "yoochoose-clicks.dat", _fraction_log())
    train, test, items, stats = _prepare(tmp_path, "yoochoose", raw)  # default 1/64
    # int(66 / 64) = 1 sample: the last, ([8], 9) of [8 9 7]; the session is cut to [8 9].
    assert train == ["1 2"]
    assert items == ["item_id\traw_item_id", "1\t8", "2\t9"]
    # 7 is known to the full training set but not to the kept one: [9 7 8] -> [9 8].
    assert test == ["2\t1"]
    assert stats["fraction"] == 64
    assert (stats["full_train_sessions"], stats["full_train_samples"], stats["train_sessions"],
            stats["train_samples"], stats["first_train_session_trimmed_from"]) == (33, 66, 1, 1, 3)
    assert (train, test, items) == _reference_protocol(raw, "yoochoose", fraction=64)


def test_yoochoose_fraction_4_by_hand(tmp_path):
    raw = _write(tmp_path, "yoochoose-clicks.dat", _fraction_log())
    train, test, items, stats = _prepare(tmp_path, "yoochoose", raw, fraction=4)
    # int(66 / 4) = 16 samples = the last 8 sessions whole: 7 x [7 8 9] and [8 9 7].
    assert train == ["1 2 3"] * 7 + ["2 3 1"]
    assert test == ["3 1\t2", "3\t1"]  # [9 7 8] = [3 1 2]
    assert stats["fraction"] == 4
    assert (stats["train_samples"], stats["first_train_session_trimmed_from"]) == (16, None)


def test_fraction_that_leaves_no_sample_is_an_error(tmp_path):
    raw = _write(tmp_path, "yoochoose-clicks.dat", _fraction_log())
    with pytest.raises(MTDError, match="less than one sample"):
        prepare.prepare("yoochoose", raw, str(tmp_path / "out"), fraction=128)
    assert not (tmp_path / "out").exists()


B = 1433116800000  # 2015-06-01T00:00:00Z in milliseconds
MINUTE, DAY = 60_000, 86_400_000


def _retailrocket_log():
    """Hand-made events.csv; file order deliberately not by time nor by visitor."""
    events = [  # (time, visitor, event, item, transaction)
        (B + 61 * MINUTE + 1, 1, "view", 102, ""),  # R2: 30:00.001 after R1's last view
        (B + 63 * MINUTE, 1, "view", 101, ""),
        (B + 62 * MINUTE, 1, "view", 102, ""),
        (B + 61 * MINUTE + 1, 1, "view", 101, ""),  # same time as the first row: file order
        (B + 31 * MINUTE, 1, "view", 103, ""),  # R1: exactly 30:00.000 after 102
        (B, 1, "view", 101, ""),
        (B + MINUTE, 1, "view", 102, ""),
        (B + 2 * MINUTE, 2, "view", 102, ""),  # R3: 2 views, dropped
        (B + 3 * MINUTE, 2, "view", 103, ""),
        (B + DAY, 3, "view", 103, ""),  # R4
        (B + DAY + MINUTE, 3, "view", 101, ""),
        (B + DAY + MINUTE + 30_000, 3, "addtocart", 104, ""),
        (B + DAY + 2 * MINUTE, 3, "view", 102, ""),
        (B + DAY + 2 * MINUTE + 30_000, 3, "transaction", 101, "5"),
        (B + DAY + 3 * MINUTE, 3, "view", 103, ""),
        (B + 2 * DAY, 4, "view", 104, ""),  # R5: 104 is rare -> [101 102], dropped
        (B + 2 * DAY + MINUTE, 4, "view", 101, ""),
        (B + 2 * DAY + 2 * MINUTE, 4, "view", 102, ""),
        (B + 3 * DAY + 3 * MINUTE, 5, "view", 101, ""),  # R6: ends on the split date
        (B + 3 * DAY + 4 * MINUTE, 5, "view", 102, ""),
        (B + 3 * DAY + 5 * MINUTE, 5, "view", 103, ""),
        (B + 10 * DAY, 7, "view", 102, ""),  # R8: the latest session, B + 10 d + 5 min
        (B + 10 * DAY + MINUTE, 7, "view", 101, ""),
        (B + 10 * DAY + 4 * MINUTE, 7, "view", 105, ""),
        (B + 10 * DAY + 5 * MINUTE, 7, "view", 105, ""),
        (B + 9 * DAY, 6, "view", 101, ""),  # R7
        (B + 9 * DAY + MINUTE, 6, "view", 105, ""),
        (B + 9 * DAY + 2 * MINUTE, 6, "view", 102, ""),
        (B + 9 * DAY + 3 * MINUTE, 6, "view", 103, ""),
        (B + 9 * DAY + 10 * MINUTE, 8, "view", 105, ""),  # R10: only 105
        (B + 9 * DAY + 11 * MINUTE, 8, "view", 105, ""),
        (B + 9 * DAY + 12 * MINUTE, 8, "view", 105, ""),
        (B + 8 * DAY, 1, "view", 103, ""),  # R9: visitor 1 again
        (B + 8 * DAY + MINUTE, 1, "view", 102, ""),
        (B + 8 * DAY + 2 * MINUTE, 1, "view", 101, ""),
        (B + 8 * DAY + 3 * MINUTE, 1, "view", 102, ""),
        (B + 8 * DAY + 4 * MINUTE, 1, "view", 103, ""),
    ]
    return ["timestamp,visitorid,event,itemid,transactionid"] + [
        f"{t},{visitor},{event},{item},{transaction}"
        for t, visitor, event, item, transaction in events]


def test_retailrocket_hand_log(tmp_path):
    raw = _write(tmp_path, "events.csv", _retailrocket_log())
    train, test, items, stats = _prepare(tmp_path, "retailrocket", raw)
    # Sessions: R1 [101 102 103] (a gap of exactly 30 min does not cut); R2 [102 101 102
    # 101] (its two views at the same time keep file order); R3 (2 views) dropped; R4 [103
    # 101 102 103] (addtocart and transaction ignored); R5 -> [101 102] once 104 goes (1
    # view < 5): dropped (<= 2); R6 ends on the split date B + 3 d + 5 min = max (R8) - 7 d.
    # Training by date: R1, R2, R4 -> 101=1 102=2 103=3.
    assert train == ["1 2 3", "2 1 2 1", "3 1 2 3"]
    assert items == ["item_id\traw_item_id", "1\t101", "2\t102", "3\t103"]
    # Test by date: R9 [3 2 1 2 3] -> pairs down to prefix length 2; R7 [101 105 102 103]
    # -> [1 2 3]; R10 [105 105 105] -> []; R8 [102 101 105 105] -> [2 1]: too short.
    assert test == ["3 2 1 2\t3", "3 2 1\t2", "3 2\t1", "1 2\t3"]
    assert stats["split_date"] == "2015-06-04T00:05:00"
    assert stats["sessions_on_split_date"] == 1
    assert (stats["rows_read"], stats["clicks_read"]) == (37, 35)  # 2 non-view events
    assert (stats["train_sessions"], stats["train_samples"], stats["test_sessions"],
            stats["test_samples"], stats["items"]) == (3, 5, 2, 4, 3)
    assert (train, test, items) == _reference_protocol(raw, "retailrocket")


def _random_log(dataset, seed):
    rng = random.Random(seed)
    items = lambda: str(1000 + min(int(rng.paretovariate(0.8)), 40))  # noqa: E731
    lines = []
    if dataset == "yoochoose":
        for session in range(1, 400):
            start = rng.randrange(4 * 86400)
            for k in range(rng.choice([1, 1, 2, 2, 3, 4, 6])):
                second = start + rng.randrange(0, 300) * k
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1396310400 + second))
                lines.append(f"{session},{stamp}.{rng.randrange(1000):03d}Z,{items()},0")
    elif dataset == "diginetica":
        lines.append("session_id;user_id;item_id;timeframe;eventdate")
        for session in range(1, 400):
            day = rng.randrange(30)
            for _ in range(rng.choice([1, 2, 2, 3, 5])):
                day = min(29, day + rng.choice([0, 0, 1]))
                lines.append(f"{session};NA;{items()};{rng.randrange(20)};2016-05-{day + 1:02d}")
    else:
        lines.append("timestamp,visitorid,event,itemid,transactionid")
        for _ in range(400):  # bursts of a visitor's events, gaps around 30 minutes
            visitor, moment = rng.randrange(40), B + rng.randrange(30 * DAY)
            for _ in range(rng.choice([1, 2, 3, 4, 6])):
                moment += rng.choice([0, MINUTE, 10 * MINUTE, 30 * MINUTE, 30 * MINUTE + 1])
                event = rng.choice(["view"] * 8 + ["addtocart", "transaction"])
                lines.append(f"{moment},{visitor},{event},{items()},")
    # Move some rows elsewhere, so sessions come in several runs and out of time order.
    body = lines[1:] if dataset != "yoochoose" else lines
    for _ in range(40):
        i, j = rng.randrange(len(body)), rng.randrange(len(body))
        body[i], body[j] = body[j], body[i]
    return lines[:1] + body if dataset != "yoochoose" else body


@pytest.mark.parametrize("dataset,fraction", [
    ("yoochoose", 1), ("yoochoose", 4), ("yoochoose", 64), ("diginetica", None),
    ("retailrocket", None)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_logs_equal_reference_loop(tmp_path, dataset, fraction, seed):
    raw = _write(tmp_path, "raw.log", _random_log(dataset, seed))
    train, test, items, _ = _prepare(tmp_path, dataset, raw, fraction=fraction)
    assert (train, test, items) == _reference_protocol(raw, dataset, fraction or 1)


def test_small_blocks_give_the_same_output(tmp_path, monkeypatch):
    raw = _write(tmp_path, "raw.log", _random_log("yoochoose", 3))
    expected = _prepare(tmp_path, "yoochoose", raw, fraction=4)[:3]
    monkeypatch.setattr(csv_blocks, "_BLOCK_BYTES", 100)  # about 3 lines per block
    assert _prepare(tmp_path, "yoochoose", raw, fraction=4)[:3] == expected


def test_output_reads_back_with_the_text_readers(tmp_path):
    raw = _write(tmp_path, "yoochoose-clicks.dat", YOOCHOOSE_LOG)
    prepare.prepare("yoochoose", raw, str(tmp_path / "out"), fraction=1)
    train = formats.read_train_text(tmp_path / "out" / formats.TRAIN_TEXT)
    prefixes, targets = formats.read_test_text(tmp_path / "out" / formats.TEST_TEXT)
    assert train.to_lists() == [[1, 2, 3], [3, 1], [1, 2], [2, 1, 2]]
    assert prefixes.to_lists() == [[1, 2], [1], [3], [1]]
    assert targets.tolist() == [3, 2, 2, 3]


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def _with_bad_line(line_number, bad_line, base=YOOCHOOSE_LOG):
    lines = list(base)
    lines.insert(line_number - 1, bad_line)
    return lines


@pytest.mark.parametrize("bad_line,problem", [
    ("5,2014-04-01T22:00:00.000Z,33", "wrong number of fields: expected 4 fields"),
    ("5,2014-04-01T22:00:00.000Z,33,0,9", "wrong number of fields: expected 4 fields"),
    ("5,2014-04-01T22:00:00.000Z,,0", "bad item_id: the item_id field is empty"),
    ("x5,2014-04-01T22:00:00.000Z,33,0", "bad session_id: session_id 'x5' is not a non-negative"),
    ("5,2014-04-01T22:00:00.000Z,-33,0", "bad item_id: item_id '-33' is not a non-negative"),
    ("5,2014-04-01 22:00:00,33,0", "unparsable timestamp: timestamp '2014-04-01 22:00:00'"),
    ("5,2014-13-01T22:00:00.000Z,33,0", "unparsable timestamp"),
])
def test_malformed_row_names_file_line_and_problem(tmp_path, bad_line, problem):
    # A blank line before the bad one: line numbers stay physical.
    lines = _with_bad_line(7, bad_line)
    lines.insert(2, "")
    raw = _write(tmp_path, "clicks.dat", lines)
    with pytest.raises(DataError) as caught:
        prepare.prepare("yoochoose", raw, str(tmp_path / "out"))
    assert caught.value.path == raw
    assert caught.value.record == 8
    assert problem in caught.value.problem
    assert not (tmp_path / "out").exists()


def test_malformed_row_found_in_a_later_block(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_blocks, "_BLOCK_BYTES", 64)
    raw = _write(tmp_path, "clicks.dat", _with_bad_line(27, "10,2014-04-03T11:30:00.000Z,4x4,0"))
    with pytest.raises(DataError, match=r"clicks\.dat: record 27: bad item_id"):
        prepare.prepare("yoochoose", raw, str(tmp_path / "out"))


def test_skip_bad_rows_counts_and_reports(tmp_path):
    lines = _with_bad_line(3, "1,not a time,22,0")
    lines = _with_bad_line(6, "2,2014-04-01T09:00:00.000Z", lines)
    lines = _with_bad_line(9, "x,2014-04-01T09:00:00.000Z,1,0", lines)
    lines = _with_bad_line(10, "y,2014-04-01T09:00:00.000Z,1,0", lines)
    raw = _write(tmp_path, "clicks.dat", lines)
    train, test, _, stats = _prepare(tmp_path, "yoochoose", raw, fraction=1, skip_bad_rows=True)
    assert stats["rows_skipped"] == {
        "total": 4, "first_lines": [3, 6, 9, 10],
        "by_problem": {"bad session_id": 2, "unparsable timestamp": 1,
                       "wrong number of fields": 1}}
    assert stats["rows_read"] == len(YOOCHOOSE_LOG) + 4
    # The good rows give the same answer as the clean log.
    assert train == ["1 2 3", "3 1", "1 2", "2 1 2"]
    assert test == ["1 2\t3", "1\t2", "3\t2", "1\t3"]


def test_crlf_line_ends_and_stray_carriage_return(tmp_path):
    raw = tmp_path / "clicks.dat"
    raw.write_bytes(("\r\n".join(YOOCHOOSE_LOG) + "\r\n\r\n").encode())
    train, test, _, _ = _prepare(tmp_path, "yoochoose", str(raw), fraction=1)
    assert (train, test) == (["1 2 3", "3 1", "1 2", "2 1 2"], ["1 2\t3", "1\t2", "3\t2", "1\t3"])
    raw.write_bytes(("\n".join(YOOCHOOSE_LOG[:5]) + "\n1,2014-04-01T10:00:00Z,11\r,0\n").encode())
    with pytest.raises(DataError, match="record 6: carriage return inside a line"):
        prepare.prepare("yoochoose", str(raw), str(tmp_path / "out2"), fraction=1)


def test_wrong_header_is_line_1(tmp_path):
    raw = _write(tmp_path, "train-item-views.csv", ["sessionId;userId;itemId;timeframe;eventdate"])
    with pytest.raises(DataError, match="record 1: expected the header"):
        prepare.prepare("diginetica", raw, str(tmp_path / "diginetica"))


def test_retailrocket_bad_timestamp(tmp_path):
    lines = _retailrocket_log()
    lines.insert(4, "2015-06-01,1,view,101,")
    raw = _write(tmp_path, "events.csv", lines)
    with pytest.raises(DataError, match=r"record 5: bad timestamp: timestamp '2015-06-01'"):
        prepare.prepare("retailrocket", raw, str(tmp_path / "retailrocket"))


def test_missing_raw_file_and_bad_arguments(tmp_path):
    with pytest.raises(DatasetMissingError, match="yoochoose-clicks.dat from the RecSys"):
        prepare.prepare("yoochoose", str(tmp_path / "nope.dat"), str(tmp_path / "out"))
    with pytest.raises(MTDError, match=r"--raw .* is a folder; --raw takes the file "
                                       r"yoochoose-clicks.dat"):
        prepare.prepare("yoochoose", str(tmp_path), str(tmp_path / "out"))
    raw = _write(tmp_path, "events.csv", _retailrocket_log())
    with pytest.raises(MTDError, match="unknown --format 'movielens'"):
        prepare.prepare("movielens", raw, str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="^fraction must be a positive integer, got 0$"):
        prepare.prepare("retailrocket", raw, str(tmp_path / "out"), fraction=0)
    with pytest.raises(ConfigError, match=r"^test_days must be in \(0, 36500\], got -1$"):
        prepare.prepare("retailrocket", raw, str(tmp_path / "out"), test_days=-1)
    with pytest.raises(ConfigError, match="unknown protocol option 'min_count'"):
        prepare.prepare("retailrocket", raw, str(tmp_path / "out"), min_count=3)
    with pytest.raises(ConfigError, match="--frequency must be a positive integer, got 0"):
        prepare.prepare("retailrocket", raw, str(tmp_path / "out"), frequency=0)
    assert sorted(os.listdir(tmp_path)) == ["events.csv"]


def test_protocol_options_replace_the_presets_values(tmp_path):
    # RetailRocket's log with Diginetica's session length and shortest prefix: R3 [102 103]
    # (dated B + 3 min, the earliest) and R5 [101 102] now train, so 102=1 103=2 101=3;
    # the test session R8 [102 101] now gives a pair, and test prefixes start at length 1.
    raw = _write(tmp_path, "events.csv", _retailrocket_log())
    train, test, items, stats = _prepare(tmp_path, "retailrocket", raw, min_session_length=2,
                                         min_prefix_len=1)
    assert train == ["1 2", "3 1 2", "1 3 1 3", "2 3 1 2", "3 1"]
    # R9 [2 1 3 1 2], R7 [3 1 2] (105 unknown), R10 [] and R8 [1 3].
    assert test == ["2 1 3 1\t2", "2 1 3\t1", "2 1\t3", "2\t1", "3 1\t2", "3\t1", "1\t3"]
    assert items == ["item_id\traw_item_id", "1\t102", "2\t103", "3\t101"]
    assert stats["min_prefix_len"] == 1
    # The registry's settings are the ones each protocol built its published split with.
    for dataset, dataset_protocol in protocol.PROTOCOLS.items():
        assert registry.defaults_for(dataset).min_prefix_len == dataset_protocol.min_prefix_len


# --------------------------------------------------------------------------------------
# The output folder
# --------------------------------------------------------------------------------------


def test_failed_write_leaves_no_output_folder(tmp_path, monkeypatch):
    raw = _write(tmp_path, "yoochoose-clicks.dat", YOOCHOOSE_LOG)
    out_parent = tmp_path / "parent"
    out_parent.mkdir()

    def write_then_fail(folder, *args):
        with open(os.path.join(folder, formats.TRAIN_TEXT), "w") as handle:
            handle.write("1 2\n")
        raise OSError("disk full")

    monkeypatch.setattr(formats, "write_text_split", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        prepare.prepare("yoochoose", raw, str(out_parent / "out"), fraction=1)
    assert os.listdir(out_parent) == []


def test_out_is_any_new_or_empty_folder_training_can_find(tmp_path):
    raw = _write(tmp_path, "yoochoose-clicks.dat", YOOCHOOSE_LOG)
    empty = tmp_path / "my_shop"
    empty.mkdir()
    prepare.prepare("yoochoose", raw, str(empty), fraction=1)
    assert sorted(os.listdir(empty)) == sorted(
        [formats.TRAIN_TEXT, formats.TEST_TEXT, item_catalog.ITEMS_FILE,
         dataset_info.DATASET_FILE])
    assert registry.load_dataset("my_shop", tmp_path).train.to_lists() == [
        [1, 2, 3], [3, 1], [1, 2], [2, 1, 2]]
    # A folder that exists and is not empty is never replaced, not even an earlier output.
    for folder in (empty, tmp_path / "home"):
        folder.mkdir(exist_ok=True)
        (folder / "thesis.tex").write_text("keep me")
        before = sorted(os.listdir(folder))
        with pytest.raises(MTDError, match=rf"^--out {folder} exists and is not empty; choose "
                                           r"a new folder \(or remove this one\)$"):
            prepare.prepare("yoochoose", raw, str(folder), fraction=1)
        assert sorted(os.listdir(folder)) == before
    # Names training would read as another folder, or generate, are refused.
    for name, problem in (("yoochoose", "--dataset=yoochoose reads the folder yoochoose1_64"),
                          ("synthetic_m10_s20", "names a generated synthetic dataset")):
        with pytest.raises(MTDError, match=problem):
            prepare.prepare("yoochoose", raw, str(tmp_path / name), fraction=1)
        assert not (tmp_path / name).exists()


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mtd_tf.data.prepare", *args], cwd=REPO_ROOT,
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT), capture_output=True,
                          text=True, timeout=120)


def test_cli_success_and_one_line_error(tmp_path):
    raw = _write(tmp_path, "events.csv", _retailrocket_log())
    result = _run_cli("--format=retailrocket", f"--raw={raw}", f"--out={tmp_path / 'rr'}")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"format": "retailrocket", "out": str(tmp_path / "rr"), "dataset": "rr",
                       "data_dir": str(tmp_path), "min_prefix_len": 2, "frequency": 6,
                       "train_sessions": 3, "train_samples": 5, "test_samples": 4, "items": 3}
    assert (tmp_path / "rr" / formats.TRAIN_TEXT).read_text() == "1 2 3\n2 1 2 1\n3 1 2 3\n"

    bad = _write(tmp_path, "bad.dat", _with_bad_line(4, "1,2014-04-01T10:00:00Z,abc,0"))
    # --dataset is the flag's earlier name, kept for existing commands.
    result = _run_cli("--dataset=yoochoose", f"--raw={bad}", f"--out={tmp_path / 'yc'}")
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: {bad}: record 4: bad item_id: item_id 'abc' is not a "
                           "non-negative integer"]
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.dat", "events.csv", "rr"]
