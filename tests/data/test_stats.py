"""Dataset statistics: hand-counted on a tiny split, and the paper's Table 1 on the real ones."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mtd_tf.data import formats
from mtd_tf.data import registry
from mtd_tf.data import stats
from mtd_tf.data.sessions import Sessions
from mtd_tf.data.sessions import SessionDataset

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_stats_cli(*args):
    env = {key: value for key, value in os.environ.items() if key != "MTD_DATA_DIR"}
    return subprocess.run([sys.executable, "-m", "mtd_tf.data.stats", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_counts_on_a_hand_sized_split():
    # Ten sessions of lengths 3,1,2,4,2,2,2,2,2,5; round(0.1 * 10) = 1: the last validates.
    lengths = [3, 1, 2, 4, 2, 2, 2, 2, 2, 5]
    train = Sessions.from_lists([list(range(1, n + 1)) for n in lengths])
    # Item 5 occurs only in the validating session; 9 is above M and occurs nowhere.
    dataset = SessionDataset("tiny", train, Sessions.from_lists([[1], [2], [3], [4]]),
                             np.array([2, 5, 5, 9], np.int32), num_items=5)

    counts = stats.dataset_stats(dataset, min_prefix_len=1)
    # Samples per session: len - 1 = 2,0,1,3,1,1,1,1,1,4 -> 15; validation: 4.
    assert counts == {
        "dataset": "tiny", "train_sessions": 10, "train_samples": 15, "valid_samples": 4,
        "test_samples": 4, "num_items": 5, "avg_session_length": 2.5,
        "max_session_length": 5, "test_targets_only_in_valid": 2,
        # Test targets 2, 5, 5, 9 after [1], [2], [3], [4]: none repeats. The validating
        # session 1..5 gives pairs ([1], 2) .. ([1, 2, 3, 4], 5): none repeats either.
        "test_repeat_share": 0.0, "valid_repeat_share": 0.0,
    }
    repeating = SessionDataset("tiny", Sessions.from_lists([[1, 2]] * 9 + [[3, 4, 3, 3]]),
                               Sessions.from_lists([[1], [2, 4], [3]]),
                               np.array([1, 4, 2], np.int32), num_items=5)
    counts = stats.dataset_stats(repeating, min_prefix_len=1)
    # Test: [1] -> 1 and [2, 4] -> 4 of 3 pairs; validation [3] -> 4, [3, 4] -> 3 and
    # [3, 4, 3] -> 3: 2 of 3.
    assert counts["test_repeat_share"] == round(200 / 3, 4)
    assert counts["valid_repeat_share"] == round(200 / 3, 4)
    # With min_prefix_len 2: max(len - 2, 0) = 1,0,0,2,0,0,0,0,0,3 -> 6; validation: 3.
    counts = stats.dataset_stats(dataset, min_prefix_len=2)
    assert (counts["train_samples"], counts["valid_samples"]) == (6, 3)


def test_cli_on_real_yoochoose(shared_data_dir):
    result = _run_stats_cli("--dataset=yoochoose", f"--data_dir={shared_data_dir}")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip())
    assert counts["dataset"] == "yoochoose1_64"
    assert (counts["train_samples"], counts["test_samples"], counts["num_items"]) == (
        369_859, 55_400, 17_376)
    assert counts["train_sessions"] == 116_167
    assert counts["max_session_length"] == 146
    assert counts["test_repeat_share"] == 26.6282  # 14,752 of the 55,400 test pairs


@pytest.mark.parametrize("name, train_samples, test_samples, num_items", [
    ("diginetica", 719_470, 60_858, 43_097),
    ("retailrocket", 433_648, 15_132, 36_968),  # min prefix length 2
])
def test_paper_table_1_counts(require_shared, name, train_samples, test_samples, num_items):
    dataset = registry.load_dataset(name, require_shared(name))
    counts = stats.dataset_stats(dataset, registry.defaults_for(name).min_prefix_len)
    assert (counts["train_samples"], counts["test_samples"], counts["num_items"]) == (
        train_samples, test_samples, num_items)


def test_cli_reports_a_bad_file_in_one_line(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / formats.TRAIN_TEXT).write_text("1 2\n3 x\n")
    (folder / formats.TEST_TEXT).write_text("1\t2\n")

    result = _run_stats_cli("--dataset=broken", f"--data_dir={tmp_path}")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (f"error: {folder / formats.TRAIN_TEXT}: record 2: "
                        "'x' is not a positive integer id")
    assert result.stdout == ""


def test_cli_names_the_download_command_for_a_missing_dataset(tmp_path):
    result = _run_stats_cli("--dataset=diginetica", f"--data_dir={tmp_path}")
    assert result.returncode == 2
    assert (f"python -m mtd_tf.data.download --dataset=diginetica --data_dir={tmp_path}"
            in result.stderr)
