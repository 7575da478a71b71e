"""Table 2's figures from the runs' test ranks, against NumPy/SciPy references."""

import numpy as np
import pytest
from scipy import stats

from experiments import per_pair
from mtd_tf import metrics
from mtd_tf import rank_files
from mtd_tf.errors import DataError

MODEL_RANKS = np.array([1, 3, 30, 2, 25, 8, 1, 12])
BASELINE_RANKS = np.array([2, 3, 4, 40, 25, 9, 21, 12])


def finished(runs_dir, name, ranks, written="2026-12-01T00:00:00+00:00"):
    """A record of a run whose folder keeps `ranks`, its test metrics computed from them."""
    rank_files.write_ranks(runs_dir / name / rank_files.TEST_RANKS_FILE, ranks)
    accumulator = metrics.RankingMetrics(metrics.REPORT_KS)
    accumulator.update(ranks)
    return {"run_dir": name, "metrics_written": written, "test": accumulator.result()}


def test_the_strongest_is_the_best_test_p20_of_the_listed_methods():
    view = {"sr": {"P@20": 40.0}, "stan": {"P@20": 55.0}, "mtd": {"P@20": 60.0}}
    assert per_pair.strongest(view, ("pop", "sr", "stan")) == "stan"
    assert per_pair.strongest(view, ("pop",)) is None


def test_the_gap_and_its_paired_standard_error(tmp_path):
    model = finished(tmp_path, "main/d/mtd", MODEL_RANKS)
    baseline = finished(tmp_path, "main/d/stan", BASELINE_RANKS, written="b")
    entry = per_pair.paired_gap(model, baseline, str(tmp_path), num_pairs=8)
    within = (MODEL_RANKS <= 20).astype(float) - (BASELINE_RANKS <= 20).astype(float)
    assert entry["gap"]["P@20"] == pytest.approx(100 * within.mean())  # 1 / 8 pairs
    assert entry["gap_standard_error"]["P@20"] == pytest.approx(100 * stats.sem(within))
    reciprocal = (np.where(MODEL_RANKS <= 10, 1 / MODEL_RANKS, 0)
                  - np.where(BASELINE_RANKS <= 10, 1 / BASELINE_RANKS, 0))
    assert entry["gap"]["MRR@10"] == pytest.approx(100 * reciprocal.mean())
    assert entry["gap_standard_error"]["MRR@10"] == pytest.approx(100 * stats.sem(reciprocal))
    assert (entry["model"], entry["baseline"], entry["pairs"]) == ("main/d/mtd", "main/d/stan", 8)
    assert (entry["model_metrics_written"], entry["baseline_metrics_written"]) == (
        "2026-12-01T00:00:00+00:00", "b")


def test_without_the_folders_an_earlier_gap_is_kept_only_for_the_same_records(tmp_path):
    model = finished(tmp_path, "main/d/mtd", MODEL_RANKS)
    baseline = finished(tmp_path, "main/d/stan", BASELINE_RANKS, written="b")
    earlier = per_pair.paired_gap(model, baseline, str(tmp_path), num_pairs=8)
    elsewhere = str(tmp_path / "other_machine")
    assert per_pair.paired_gap(model, baseline, elsewhere, 8, earlier) == earlier
    rerun = dict(model, metrics_written="c")  # the model's run was replaced since
    assert per_pair.paired_gap(rerun, baseline, elsewhere, 8, earlier) is None
    assert per_pair.paired_gap(model, baseline, elsewhere, 8, None) is None


def test_ranks_that_do_not_give_the_records_metrics_are_refused(tmp_path):
    model = finished(tmp_path, "main/d/mtd", MODEL_RANKS)
    baseline = finished(tmp_path, "main/d/stan", BASELINE_RANKS)
    rank_files.write_ranks(tmp_path / "main/d/stan" / rank_files.TEST_RANKS_FILE, MODEL_RANKS)
    with pytest.raises(DataError, match="stan/test_ranks.npy: its ranks give P@20 .* not the same run"):
        per_pair.paired_gap(model, baseline, str(tmp_path), num_pairs=8)
    with pytest.raises(DataError, match="8 ranks, but the split has 9 pairs"):
        per_pair.paired_gap(model, baseline, str(tmp_path), num_pairs=9)


def test_a_runs_target_split_comes_from_its_ranks_and_is_kept_while_it_stands(tmp_path):
    record = finished(tmp_path, "main/d/mtd", MODEL_RANKS)
    repeat = np.array([True, True, False, False, True, False, False, False])
    split = per_pair.target_split(record, str(tmp_path), repeat)
    assert (split["run"], split["repeat"]["pairs"]) == ("main/d/mtd", 3)
    assert split["repeat"]["metrics"]["P@20"] == pytest.approx(100 * 2 / 3)  # ranks 1, 3, 25
    assert split["new"]["metrics"]["P@20"] == pytest.approx(100 * 4 / 5)  # 30, 2, 8, 1, 12
    elsewhere = str(tmp_path / "other_machine")
    assert per_pair.target_split(record, elsewhere, repeat, split) == split
    assert per_pair.target_split(record, str(tmp_path), None, split) == split  # no data here
    assert per_pair.target_split(dict(record, metrics_written="c"), elsewhere, repeat,
                                 split) is None


def test_the_paired_gap_on_repeat_and_on_new_targets_apart(tmp_path):
    model = finished(tmp_path, "main/d/mtd-repeat_head=True", MODEL_RANKS)
    baseline = finished(tmp_path, "main/d/mtd", BASELINE_RANKS, written="b")
    repeat = np.array([True, True, False, False, True, False, True, False])
    entry = per_pair.paired_gap_by_target(model, baseline, str(tmp_path), repeat)
    for part, members in (("repeat", repeat), ("new", ~repeat)):
        within = ((MODEL_RANKS[members] <= 20).astype(float)
                  - (BASELINE_RANKS[members] <= 20).astype(float))
        assert entry[part]["pairs"] == members.sum()
        assert entry[part]["gap"]["P@20"] == pytest.approx(100 * within.mean())
        assert entry[part]["gap_standard_error"]["P@20"] == pytest.approx(
            100 * stats.sem(within))
    whole = per_pair.paired_gap(model, baseline, str(tmp_path), num_pairs=8)
    assert (entry["all"]["pairs"], entry["all"]["gap"]) == (whole["pairs"], whole["gap"])
    elsewhere = str(tmp_path / "other_machine")
    assert per_pair.paired_gap_by_target(model, baseline, elsewhere, repeat, entry) == entry
    assert per_pair.paired_gap_by_target(model, baseline, str(tmp_path), None, entry) == entry
    assert per_pair.paired_gap_by_target(dict(model, metrics_written="c"), baseline, elsewhere,
                                         repeat, entry) is None
