"""The scripts' reports from finished runs written by the test, without training.

Each script runs in a fresh process, as a user runs it, over a runs or results folder that
holds finished runs (`records.py`), with --report_only or with nothing left to train but
Table 2's baselines (evaluated in a second): its flags, its reading of finished cells and
its stamp are real, and the numbers of every table can be written out exactly. Training,
resuming and skipping finished runs are tested end to end in `test_experiments.py`.
"""

import json
import os
import re

import numpy as np
import pytest
from scipy import stats

from experiments import provenance
from mtd_tf import rank_files
from mtd_tf.data import registry
from mtd_tf.data import synthetic
from tests.experiments import records
from tests.experiments.records import metrics
from tests.experiments.scripts import DATASET
from tests.experiments.scripts import METRIC_KEYS
from tests.experiments.scripts import TINY_NUM_ITEMS
from tests.experiments.scripts import TINY_NUM_SESSIONS
from tests.experiments.scripts import assert_png
from tests.experiments.scripts import assert_refused
from tests.experiments.scripts import metrics_mtimes
from tests.experiments.scripts import read_markdown
from tests.experiments.scripts import run_script


@pytest.fixture(name="runner")
def fixture_runner(data_dir, tmp_path):
    """A runner over this test's empty runs folder, for writing finished cells."""
    return records.smoke_runner(tmp_path / "runs", data_dir)


def test_table2_lists_every_method_beside_the_paper(runner, data_dir, tmp_path):
    mtd = records.write_run(runner, runner.cell(DATASET, "mtd"), metrics(50.0), metrics(52.0))
    records.write_run(runner, runner.cell(DATASET, "lo"), metrics(40.0), metrics(41.0))
    records.write_run(runner, runner.cell(DATASET, "mtd", refit_epochs=mtd["best_epoch"]),
                      metrics(54.0), None)
    written = metrics_mtimes(runner.runs_dir)
    _, data = run_script("table2", (data_dir, runner.runs_dir), tmp_path,
                         "--methods=pop,spop,itemknn,mtd,lo", "--refit")
    # The baselines are evaluated (no training); the finished MTD runs are only read.
    evaluated = metrics_mtimes(runner.runs_dir)
    assert {path: evaluated.pop(path) for path in written} == written and len(evaluated) == 3

    assert set(data[DATASET]) == {"pop", "spop", "itemknn", "mtd", "lo", "mtd_refit"}
    for values in data[DATASET].values():
        assert set(values) == METRIC_KEYS
        assert all(0.0 <= value <= 100.0 for value in values.values())
    assert (data[DATASET]["mtd"], data[DATASET]["lo"], data[DATASET]["mtd_refit"]) == (
        metrics(50.0), metrics(40.0), metrics(54.0))
    # The refit is the chosen settings' run for the chosen run's best epoch count.
    assert data["selection"][DATASET]["mtd"] == {
        "chosen": "mtd", "by": "valid P@20", "candidates": {"mtd": {"P@20": 52.0, "MRR@20": 26.0}},
        "refit": {"run": "mtd-refit_epochs=1", "epochs": 1}}
    runs = data["runs"][DATASET]
    assert runs["mtd"]["test"] == metrics(50.0) and runs["mtd"]["config"]["max_train_batches"] == 3
    assert runs["mtd-refit_epochs=1"]["valid"] is None
    assert runs["mtd-refit_epochs=1"]["config"]["refit_epochs"] == 1
    assert data["paper"]["diginetica"]["mtd"]["P@20"] == 53.92

    text = read_markdown(tmp_path, "table2")
    tiny = text.split("\n## tiny\n")[1].split("\n## ")[0]
    assert "| MTD | 30.00 | 40.00 | 50.00 | 15.00 | 20.00 | 25.00 | 35.00 |" in tiny
    assert "| MTD-lo | 20.00 | 30.00 | 40.00 | 10.00 | 15.00 | 20.00 | 28.00 |" in tiny
    assert "| MTD, refit | 34.00 | 44.00 | 54.00 | 17.00 | 22.00 | 27.00 | 37.80 |" in tiny
    for label in ("POP", "S-POP", "Item-KNN"):
        assert re.search(rf"\n\| {label}( \| \d+\.\d\d){{7}} \|\n", tiny), label
    assert "| mtd (chosen) | 52.00 | 26.00 |" in tiny
    assert "for 1 epoch, the chosen run's best validation epoch" in tiny
    # The paper's datasets are listed with the paper's numbers even before they are run.
    assert "## diginetica" in text and "| MTD, *paper* | 28.29 | 40.22 | 53.92 |" in text
    # P@K's test-sampling standard error, from the number of test pairs in the data: a hit
    # rate p on n pairs moves by 100 * sqrt(p * (1 - p) / n) points; MTD's P@5, 10, 20 are
    # 30, 40 and 50%.
    test_pairs = len(synthetic.generate_synthetic_split(
        seed=0, num_items=TINY_NUM_ITEMS, num_sessions=TINY_NUM_SESSIONS)[2])
    assert data["test_pairs"] == {DATASET: test_pairs}
    errors = " / ".join(f"±{100 * (rate * (1 - rate) / test_pairs) ** 0.5:.2f}"
                        for rate in (0.3, 0.4, 0.5))
    assert f"on these {test_pairs:,} test pairs" in tiny
    assert f"standard error of {errors} points" in tiny


def test_table2_tunes_the_strong_baselines_and_pairs_mtd_with_the_best(runner, data_dir, tmp_path):
    test_pairs = len(synthetic.generate_synthetic_split(
        seed=0, num_items=TINY_NUM_ITEMS, num_sessions=TINY_NUM_SESSIONS)[2])
    records.write_run(runner, runner.cell(DATASET, "mtd"), metrics(50.0), metrics(52.0))
    refit = runner.cell(DATASET, "mtd", refit_epochs=1)
    refit_ranks = np.random.default_rng(0).integers(1, 60, size=test_pairs)
    records.write_run(runner, refit, records.write_ranks(runner, refit, refit_ranks), None)
    _, data = run_script("table2", (data_dir, runner.runs_dir), tmp_path,
                         "--methods=spop,sr,mtd", "--refit")

    sr = data["runs"][DATASET]["sr"]
    trials = sr["tuning"]["trials"]
    assert sr["tuning"]["metric"] == "P@20" and 1 < len(trials) <= 30
    # The chosen setting is the trial with the best validation P@20 (the first of equals).
    best = max(trials, key=lambda trial: trial["valid"]["P@20"])
    assert sr["setting"] == best["setting"] and set(best["valid"]) == METRIC_KEYS
    best_baseline = max(("spop", "sr"), key=lambda method: data[DATASET][method]["P@20"])
    entry = data["paired"][DATASET]
    assert (entry["model_row"], entry["baseline_row"], entry["pairs"]) == (
        "mtd_refit", best_baseline, test_pairs)
    baseline_ranks = np.load(os.path.join(runner.runs_dir, "main", DATASET, best_baseline,
                                          rank_files.TEST_RANKS_FILE))
    differences = (refit_ranks <= 20).astype(float) - (baseline_ranks <= 20).astype(float)
    assert entry["gap"]["P@20"] == pytest.approx(
        data[DATASET]["mtd_refit"]["P@20"] - data[DATASET][best_baseline]["P@20"])
    assert entry["gap_standard_error"]["P@20"] == pytest.approx(100 * stats.sem(differences))
    # Each row's repeat/new split, from its kept ranks and the targets found in their prefix.
    dataset = registry.load_dataset(DATASET, data_dir)
    repeat = np.array([target in prefix for prefix, target in zip(
        dataset.test_prefixes.to_lists(), dataset.test_targets.tolist())])
    assert set(data["by_target"][DATASET]) == {"mtd_refit", "spop", "sr"}  # mtd: no ranks
    refit_split = data["by_target"][DATASET]["mtd_refit"]
    assert refit_split["repeat"]["pairs"] == repeat.sum()
    assert refit_split["new"]["metrics"]["P@20"] == pytest.approx(
        100 * np.mean(refit_ranks[~repeat] <= 20))
    text = read_markdown(tmp_path, "table2")
    assert re.search(r"\n\| SR( \| \d+\.\d\d){7} \|\n", text)
    assert f"| MTD, refit | {100 * repeat.mean():.2f} | " in text
    assert (f"Paired gap, MTD, refit minus {reporting_label(best_baseline)} (the other method with "
            f"the best test P@20), on the same {test_pairs:,} test pairs") in text

    # Rebuilt where the run folders are not: the gap is read back while its records stand.
    (tmp_path / "elsewhere").mkdir()
    _, again = run_script("table2", (data_dir, str(tmp_path / "elsewhere")), tmp_path,
                          "--methods=spop,sr,mtd", "--refit", "--report_only")
    assert (again["paired"], again["by_target"]) == (data["paired"], data["by_target"])


def reporting_label(method):
    return {"spop": "S-POP", "sr": "SR"}[method]


def test_table2_chooses_mtd_on_validation_among_the_named_candidates(runner, data_dir, tmp_path):
    # --mtd_default=false: only the named candidates; score_scale=4 has not finished, but
    # the refit of the choice so far has, and is shown.
    scaled = runner.cell(DATASET, "mtd", score_scale=8.0)
    records.write_run(runner, scaled, metrics(45.0), metrics(47.0))
    records.write_run(runner, runner.cell(DATASET, "mtd", score_scale=8.0, refit_epochs=1),
                      metrics(48.0), None)
    _, data = run_script("table2", (data_dir, runner.runs_dir), tmp_path, "--methods=mtd",
                         "--mtd_default=false", "--mtd_candidate=score_scale=8",
                         "--mtd_candidate=score_scale=4", "--refit", "--report_only")
    assert data["selection"][DATASET]["mtd"] == {
        "chosen": "mtd-score_scale=8.0", "by": "valid P@20",
        "candidates": {"mtd-score_scale=8.0": {"P@20": 47.0, "MRR@20": 23.5},
                       "mtd-score_scale=4.0": None},
        "refit": {"run": "mtd-refit_epochs=1-score_scale=8.0", "epochs": 1}}
    assert data[DATASET] == {"mtd": metrics(45.0), "mtd_refit": metrics(48.0)}
    assert set(data["runs"][DATASET]) == {scaled.name, "mtd-refit_epochs=1-score_scale=8.0"}
    text = read_markdown(tmp_path, "table2")
    assert "| MTD | 25.00 | 35.00 | 45.00 | 12.50 | 17.50 | 22.50 | 31.50 |" in text
    assert "| mtd-score_scale=4.0 | — | — |" in text
    assert "| mtd-score_scale=8.0 (chosen) | 47.00 | 23.50 |" in text
    assert "`mtd-refit_epochs=1-score_scale=8.0`" in text


def test_figure4_rebuilds_from_published_records_without_training(runner, data_dir, tmp_path):
    """A fresh checkout has the committed results but not the run folders: nothing trains."""
    published = {}
    for dim, p20 in ((16, 50.0), (24, 45.0)):  # d = 16 is the base: the `mtd` cell
        cell = runner.cell(DATASET, "mtd", embedding_dim=dim)
        published[cell.name] = records.published_record(runner, cell, metrics(p20),
                                                         metrics(p20 + 1.0))
    (tmp_path / "figure4.json").write_text(json.dumps({"runs": {DATASET: published}}))
    result, data = run_script("figure4", (data_dir, runner.runs_dir), tmp_path,
                              "--dims=16,24", "--frequencies=1", "--gcn_depths=1")
    assert "training " not in result.stderr and not metrics_mtimes(runner.runs_dir)
    assert data["runs"][DATASET] == published
    # Each point as a ratio to its sweep's best; the d = 16 run is every sweep's default.
    best = {"P@20": 50.0, "MRR@20": 25.0, "ratio_P@20": 1.0, "ratio_MRR@20": 1.0,
            "valid_P@20": 51.0, "valid_MRR@20": 25.5}
    smaller = {"P@20": 45.0, "MRR@20": 22.5, "ratio_P@20": 0.9, "ratio_MRR@20": 0.9,
               "valid_P@20": 46.0, "valid_MRR@20": 23.0}
    assert data[DATASET] == {"embedding_dim": {"16": best, "24": smaller},
                             "frequency": {"1": best}, "gcn_layers": {"1": best}}
    text = read_markdown(tmp_path, "figure4")
    assert "| embedding size d | P@20 | MRR@20 | ratio P@20 | ratio MRR@20 |" in text
    assert "| 16 | 50.00 | 25.00 | 1.000 | 1.000 |\n| 24 | 45.00 | 22.50 | 0.900 | 0.900 |" in text
    assert "| GCN depth |" in text
    assert_png(tmp_path / "figure4.png")

    # One sweep alone (the others' panels empty) still plots, and labels its curve.
    alone, data = run_script("figure4", (data_dir, runner.runs_dir), tmp_path, "--dims=",
                             "--frequencies=1", "--gcn_depths=", "--report_only")
    assert data[DATASET] == {"embedding_dim": {}, "frequency": {"1": best}, "gcn_layers": {}}
    assert "No artists with labels" not in alone.stderr
    assert_png(tmp_path / "figure4.png")


def test_table4_times_the_main_runs_made_on_this_machine(runner, data_dir, tmp_path):
    records.write_run(runner, runner.cell(DATASET, "mtd"), metrics(50.0), metrics(51.0))
    records.write_run(runner, runner.cell(DATASET, "lo"), metrics(40.0), metrics(41.0),
                      seconds_per_epoch=1.5, seconds_per_train_batch=0.5, steal_fraction=0.1)
    _, data = run_script("table4", (data_dir, runner.runs_dir), tmp_path, "--variants=mtd,lo",
                         "--report_only")
    device = next(iter(data["devices"]))
    assert device.startswith("cpu:")  # the tests hide any GPU
    # Every run is capped at 3 of its 7 batches a pass (f = 1): the 4 missing ones are
    # added at its steady rate, 2.0 + 4 * 0.25 = 3.0 s and 1.5 + 4 * 0.5 = 3.5 s.
    shared = {"batches_timed_per_pass": 3, "cpu_seconds_per_epoch": None, "frequency": 1,
              "epochs_timed": 1, "max_train_batches": 3, "source": "main run"}
    assert data[DATASET]["mtd"] == {device: dict(
        shared, seconds_per_epoch=3.0, measured_seconds_per_epoch=2.0,
        steal_fraction=0.05, run_dir="main/tiny/mtd")}
    assert data[DATASET]["lo"] == {device: dict(
        shared, seconds_per_epoch=3.5, measured_seconds_per_epoch=1.5,
        steal_fraction=0.1, run_dir="main/tiny/lo")}
    text = read_markdown(tmp_path, "table4")
    assert f"| method | f | {device} | x MTD ({device}) | paper s/epoch | paper x MTD |" in text
    assert "| MTD | 1 | 3.0 (1, from 3 batches, 5% stolen) | 1.00 | — | — |" in text
    assert "| MTD-lo | 1 | 3.5 (1, from 3 batches, 10% stolen) | 1.17 | — | — |" in text
    assert f"Timed by `{data['stamp']['command']}`." in text


def test_table4_times_a_capped_timing_run_instead_of_the_main_run(runner, data_dir, tmp_path):
    # --use_main_runs=false: the finished main run is left aside for a timing run of 1 epoch
    # whose passes stopped after 2 batches, kept per device (the scripts run without a GPU).
    records.write_run(runner, runner.cell(DATASET, "lo"), metrics(40.0), metrics(41.0))
    device = provenance.device_key(dict(provenance.machine_description(), gpus=[]))
    folder = f"table4/{provenance.device_slug(device)}"
    timing = runner.cell(DATASET, "lo", group=folder, epochs=1, max_train_batches=2)
    records.write_run(runner, timing, metrics(30.0), metrics(31.0), seconds_per_epoch=1.0,
                      seconds_per_train_batch=0.5, steal_fraction=None)
    _, data = run_script("table4", (data_dir, runner.runs_dir), tmp_path, "--variants=lo",
                         "--use_main_runs=false", "--timing_epochs=1", "--timing_batches=2",
                         "--report_only")
    assert list(data["devices"]) == [device]
    # 5 of 7 batches missing from the one pass an epoch: 1.0 + 5 * 0.5 = 3.5 s.
    assert data[DATASET]["lo"] == {device: {
        "seconds_per_epoch": 3.5, "measured_seconds_per_epoch": 1.0,
        "batches_timed_per_pass": 2, "cpu_seconds_per_epoch": None, "steal_fraction": None,
        "frequency": 1, "epochs_timed": 1, "max_train_batches": 2, "source": "timing run",
        "run_dir": f"{folder}/tiny/{timing.name}"}}
    assert data["runs"][device][DATASET]["lo"]["config"]["max_train_batches"] == 2
    text = read_markdown(tmp_path, "table4")
    assert "| MTD-lo | 1 | 3.5 (1, timing, from 2 batches) |" in text
    assert f"Timed by `{data['stamp']['command']}`." in text
    assert "--timing_batches=2" in data["stamp"]["command"]


def test_seeds_reports_each_seed_and_their_spread(runner, data_dir, tmp_path):
    # The base seed's run is the shared cell; the other seed is a cell of its own.
    for seed, p20 in ((0, 40.0), (1, 44.0)):
        records.write_run(runner, runner.cell(DATASET, "lo", score_scale=8.0, seed=seed),
                          metrics(p20), metrics(p20 + 1.0))
    _, data = run_script("seeds", (data_dir, runner.runs_dir), tmp_path, "--seeds=0,1",
                         "--variant=lo", "--settings=score_scale=8", "--report_only")
    entry = data[DATASET]
    assert entry["cell"] == "lo-score_scale=8.0"
    runs = data["runs"][DATASET]
    assert set(runs) == {"lo-score_scale=8.0", "lo-score_scale=8.0-seed=1"}
    assert runs["lo-score_scale=8.0-seed=1"]["config"]["seed"] == 1
    assert entry["seeds"]["1"]["test"]["P@20"] == 44.0
    assert entry["mean"]["test"]["P@20"] == pytest.approx(42.0)
    # Sample standard deviation of two values: |a - b| / sqrt(2).
    assert entry["std"]["test"]["P@20"] == pytest.approx(4.0 / 2 ** 0.5)
    text = read_markdown(tmp_path, "seeds")
    assert "## tiny: `lo-score_scale=8.0`" in text
    assert "| 0 | 31.00 | 41.00 | 15.50 | 20.50 | 30.00 | 40.00 | 15.00 | 20.00 |" in text
    assert "| 1 | 35.00 | 45.00 | 17.50 | 22.50 | 34.00 | 44.00 | 17.00 | 22.00 |" in text
    # Differences of 4 and 2 points: standard deviations of 2.83 and 1.41.
    assert ("| mean ± std | 33.00 ± 2.83 | 43.00 ± 2.83 | 16.50 ± 1.41 | 21.50 ± 1.41 "
            "| 32.00 ± 2.83 | 42.00 ± 2.83 | 16.00 ± 1.41 | 21.00 ± 1.41 |") in text


def test_table2_evaluates_a_published_baseline_again_only_when_asked(runner, data_dir, tmp_path):
    cell = runner.cell(DATASET, "spop")
    published = {"method": "spop", "dataset": DATASET, "run_dir": f"main/{DATASET}/spop",
                 "test": metrics(30.0), "metrics_written": records.METRICS_WRITTEN}
    (tmp_path / "table2.json").write_text(json.dumps({"runs": {DATASET: {"spop": published}}}))
    _, data = run_script("table2", (data_dir, runner.runs_dir), tmp_path, "--methods=spop")
    assert data[DATASET]["spop"] == metrics(30.0) and not metrics_mtimes(runner.runs_dir)
    _, data = run_script("table2", (data_dir, runner.runs_dir), tmp_path, "--methods=spop",
                         "--train_here=spop")
    assert data[DATASET]["spop"]["P@20"] != 30.0
    assert (tmp_path / "runs" / runner.run_dir(cell) / rank_files.TEST_RANKS_FILE).is_file()
    assert data["by_target"][DATASET]["spop"]["repeat"]["pairs"] > 0


def test_table2_chooses_and_refits_a_comparison_model_from_its_paper_recipe(
        runner, data_dir, tmp_path):
    """A comparison model's default candidate is its paper's training recipe; a
    --model_candidate competes with it on validation, and the winner is refitted."""
    recipe = runner.cell(DATASET, "srgnn", batch_size=100, lr_decay=0.1, lr_decay_every=3,
                         l2=5e-6)
    scaled = runner.cell(DATASET, "srgnn", score_scale=16.0)
    records.write_run(runner, recipe, metrics(44.0), metrics(46.0), best_epoch=3)
    records.write_run(runner, scaled, metrics(43.0), metrics(45.0))
    records.write_run(runner, runner.cell(DATASET, "srgnn", batch_size=100, lr_decay=0.1,
                                          lr_decay_every=3, l2=5e-6, refit_epochs=3),
                      metrics(47.0), None)
    records.write_run(runner, runner.cell(DATASET, "mtd"), metrics(50.0), metrics(52.0))
    _, data = run_script("table2", (data_dir, runner.runs_dir), tmp_path,
                         "--methods=mtd,srgnn", "--model_candidate=srgnn:score_scale=16",
                         "--refit", "--report_only")
    chosen = data["selection"][DATASET]["srgnn"]
    assert chosen["chosen"] == recipe.name == (
        "srgnn-batch_size=100-l2=5e-06-lr_decay=0.1")  # every 3 epochs: the default
    assert set(chosen["candidates"]) == {recipe.name, scaled.name}
    assert chosen["refit"]["epochs"] == 3
    assert data[DATASET]["srgnn"] == metrics(44.0)
    assert data[DATASET]["srgnn_refit"] == metrics(47.0)
    text = read_markdown(tmp_path, "table2")
    assert "| SR-GNN, refit | " in text and "SR-GNN settings tried" in text
    assert f"| {recipe.name} (chosen) | 46.00 | 23.00 |" in text


def test_seeds_of_a_comparison_model_go_to_their_own_results_file(runner, data_dir, tmp_path):
    for seed, p20 in ((0, 40.0), (1, 42.0)):
        records.write_run(runner, runner.cell(DATASET, "stamp", lr=0.003, seed=seed),
                          metrics(p20), metrics(p20 + 1.0))
    _, data = run_script("seeds", (data_dir, runner.runs_dir), tmp_path, "--seeds=0,1",
                         "--variant=stamp", "--settings=lr=0.003", "--results_name=seeds_stamp",
                         "--report_only", results_name="seeds_stamp")
    assert data[DATASET]["cell"] == "stamp-lr=0.003"
    assert data[DATASET]["mean"]["test"]["P@20"] == pytest.approx(41.0)
    assert not os.path.exists(tmp_path / "seeds.json")


@pytest.mark.parametrize("head, with_settings, results_name", [
    ("mixture", {"repeat_head": True}, "repeat_head"),
    ("from_scores", {"repeat_head": True, "repeat_from_scores": True},
     "repeat_head_from_scores")])
def test_repeat_head_reports_both_arms_their_target_split_and_paired_gaps(
        runner, data_dir, tmp_path, head, with_settings, results_name):
    dataset = registry.load_dataset(DATASET, data_dir)
    repeat = np.array([target in prefix for prefix, target in zip(
        dataset.test_prefixes.to_lists(), dataset.test_targets.tolist())])
    rng = np.random.default_rng(3)
    ranks = {}
    for arm in (False, True):
        settings = with_settings if arm else {}
        validated = runner.cell(DATASET, "mtd", score_scale=8.0, **settings)
        records.write_run(runner, validated, records.write_ranks(
            runner, validated, rng.integers(1, 60, size=repeat.size)), metrics(50.0 + arm),
            best_epoch=1)
        refit = runner.cell(DATASET, "mtd", score_scale=8.0, refit_epochs=1, **settings)
        ranks[arm] = rng.integers(1, 60, size=repeat.size)
        records.write_run(runner, refit, records.write_ranks(runner, refit, ranks[arm]), None)
    spop = runner.cell(DATASET, "spop")
    records.write_run(runner, spop, records.write_ranks(
        runner, spop, rng.integers(1, 60, size=repeat.size)), None)
    _, data = run_script("repeat_head", (data_dir, runner.runs_dir), tmp_path,
                         f"--settings={DATASET}:score_scale=8", f"--head={head}",
                         "--report_only", results_name=results_name)

    entry = data[DATASET]
    assert entry["settings"] == "score_scale=8.0"
    assert set(entry["rows"]) == {"spop", "without", "without_refit", "with", "with_refit"}
    with_name = "-".join(f"{key}={value}" for key, value in sorted(
        {**with_settings, "score_scale": 8.0}.items()))
    assert set(data["runs"][DATASET]) == {
        "spop", "mtd-score_scale=8.0", "mtd-refit_epochs=1-score_scale=8.0",
        f"mtd-{with_name}", f"mtd-refit_epochs=1-{with_name}"}
    assert entry["by_target"]["with_refit"]["repeat"]["metrics"]["P@20"] == pytest.approx(
        100 * np.mean(ranks[True][repeat] <= 20))
    gap = entry["paired"]["refit"]
    for part, members in (("repeat", repeat), ("new", ~repeat)):
        within = (ranks[True][members] <= 20).astype(float) - (
            ranks[False][members] <= 20).astype(float)
        assert gap[part]["gap"]["P@20"] == pytest.approx(100 * within.mean())
        assert gap[part]["gap_standard_error"]["P@20"] == pytest.approx(
            100 * stats.sem(within))
    assert gap["all"]["gap"]["P@20"] == pytest.approx(
        entry["rows"]["with_refit"]["P@20"] - entry["rows"]["without_refit"]["P@20"])
    text = read_markdown(tmp_path, results_name)
    assert "| with the head, refit |" in text and "| S-POP |" in text
    assert "Paired gap, with minus without the head (refit runs" in text
    assert f"| repeat targets | {repeat.sum():,} |" in text


def test_repeat_head_refuses_settings_that_set_the_head(data_dir, tmp_path):
    assert_refused("repeat_head", (data_dir, str(tmp_path / "runs")), tmp_path,
                   "--settings must not set repeat_head",
                   f"--settings={DATASET}:repeat_head=true")
