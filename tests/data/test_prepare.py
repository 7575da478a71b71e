"""Tests for mtd_tf.data.prepare (raw logs -> dataset folder), protocol, raw_logs, csv_blocks.

Faithfulness is checked two ways: against `_reference_protocol`, a plain loop transliteration
of SR-GNN's datasets/preprocess.py (plus the RetailRocket cut and the documented 1/F rule),
on the real Diginetica sample and on random logs; and on small logs whose answers are
worked out by hand in the comments.
"""

import calendar
import collections
import csv
import json
import os
import random
import subprocess
import sys
import time

import pytest

from mtd_tf.data import csv_blocks
from mtd_tf.data import formats
from mtd_tf.data import item_catalog
from mtd_tf.data import prepare
from mtd_tf.data import protocol
from mtd_tf.data import registry
from mtd_tf.errors import DataError
from mtd_tf.errors import DatasetMissingError
from mtd_tf.errors import MTDError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# --------------------------------------------------------------------------------------
# The reference: obviously correct, slow loops.
# --------------------------------------------------------------------------------------


def _reference_protocol(path, dataset, fraction=1):
    """SR-GNN's preprocess.py as loops; returns the three output files' lines."""
    if dataset == "retailrocket":
        sess_clicks, sess_date = _reference_retailrocket_sessions(path)
        min_length, window, min_prefix = 3, 7 * 86400 * 1000, 2
    else:
        sess_clicks, sess_date = _reference_srgnn_read(path, dataset)
        min_length, window, min_prefix = 2, (86400 if dataset == "yoochoose" else 7 * 86400), 1
    for s in list(sess_clicks):
        if len(sess_clicks[s]) < min_length:
            del sess_clicks[s]
            del sess_date[s]
    counts = collections.Counter(i for seq in sess_clicks.values() for i in seq)
    for s in list(sess_clicks):
        kept = [i for i in sess_clicks[s] if counts[i] >= 5]
        if len(kept) < min_length:
            del sess_clicks[s]
            del sess_date[s]
        else:
            sess_clicks[s] = kept
    dates = list(sess_date.items())
    maxdate = max(date for _, date in dates)
    splitdate = maxdate - window
    tra_sess = sorted([x for x in dates if x[1] < splitdate], key=lambda x: x[1])
    tes_sess = sorted([x for x in dates if x[1] > splitdate], key=lambda x: x[1])
    tra_seqs = [sess_clicks[s] for s, _ in tra_sess]
    if fraction > 1:
        samples = []  # (session index, prefix length), SR-GNN's order: longest prefix first
        for index, seq in enumerate(tra_seqs):
            for i in range(1, len(seq) - min_prefix + 1):
                samples.append((index, len(seq) - i))
        kept_samples = samples[-(len(samples) // fraction):]
        first = kept_samples[0][0]
        longest = max(length for index, length in kept_samples if index == first)
        tra_seqs = [tra_seqs[first][:longest + 1]] + tra_seqs[first + 1:]
    item_dict = {}
    train_lines = []
    for seq in tra_seqs:
        for i in seq:
            if i not in item_dict:
                item_dict[i] = len(item_dict) + 1
        train_lines.append(" ".join(str(item_dict[i]) for i in seq))
    test_lines = []
    for s, _ in tes_sess:
        seq = [item_dict[i] for i in sess_clicks[s] if i in item_dict]
        if len(seq) < min_prefix + 1:
            continue
        for i in range(1, len(seq) - min_prefix + 1):
            test_lines.append(" ".join(map(str, seq[:-i])) + "\t" + str(seq[-i]))
    item_lines = ["item_id\traw_item_id"] + [f"{v}\t{k}" for k, v in item_dict.items()]
    return train_lines, test_lines, item_lines


def _reference_srgnn_read(path, dataset):
    """SR-GNN's reading loop: the date is that of the session's row read last."""
    def to_date(text):  # time.mktime in SR-GNN; UTC here (no daylight saving)
        if dataset == "yoochoose":
            return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
        return calendar.timegm(time.strptime(text, "%Y-%m-%d"))

    with open(path, newline="") as handle:
        if dataset == "yoochoose":
            reader = csv.DictReader(handle, fieldnames=["session_id", "timestamp", "item_id", "x"])
        else:
            reader = csv.DictReader(handle, delimiter=";")
        sess_clicks, sess_date = {}, {}
        curid, curdate = -1, None
        for data in reader:
            sessid = data["session_id"]
            if curdate and curid != sessid:
                sess_date[curid] = to_date(curdate)
            curid = sessid
            if dataset == "yoochoose":
                item, curdate = data["item_id"], data["timestamp"]
            else:
                item, curdate = (data["item_id"], int(data["timeframe"])), data["eventdate"]
            sess_clicks.setdefault(sessid, []).append(item)
        sess_date[curid] = to_date(curdate)
    if dataset == "diginetica":
        for s in sess_clicks:
            sess_clicks[s] = [i for i, _ in sorted(sess_clicks[s], key=lambda c: c[1])]
    return sess_clicks, sess_date


def _reference_retailrocket_sessions(path):
    with open(path, newline="") as handle:
        views = [(int(row["timestamp"]), int(row["visitorid"]), row["itemid"])
                 for row in csv.DictReader(handle) if row["event"] == "view"]
    views.sort(key=lambda view: (view[1], view[0]))  # stable: ties keep file order
    sess_clicks, sess_date = {}, {}
    previous = None
    for timestamp, visitor, item in views:
        if previous is None or visitor != previous[1] or timestamp - previous[0] > 30 * 60 * 1000:
            session = len(sess_clicks)
            sess_clicks[session] = []
        sess_clicks[session].append(item)
        sess_date[session] = timestamp
        previous = (timestamp, visitor)
    return sess_clicks, sess_date


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def _output(out_dir):
    """(train lines, test lines, items lines, stats) of a prepared folder."""
    read = lambda name: (out_dir / name).read_text().splitlines()  # noqa: E731
    return (read(formats.TRAIN_TEXT), read(formats.TEST_TEXT), read(item_catalog.ITEMS_FILE),
            json.loads((out_dir / prepare.STATS_FILE).read_text()))


def _prepare(tmp_path, dataset, raw, fraction=None, **kwargs):
    out_dir = tmp_path / prepare.dataset_name(dataset, fraction or 64)
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
    assert stats["dataset"] == "yoochoose1_64"
    assert (stats["full_train_sessions"], stats["full_train_samples"], stats["train_sessions"],
            stats["train_samples"], stats["first_train_session_trimmed_from"]) == (33, 66, 1, 1, 3)
    assert (train, test, items) == _reference_protocol(raw, "yoochoose", fraction=64)


def test_yoochoose_fraction_4_by_hand(tmp_path):
    raw = _write(tmp_path, "yoochoose-clicks.dat", _fraction_log())
    train, test, items, stats = _prepare(tmp_path, "yoochoose", raw, fraction=4)
    # int(66 / 4) = 16 samples = the last 8 sessions whole: 7 x [7 8 9] and [8 9 7].
    assert train == ["1 2 3"] * 7 + ["2 3 1"]
    assert test == ["3 1\t2", "3\t1"]  # [9 7 8] = [3 1 2]
    assert stats["dataset"] == "yoochoose1_4"
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
    with pytest.raises(MTDError, match="applies to yoochoose only"):
        prepare.prepare("retailrocket", raw, str(tmp_path / "out"), fraction=64)
    with pytest.raises(MTDError, match="unknown --dataset"):
        prepare.prepare("movielens", raw, str(tmp_path / "out"))


def test_folder_must_be_named_for_its_dataset_settings(tmp_path):
    raw = _write(tmp_path, "events.csv", _retailrocket_log())
    with pytest.raises(MTDError, match=r"--out .*rr: training takes retailrocket's settings .* "
                                       r"name the folder retailrocket$"):
        prepare.prepare("retailrocket", raw, str(tmp_path / "rr"))
    assert not (tmp_path / "rr").exists()
    yoochoose_raw = _write(tmp_path, "yoochoose-clicks.dat", YOOCHOOSE_LOG)
    with pytest.raises(MTDError, match=r"--out .*yoochoose: --dataset=yoochoose reads the "
                                       r"folder yoochoose1_64, not this one; name the folder "
                                       r"yoochoose1_4$"):
        prepare.prepare("yoochoose", yoochoose_raw, str(tmp_path / "yoochoose"), fraction=4)
    assert not (tmp_path / "yoochoose").exists()
    for fraction, folder in ((4, "yoochoose1_64"), (64, "yoochoose1_4")):
        with pytest.raises(MTDError, match=rf"--out .*{folder}: {folder} names another "
                                           rf"dataset; name the folder yoochoose1_{fraction}$"):
            prepare.prepare("yoochoose", yoochoose_raw, str(tmp_path / folder),
                            fraction=fraction)
    # The registry's settings are the ones each protocol built its split with.
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


def test_replaces_its_own_output_but_not_a_foreign_folder(tmp_path):
    raw = _write(tmp_path, "yoochoose-clicks.dat", YOOCHOOSE_LOG)
    out_dir = tmp_path / "out"
    prepare.prepare("yoochoose", raw, str(out_dir), fraction=1)
    (out_dir / "stale.txt").write_text("x")
    prepare.prepare("yoochoose", raw, str(out_dir), fraction=1)
    assert sorted(os.listdir(out_dir)) == sorted(
        [formats.TRAIN_TEXT, formats.TEST_TEXT, item_catalog.ITEMS_FILE, prepare.STATS_FILE])
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(MTDError, match="not written by this tool"):
        prepare.prepare("yoochoose", raw, str(foreign), fraction=1)
    assert (foreign / "thesis.tex").read_text() == "keep me"


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mtd_tf.data.prepare", *args], cwd=REPO_ROOT,
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT), capture_output=True,
                          text=True, timeout=120)


def test_cli_success_and_one_line_error(tmp_path):
    raw = _write(tmp_path, "events.csv", _retailrocket_log())
    result = _run_cli("--dataset=retailrocket", f"--raw={raw}", f"--out={tmp_path / 'retailrocket'}")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["dataset"], summary["test_samples"], summary["items"]) == ("retailrocket", 4, 3)
    assert (tmp_path / "retailrocket" / formats.TRAIN_TEXT).read_text() == "1 2 3\n2 1 2 1\n3 1 2 3\n"

    bad = _write(tmp_path, "bad.dat", _with_bad_line(4, "1,2014-04-01T10:00:00Z,abc,0"))
    result = _run_cli("--dataset=yoochoose", f"--raw={bad}", f"--out={tmp_path / 'yc'}")
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: {bad}: record 4: bad item_id: item_id 'abc' is not a "
                           "non-negative integer"]
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.dat", "events.csv", "retailrocket"]
