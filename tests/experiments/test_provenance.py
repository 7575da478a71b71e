"""The command a result records: the same words on every machine that ran it."""

import os

from experiments import provenance

CHECKOUT = provenance.REPO_ROOT
BESIDE = os.path.dirname(CHECKOUT)


def test_output_folders_are_left_out_in_either_flag_form():
    argv = ["experiments/table2.py", "--datasets=yoochoose", "--runs_dir=/scratch/runs",
            "--results_dir", "/scratch/results", "--refit"]
    assert provenance.recorded_command(argv) == (
        "python experiments/table2.py --datasets=yoochoose --refit")


def test_paths_beside_the_checkout_are_relative_to_it_and_others_kept():
    argv = [os.path.join(CHECKOUT, "experiments", "table4.py"),
            f"--data_dir={os.path.join(BESIDE, 'shared', 'data')}",
            "--export_dir=/elsewhere/export", "--mtd_candidate=score_scale=16"]
    assert provenance.recorded_command(argv) == (
        "python experiments/table4.py --data_dir=../shared/data --export_dir=/elsewhere/export "
        "--mtd_candidate=score_scale=16")


def test_words_that_need_quotes_keep_them():
    assert provenance.recorded_command(["experiments/seeds.py", "--settings=a b"]) == (
        "python experiments/seeds.py '--settings=a b'")
