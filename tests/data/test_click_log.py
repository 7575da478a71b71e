"""A click log with named columns (`--format=clicks`): CSV, TSV and Parquet, string ids.

The split must be the one the protocol gives on the same clicks: equal to the Yoochoose
preset's on a log both can read, and to `reference_clicks` (the protocol as loops) on logs
whose sessions come in several runs and out of time order; times in every accepted form
mean the same moment; every bad input is one error line naming the file (and the row).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mtd_tf.data import click_log
from mtd_tf.data import column_parsers
from mtd_tf.data import csv_blocks
from mtd_tf.data import dataset_info
from mtd_tf.data import formats
from mtd_tf.data import item_catalog
from mtd_tf.data import prepare
from mtd_tf.errors import ConfigError
from mtd_tf.errors import DataError
from tests.data import click_logs
from tests.data.reference_protocol import DAY_MS
from tests.data.reference_protocol import reference_clicks
from tests.data.reference_protocol import reference_protocol

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read_folder(folder):
    read = lambda name: (folder / name).read_text().splitlines()  # noqa: E731
    return read(formats.TRAIN_TEXT), read(formats.TEST_TEXT), read(item_catalog.ITEMS_FILE)


def _reference_for_written(rows, **options):
    """reference_clicks on the ids as `_write_clicks` writes them."""
    return reference_clicks([(f"s{session}", moment, f"sku-{item}")
                             for session, moment, item in rows], **options)


# --------------------------------------------------------------------------------------
# The split
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", ["csv", "tsv", "parquet"])
@pytest.mark.parametrize("seed,fraction", [(0, 1), (1, 4), (2, 1)])
def test_same_split_as_the_yoochoose_preset_on_the_same_clicks(tmp_path, extension, seed,
                                                               fraction):
    # Whole seconds, each session's rows together and in time order: there the preset's
    # rules (file order, the date of the last row, truncated to the second) and the clicks
    # rules (time order, the latest click) agree.
    rows = [(session, moment - moment % 1000, item)
            for session, moment, item in click_logs.random_clicks(seed, in_order=True)]
    preset_raw = tmp_path / "yoochoose-clicks.dat"
    preset_raw.write_text("".join(f"{session},{click_logs.iso(moment)},{item},0\n"
                                  for session, moment, item in rows))
    prepare.prepare("yoochoose", str(preset_raw), str(tmp_path / "preset"), fraction=fraction)
    raw = click_logs.write_clicks(tmp_path / f"clicks.{extension}", rows)
    prepare.prepare("clicks", raw, str(tmp_path / "clicks"), test_days=1, fraction=fraction)

    train, test, items = _read_folder(tmp_path / "clicks")
    preset_train, preset_test, preset_items = _read_folder(tmp_path / "preset")
    assert (train, test) == (preset_train, preset_test)
    assert len(train) > 10 and len(test) > 10
    assert items == preset_items[:1] + [line.replace("\t", "\tsku-")
                                        for line in preset_items[1:]]
    assert (train, test, preset_items) == reference_protocol(str(preset_raw), "yoochoose",
                                                             fraction)


@pytest.mark.parametrize("extension,time_format,parquet_time", [
    ("csv", "iso", None), ("tsv", "s", None), ("csv", "ms", None),
    ("parquet", "iso", None), ("parquet", "ms", "int"), ("parquet", "iso", "timestamp")])
def test_shuffled_log_equals_the_protocol_loops(tmp_path, extension, time_format, parquet_time):
    rows = click_logs.random_clicks(3, in_order=False)
    raw = click_logs.write_clicks(tmp_path / f"clicks.{extension}", rows, time_format, parquet_time)
    prepare.prepare("clicks", raw, str(tmp_path / "out"),
                    click_log.ClickLogFormat(time_format=time_format), test_days=1,
                    min_item_count=3)
    assert _read_folder(tmp_path / "out") == _reference_for_written(
        rows, window=DAY_MS, min_count=3)


def test_named_columns_and_text_ids(tmp_path):
    # Items "07" and "7" are two items; session "a" comes back after session "b" started;
    # session b's clicks are out of time order in the file.
    raw = tmp_path / "log.tsv"
    raw.write_text("when\tproduct\tvisit\n"
                   "2026-12-01\t07\ta\n"
                   "2026-12-01T00:00:02\t7\tb\n"
                   "2026-12-01T00:00:01+00:00\t07\tb\n"
                   "2026-12-01T00:00:01Z\t7\ta\n"
                   "2026-12-09T01:00:00.5\t7\tc\n"
                   "2026-12-09T02:00:00+01:00\t07\tc\n")
    fmt = click_log.ClickLogFormat(session_column="visit", time_column="when",
                                   item_column="product")
    prepare.prepare("clicks", str(raw), str(tmp_path / "out"), fmt, min_item_count=1)
    train, test, items = _read_folder(tmp_path / "out")
    # a = [07 7] dated 12-01 00:00:01 and b = [07 7] (in time order) dated 00:00:02 train;
    # c = [07 7] (02:00+01:00 is 01:00:00 UTC, before 01:00:00.5) dated 12-09 tests.
    assert train == ["1 2", "1 2"]
    assert items == ["item_id\traw_item_id", "1\t07", "2\t7"]
    assert test == ["1\t2"]


def test_parquet_integer_ids_read_as_decimal_text(tmp_path):
    rows = click_logs.random_clicks(4, in_order=False)
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({
        "session_id": pa.array([int(session) for session, _, _ in rows], pa.int64()),
        "timestamp": pa.array([moment * 1000 for _, moment, _ in rows], pa.timestamp("us")),
        "item_id": pa.array([int(item) for _, _, item in rows], pa.int32())}), path)
    prepare.prepare("clicks", str(path), str(tmp_path / "out"), test_days=1)
    assert _read_folder(tmp_path / "out") == reference_clicks(rows, window=DAY_MS)


# --------------------------------------------------------------------------------------
# Times and ids, column by column
# --------------------------------------------------------------------------------------


def test_time_formats_name_the_same_moment():
    moment = 1764978000123  # 2025-12-05T23:40:00.123Z
    iso = ["2025-12-05T23:40:00.123Z", "2025-12-05 23:40:00.123", "2025-12-06T00:40:00.123+01:00",
           "2025-12-06T00:40:00.123+0100", "2025-12-05T23:40:00.123456789Z"]
    values, bad = column_parsers.parse_times(pa.array(iso), "iso")
    assert bad is None and values.tolist() == [moment] * len(iso)
    values, bad = column_parsers.parse_times(pa.array(["2025-12-05", "2025-12-05T23:40"]), "iso")
    assert bad is None and values.tolist() == [moment - moment % DAY_MS, moment - 123]
    values, bad = column_parsers.parse_times(pa.array(["1764978000.123", "1764978000"]), "s")
    assert bad is None and values.tolist() == [moment, moment - 123]
    values, bad = column_parsers.parse_times(pa.array([str(moment)]), "ms")
    assert bad is None and values.tolist() == [moment]


@pytest.mark.parametrize("time_format,text", [
    ("iso", "2025-13-05"), ("iso", "2025-02-30T10:00:00"), ("iso", "yesterday"), ("iso", ""),
    ("iso", "2025-12-05T25:00:00Z"), ("s", "1.5e9"), ("s", "-5"), ("ms", "1764978000.5")])
def test_a_bad_time_is_flagged_in_its_row(time_format, text):
    good = {"iso": "2025-12-05T10:00:00", "s": "1764978000", "ms": "1764978000000"}[time_format]
    values, bad = column_parsers.parse_times(pa.array([good, text, good]), time_format)
    assert bad.tolist() == [False, True, False]
    assert values[0] == values[2] > 0


def test_unusable_ids_are_flagged():
    ids = pa.array(["sku-1", "", " sku", "sku ", "a\tb", "ok ok", "ü"])
    assert column_parsers.check_ids(ids).tolist() == [False, True, True, True, True, False,
                                                      False]
    invalid_utf8 = pa.array([b"sku", b"\xff\xfe"], pa.binary()).view(pa.string())
    assert column_parsers.check_ids(invalid_utf8).tolist() == [False, True]


def test_an_id_is_usable_exactly_when_items_tsv_reads_it_back():
    # items.tsv's reader splits lines with str.splitlines and refuses str.strip's
    # whitespace around an id: every character inside, before and after an id.
    ids = [text for code in range(1, 0x3001)
           for text in (f"a{chr(code)}b", f"{chr(code)}a", f"a{chr(code)}")]
    readable = [text == text.strip() and "\t" not in text and len(text.splitlines()) == 1
                for text in ids]
    assert (~column_parsers.check_ids(pa.array(ids))).tolist() == readable


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def _small_csv(tmp_path, extra_line=None, at=3):
    rows = click_logs.random_clicks(5, in_order=True)
    raw = tmp_path / "log.csv"
    click_logs.write_clicks(raw, rows)
    if extra_line is not None:
        lines = raw.read_text().splitlines()
        lines.insert(at - 1, extra_line)
        raw.write_text("\n".join(lines) + "\n")
    return str(raw)


@pytest.mark.parametrize("bad_line,problem", [
    ("0,s1,not a time,sku-1", "unparsable timestamp: timestamp 'not a time' is not an ISO 8601"),
    ("0,s1,2014-04-01T10:00:00Z,", "bad item_id: the item_id field is empty"),
    ("0,s1,2014-04-01T10:00:00Z, sku-1", "bad item_id: item_id ' sku-1' is not a usable id"),
    ("0,,2014-04-01T10:00:00Z,sku-1", "bad session_id: the session_id field is empty"),
    ("0,s1,2014-04-01T10:00:00Z,sku-1,x", "wrong number of fields: expected 4 fields"),
])
def test_a_bad_csv_row_names_its_line(tmp_path, bad_line, problem):
    raw = _small_csv(tmp_path, bad_line, at=5)
    with pytest.raises(DataError) as caught:
        prepare.prepare("clicks", raw, str(tmp_path / "out"), test_days=1)
    assert (caught.value.path, caught.value.record) == (raw, 5)
    assert caught.value.problem.startswith(problem)
    assert not (tmp_path / "out").exists()


def test_a_bad_parquet_row_names_its_row_and_skip_bad_rows_counts_them(tmp_path):
    rows = click_logs.random_clicks(6, in_order=False)
    path = tmp_path / "log.parquet"
    times = [click_logs.iso(moment) for _, moment, _ in rows]
    times[6] = "2014-04-31T00:00:00Z"  # row 7: no such day
    items = [f"sku-{item}" for _, _, item in rows]
    items[3] = None  # row 4
    pq.write_table(pa.table({"session_id": [session for session, _, _ in rows],
                             "timestamp": times, "item_id": items}), path)
    with pytest.raises(DataError) as caught:
        prepare.prepare("clicks", str(path), str(tmp_path / "out"), test_days=1)
    assert (caught.value.record, caught.value.problem) == (
        4, "bad item_id: the item_id field is empty")
    prepare.prepare("clicks", str(path), str(tmp_path / "out"), test_days=1, skip_bad_rows=True)
    counts = json.loads((tmp_path / "out" / dataset_info.DATASET_FILE).read_text())["counts"]
    assert counts["rows_skipped"] == {"total": 2, "first_lines": [4, 7], "by_problem": {
        "bad item_id": 1, "unparsable timestamp": 1}}
    kept = [row for index, row in enumerate(rows) if index not in (3, 6)]
    assert _read_folder(tmp_path / "out") == _reference_for_written(kept, window=DAY_MS)


def test_missing_or_repeated_columns_and_unknown_file_types(tmp_path):
    raw = _small_csv(tmp_path)
    with pytest.raises(DataError, match=r"record 1: no column 'ts' \(--time_column\); the "
                                        r"columns are 'category', 'session_id', 'timestamp', "
                                        r"'item_id'$"):
        click_log.read_click_log(raw, click_log.ClickLogFormat(time_column="ts"))
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('"session_id","timestamp","item_id"\n')
    with pytest.raises(DataError, match="write the log without quotes"):
        click_log.read_click_log(str(quoted), click_log.ClickLogFormat())
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("item_id,session_id,timestamp,item_id\n")
    with pytest.raises(DataError, match="record 1: column 'item_id' appears 2 times"):
        click_log.read_click_log(str(repeated), click_log.ClickLogFormat())
    with pytest.raises(ConfigError, match="three different columns"):
        click_log.read_click_log(raw, click_log.ClickLogFormat(item_column="session_id"))
    with pytest.raises(ConfigError, match=r"cannot tell its file type from the extension "
                                          r"'.txt'; give --file_type=csv, tsv or parquet"):
        click_log.read_click_log(str(tmp_path / "log.txt"), click_log.ClickLogFormat())
    tsv_named_txt = tmp_path / "log.txt"
    tsv_named_txt.write_text(open(raw, encoding="utf-8").read().replace(",", "\t"))
    log = click_log.read_click_log(str(tsv_named_txt), click_log.ClickLogFormat(file_type="tsv"))
    assert log.rows_read == len(click_logs.random_clicks(5, in_order=True))
    not_parquet = tmp_path / "log.parquet"
    not_parquet.write_text("session_id,timestamp,item_id\n")
    with pytest.raises(DataError, match=r"log\.parquet: cannot be read as Parquet"):
        click_log.read_click_log(str(not_parquet), click_log.ClickLogFormat())


def test_blocks_read_in_parallel_give_the_same_split(tmp_path, monkeypatch):
    rows = click_logs.random_clicks(7, in_order=False)
    raw = click_logs.write_clicks(tmp_path / "log.csv", rows)
    prepare.prepare("clicks", raw, str(tmp_path / "whole"), test_days=1)
    monkeypatch.setattr(csv_blocks, "_BLOCK_BYTES", 200)  # about 5 lines per block
    prepare.prepare("clicks", raw, str(tmp_path / "blocks"), test_days=1)
    assert _read_folder(tmp_path / "blocks") == _read_folder(tmp_path / "whole")


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mtd_tf.data.prepare", *args], cwd=REPO_ROOT,
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT), capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("case", ["missing column", "bad time", "nothing left", "out not empty"])
def test_cli_bad_input_is_one_error_line_and_nothing_written(tmp_path, case):
    raw = _small_csv(tmp_path, "0,s1,2014-04-01 10:00 UTC,sku-1" if case == "bad time" else None,
                     at=4)
    out = tmp_path / "shop"
    args = ["--format=clicks", f"--raw={raw}", f"--out={out}", "--test_days=1"]
    expected = {
        "missing column": f"{raw}: record 1: no column 'visit' (--session_column); the columns "
                          "are 'category', 'session_id', 'timestamp', 'item_id'",
        "bad time": f"{raw}: record 4: unparsable timestamp: timestamp '2014-04-01 10:00 UTC' "
                    f"is not {column_parsers.TIME_FORMATS['iso']}",
        "nothing left": f"{raw}: no session is left after dropping sessions shorter than 2 "
                        "clicks and items seen fewer than 1000 times (--min_session_length, "
                        "--min_item_count)",
        "out not empty": f"--out {out} exists and is not empty; choose a new folder (or "
                         "remove this one)",
    }[case]
    args += {"missing column": ["--session_column=visit"], "bad time": [],
             "nothing left": ["--min_item_count=1000"], "out not empty": []}[case]
    if case == "out not empty":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = sorted(os.listdir(tmp_path))
    result = _run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {expected}"]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert sorted(os.listdir(tmp_path)) == before
    if case == "out not empty":
        assert os.listdir(out) == ["notes.txt"]


def test_clicks_only_flags_with_a_preset_are_refused(tmp_path):
    raw = _small_csv(tmp_path)
    result = _run_cli("--format=diginetica", f"--raw={raw}", f"--out={tmp_path / 'out'}",
                      "--item_column=sku")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --item_column applies to --format=clicks only")
    assert not (tmp_path / "out").exists()


def test_sessions_by_first_row_clicks_by_time_items_by_name(tmp_path):
    path = str(tmp_path / "log.parquet")
    pq.write_table(pa.table({"session_id": ["b", "a", "b"],
                             "timestamp": pa.array([5, 1, 2], pa.int64()),
                             "item_id": ["x", "y", "y"]}), path)
    log = click_log.read_click_log(path, click_log.ClickLogFormat(time_format="ms"))
    # Sessions by first row (b = 0, a = 1); b's clicks in time order: y (2 ms), x (5 ms).
    assert log.session_ids.tolist() == [0, 0, 1]
    assert log.dates.tolist() == [2, 5, 1]
    assert log.item_names[log.item_ids].tolist() == ["y", "x", "y"]
    assert np.array_equal(log.item_names, np.array(["x", "y"], dtype=object))


def test_the_readme_commands_work_as_written(tmp_path):
    """README.md's "Your own click log" block, run in a fresh folder (all but the training
    line, which the training tests cover)."""
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = text[text.index("### Your own click log"):]
    start = section.index("```bash\n") + len("```bash\n")
    block = section[start:section.index("\n```", start)]
    script = "\n".join(line for line in block.splitlines() if "mtd_tf/main.py" not in line)
    os.symlink(os.path.join(REPO_ROOT, ".venv"), tmp_path / ".venv")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=REPO_ROOT), capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    prepared, counted = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert (prepared["dataset"], prepared["format"]) == ("shop", "clicks")
    assert counted["train_samples"] == prepared["train_samples"] > 1000
    assert (tmp_path / "data" / "shop" / dataset_info.DATASET_FILE).is_file()
