"""`python -m mtd_tf.baselines`: one JSON line, the same numbers as the library, clean errors."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from mtd_tf import baselines
from mtd_tf import metrics
from mtd_tf import repeats
from mtd_tf.baselines import methods
from mtd_tf.baselines.methods import METHODS
from mtd_tf.data import formats
from mtd_tf.data import registry
from mtd_tf.data.sessions import Sessions
from mtd_tf.metrics import REPORTED_METRICS
from tests.conftest import REPO_ROOT


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mtd_tf.baselines", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(name="data_dir", scope="module")
def fixture_data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    train = [list(rng.integers(1, 31, size=rng.integers(2, 8))) for _ in range(200)]
    prefixes = [list(rng.integers(1, 31, size=rng.integers(1, 5))) for _ in range(50)]
    formats.write_text_split(data_dir / "tiny", Sessions.from_lists(train),
                             Sessions.from_lists(prefixes), rng.integers(1, 31, size=50))
    return data_dir


@pytest.mark.parametrize("method", ["pop", "spop", "itemknn"])
def test_prints_library_numbers_as_one_json_line(data_dir, method):
    completed = run_cli(f"--method={method}", "--dataset=tiny", f"--data_dir={data_dir}")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    dataset = registry.load_dataset("tiny", data_dir)
    accumulator = metrics.RankingMetrics(keep_ranks=True)
    expected = baselines.evaluate(METHODS[method](dataset.train, dataset.num_items),
                                  dataset.test_prefixes, dataset.test_targets,
                                  accumulator=accumulator)
    repeat = np.array([target in prefix for prefix, target in zip(
        dataset.test_prefixes.to_lists(), dataset.test_targets.tolist())])
    assert report == {"method": method, "dataset": "tiny",
                      "test": {name: expected[name] for name in REPORTED_METRICS},
                      "test_by_target": json.loads(json.dumps(
                          repeats.split_report(accumulator.ranks(), repeat)))}
    assert 0 < report["test_by_target"]["repeat"]["pairs"] < len(repeat)


def test_missing_dataset_is_one_error_line(tmp_path):
    completed = run_cli("--method=pop", "--dataset=absent", f"--data_dir={tmp_path}")
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("error: dataset 'absent'")
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""


def test_unknown_method_is_rejected(data_dir):
    completed = run_cli("--method=gru4rec", "--dataset=tiny", f"--data_dir={data_dir}")
    assert completed.returncode != 0
    assert "--method" in completed.stderr


def test_a_method_with_settings_takes_them_from_flags(data_dir):
    completed = run_cli("--method=stan", "--k=5", "--lambda_2=inf", "--dataset=tiny",
                        f"--data_dir={data_dir}")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    setting = methods.make_setting("stan", {"k": 5, "lambda_2": float("inf")})
    assert report["setting"] == dataclasses.asdict(setting)
    dataset = registry.load_dataset("tiny", data_dir)
    assert report["test"] == methods.evaluate_on_test("stan", dataset, setting=setting)


def test_tune_reports_every_trial_and_tests_the_best(data_dir):
    completed = run_cli("--method=sr", "--tune", "--tune_metric=MRR@20", "--pruning=5",
                        "--dataset=tiny", f"--data_dir={data_dir}")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    trials = report["tuning"]["trials"]
    assert report["tuning"]["metric"] == "MRR@20" and len(trials) == 24
    assert all(trial["setting"]["pruning"] == 5 for trial in trials)
    best = max(trials, key=lambda trial: trial["valid"]["MRR@20"])
    assert report["setting"] == best["setting"]
    dataset = registry.load_dataset("tiny", data_dir)
    assert report["test"] == methods.evaluate_on_test(
        "sr", dataset, setting=methods.make_setting("sr", best["setting"]))


@pytest.mark.parametrize("args,message", [
    (["--method=sknn", "--k=0"], "error: --k must be a positive integer, got 0 (method sknn)"),
    (["--method=sr", "--weighting=cubic"], "error: --weighting must be one of"),
    (["--method=stan", "--lambda_1=-1"], "error: --lambda_1 must be a number > 0"),
    (["--method=pop", "--k=5"], "error: --k is not a setting of pop"),
    (["--method=sknn", "--steps=3"], "error: --steps is not a setting of sknn"),
    (["--method=itemknn", "--tune"], "error: --tune: itemknn has no settings to tune"),
])
def test_bad_settings_are_one_error_line_naming_the_flag(data_dir, args, message):
    completed = run_cli(*args, "--dataset=tiny", f"--data_dir={data_dir}")
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in completed.stderr and completed.stdout == ""
