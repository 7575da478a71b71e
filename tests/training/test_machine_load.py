"""`cpu_ticks` against hand-written /proc/stat lines."""

import os

from mtd_tf.training import machine_load


def write(tmp_path, text):
    path = tmp_path / "stat"
    path.write_text(text)
    return str(path)


def test_reads_steal_and_the_total_of_the_first_eight_counters(tmp_path):
    path = write(tmp_path, "cpu  100 20 30 400 5 0 6 70 9 9\ncpu0 1 1 1 1 1 1 1 1 0 0\n")
    assert machine_load.cpu_ticks(path) == (70, 100 + 20 + 30 + 400 + 5 + 0 + 6 + 70)


def test_unreadable_or_foreign_files_give_none(tmp_path):
    assert machine_load.cpu_ticks(str(tmp_path / "missing")) is None
    assert machine_load.cpu_ticks(write(tmp_path, "")) is None
    assert machine_load.cpu_ticks(write(tmp_path, "cpu 1 2 3\n")) is None  # too few counters
    assert machine_load.cpu_ticks(write(tmp_path, "cpu 1 2 x 4 5 6 7 8\n")) is None
    assert machine_load.cpu_ticks(write(tmp_path, "intr 1 2 3 4 5 6 7 8\n")) is None


def test_this_machine_when_it_has_proc_stat():
    ticks = machine_load.cpu_ticks()
    if not os.path.isfile(machine_load.STAT_PATH):  # not Linux: nothing to read
        assert ticks is None
        return
    stolen, total = ticks
    assert 0 <= stolen <= total and total > 0
