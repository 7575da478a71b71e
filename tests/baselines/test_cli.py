"""`python -m mtd_tf.baselines`: one JSON line, the same numbers as the library, clean errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from mtd_tf import baselines
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
    expected = baselines.evaluate(METHODS[method](dataset.train, dataset.num_items),
                                  dataset.test_prefixes, dataset.test_targets)
    assert report == {"method": method, "dataset": "tiny",
                      "test": {name: expected[name] for name in REPORTED_METRICS}}


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
