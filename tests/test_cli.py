"""The command lines as a user runs them, each in a fresh process: main (--helpfull,
--flagfile, python -m), predict and evaluate, and their one-line errors."""

import json
import math
import os
import re
import subprocess
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import metrics
from mtd_tf import rank_files
from mtd_tf.data import registry
from mtd_tf.serving import evaluation
from mtd_tf.serving import export
from mtd_tf.training import config
from tests import helpers

pytestmark = pytest.mark.slow

# Every flag the issue names for mtd_tf/main.py.
MAIN_FLAGS = ("dataset", "data_dir", "model_dir", "variant", "epochs", "frequency",
              "graph_steps", "gcn_layers", "batch_size", "embedding_dim", "lr", "l2",
              "dropout", "max_len", "patience", "seed", "export_top_k", "max_train_batches",
              "graph_writeback", "graph_mix", "scoring_precision")


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A tiny run of `python -m mtd_tf.main --flagfile=...`: (completed process, model_dir, data_dir)."""
    root = tmp_path_factory.mktemp("cli")
    data_dir = helpers.write_tiny_dataset(root / "data")
    model_dir = str(root / "run")
    flagfile = root / "tiny.flags"
    flagfile.write_text("\n".join([
        "# a tiny run", "--dataset=tiny", f"--data_dir={data_dir}", f"--model_dir={model_dir}",
        "--epochs=2", "--frequency=1", "--graph_steps=3", "--batch_size=128",
        "--embedding_dim=16", "--max_train_batches=4", "--export_top_k=20", "--seed=3", ""]))
    result = helpers.run_python(["-m", "mtd_tf.main", f"--flagfile={flagfile}"], timeout=300)
    return result, model_dir, data_dir


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_helpfull_lists_every_flag():
    result = helpers.run_python(["mtd_tf/main.py", "--helpfull"])
    # absl's help flags print the usage to stdout and exit with status 1.
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    # ... and one for every setting of the trainer and the model, so none is reachable from
    # code only.
    for name in MAIN_FLAGS + tuple(config.FIELDS):
        assert re.search(rf"--(\[no\])?{name}\b", result.stdout), name


@pytest.mark.parametrize("program", [["mtd_tf/main.py"], ["-m", "mtd_tf.serving.evaluate"],
                                     ["-m", "mtd_tf.baselines"], ["experiments/figure3.py"]])
def test_help_lists_the_shared_flags(program):
    result = helpers.run_python(program + ["--help"])
    assert "Traceback" not in result.stderr
    shared = ["dataset", "data_dir", "seed"]
    if program[0].startswith("experiments"):
        shared = ["datasets", "data_dir", "seed", "runs_dir", "results_dir", "report_only", "set"]
    for name in shared:
        assert re.search(rf"^  --(\[no\])?{name}:", result.stdout, re.MULTILINE), (program, name)
    assert "--helpfull" in result.stdout


def test_flagfile_run_with_python_m(cli_run):
    result, model_dir, data_dir = cli_run
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(model_dir, "metrics.json")) as handle:
        report = json.load(handle)
    # Every value of the flagfile reached the run.
    flags = report["flags"]
    assert (flags["dataset"], flags["data_dir"], flags["model_dir"]) == ("tiny", data_dir, model_dir)
    assert (flags["epochs"], flags["embedding_dim"], flags["max_train_batches"], flags["seed"],
            flags["batch_size"], flags["graph_steps"]) == (2, 16, 4, 3, 128, 3)
    assert report["epochs_run"] == 2
    # The one line printed at the end quotes the test P@20 of metrics.json.
    assert f"test P@20 {report['test']['P@20']:.2f}" in result.stdout
    assert os.path.isfile(os.path.join(model_dir, "export", "saved_model.pb"))


def test_resume_with_changed_settings_is_one_error_line(cli_run):
    _, model_dir, data_dir = cli_run
    result = helpers.run_python(["-m", "mtd_tf.main", "--dataset=tiny", f"--data_dir={data_dir}",
                                 f"--model_dir={model_dir}", "--epochs=2", "--frequency=1",
                                 "--graph_steps=3", "--batch_size=128", "--embedding_dim=8",
                                 "--max_train_batches=4", "--seed=3"], timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [
        f"error: {model_dir} holds a run started with embedding_dim=16, not embedding_dim=8: "
        "use another --model_dir, or the same settings to resume it"]


@pytest.mark.parametrize("flag, error", [
    ("--decay=0.5", "error: --decay is not a setting of --model=srgnn (its settings: "),
    ("--step=0", "error: step must be a positive integer, got 0"),
    ("--embedding_dim=-3", "error: embedding_dim must be a positive integer, got -3"),
])
def test_a_bad_setting_for_a_comparison_model_is_one_error_line(tmp_path, flag, error):
    data_dir = helpers.write_tiny_dataset(tmp_path)
    result = helpers.run_python(["mtd_tf/main.py", "--model=srgnn", "--dataset=tiny",
                                 f"--data_dir={data_dir}", flag])
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    assert line.startswith(error), line


def test_resume_on_other_data_is_one_error_line(cli_run, tmp_path):
    _, model_dir, _ = cli_run
    other_data = helpers.write_tiny_dataset(tmp_path, seed=1)  # tiny again, other sessions
    result = helpers.run_python(["-m", "mtd_tf.main", "--dataset=tiny",
                                 f"--data_dir={other_data}", f"--model_dir={model_dir}",
                                 "--epochs=2", "--frequency=1", "--graph_steps=3",
                                 "--batch_size=128", "--embedding_dim=16",
                                 "--max_train_batches=4", "--seed=3"], timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    assert line.startswith(f"error: {model_dir} holds a run started on other data than "
                           f"--dataset=tiny in {other_data} gives now ("), line
    assert line.endswith("): use another --model_dir, or the data it was trained on"), line


def test_predict_prints_the_top_k_json(cli_run):
    _, model_dir, _ = cli_run
    export_dir = os.path.join(model_dir, "export")
    result = helpers.run_python(["-m", "mtd_tf.serving.predict", f"--export_dir={export_dir}",
                                 "--session=3 4 5"])
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(printed) == {"session", "top_items", "scores"}
    assert printed["session"] == [3, 4, 5]
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    served = signature(item_ids=tf.constant([[3, 4, 5]], tf.int64))
    assert printed["top_items"] == served["top_items"].numpy()[0].tolist()
    assert len(printed["top_items"]) == 20
    np.testing.assert_allclose(printed["scores"], served["scores"].numpy()[0], atol=1e-6)


def test_evaluate_matches_the_reported_test_metrics(cli_run):
    _, model_dir, data_dir = cli_run
    result = helpers.run_python(["-m", "mtd_tf.serving.evaluate", f"--export_dir={model_dir}/export",
                                 "--dataset=tiny", f"--data_dir={data_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    evaluated = printed["test"]
    with open(os.path.join(model_dir, "metrics.json")) as handle:
        written = json.load(handle)
    reported = written["test"]
    # Both rank the same scores: the served top-20 position of a target is 1 + the
    # number of items scoring strictly higher, so every metric up to K = 20 agrees.
    assert {"P@5", "MRR@5", "P@10", "MRR@10", "P@20", "MRR@20", "NDCG@20"} <= set(evaluated)
    for key, value in evaluated.items():
        assert value == pytest.approx(reported[key], abs=1e-6), key
    # So do the repeat and new targets apart.
    for part in ("repeat", "new"):
        served, trained = printed["test_by_target"][part], written["test_by_target"][part]
        assert (served["pairs"], served["share"]) == (trained["pairs"], trained["share"])
        for key, value in served["metrics"].items():
            assert value == pytest.approx(trained["metrics"][key], abs=1e-6), (part, key)


@pytest.fixture(scope="module")
def untrained_export(cli_run, tmp_path_factory):
    """A second, different model for the tiny dataset: an untrained MTDModel's SavedModel.

    Same item count and top-K (20) as the trained export, so both answer P@5..NDCG@20.
    """
    from mtd_tf.serving import export  # pylint: disable=import-outside-toplevel
    from mtd_tf.models.mtd import MTDModel  # pylint: disable=import-outside-toplevel

    _, _, data_dir = cli_run
    num_items = registry.load_dataset("tiny", data_dir).num_items
    # Module-scoped fixtures run before the autouse per-test seed: seed here.
    keras.utils.set_random_seed(1)
    model = MTDModel(num_items=num_items, embedding_dim=16)
    model.build()
    export_dir = str(tmp_path_factory.mktemp("untrained") / "export")
    export.export_saved_model(model, export_dir, top_k=20,
                              item_popularity=np.arange(num_items, 0, -1))
    return export_dir


def test_evaluate_compares_two_exports_on_the_same_pairs(cli_run, untrained_export):
    _, model_dir, data_dir = cli_run
    export_dir = f"{model_dir}/export"
    result = helpers.run_python(["-m", "mtd_tf.serving.evaluate", f"--export_dir={export_dir}",
                                 f"--baseline_export_dir={untrained_export}", "--dataset=tiny",
                                 f"--data_dir={data_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    alone = helpers.run_python(["-m", "mtd_tf.serving.evaluate", f"--export_dir={untrained_export}",
                                "--dataset=tiny", f"--data_dir={data_dir}"])
    assert alone.returncode == 0, alone.stderr[-3000:]
    baseline_alone = json.loads(alone.stdout.strip().splitlines()[-1])
    with open(os.path.join(model_dir, "metrics.json")) as handle:
        reported = json.load(handle)["test"]

    assert report["baseline_export_dir"] == untrained_export
    assert {"P@5", "MRR@5", "P@10", "MRR@10", "P@20", "MRR@20", "NDCG@20"} <= set(report["test"])
    assert set(report["test"]) == set(report["baseline_test"]) == set(report["gap"])
    # "test" is the trained export (its metrics.json), "baseline_test" the untrained one as
    # `evaluate` reports it alone: a CLI that scored one export twice, or swapped them, fails.
    for key, value in report["test"].items():
        assert value == pytest.approx(reported[key], abs=1e-6), key
    for key, value in report["baseline_test"].items():
        assert value == pytest.approx(baseline_alone["test"][key], abs=1e-6), key
        assert report["baseline_test_standard_error"][key] == pytest.approx(
            baseline_alone["test_standard_error"][key], abs=1e-6), key
    # The gap is trained - baseline, per metric; the two models differ, so some gap is not 0.
    for key, gap in report["gap"].items():
        assert gap == pytest.approx(report["test"][key] - report["baseline_test"][key],
                                    abs=1e-6), key
    assert any(abs(gap) > 1e-6 for gap in report["gap"].values()), report["gap"]
    # A hit rate's standard error over n pairs: sqrt(p (1 - p) / (n - 1)).
    share, pairs = report["test"]["P@20"] / 100, report["test_pairs"]
    assert report["test_standard_error"]["P@20"] == pytest.approx(
        100 * math.sqrt(share * (1 - share) / (pairs - 1)))


def test_the_run_keeps_each_test_pairs_rank_in_the_split_order(cli_run):
    _, model_dir, data_dir = cli_run
    dataset = registry.load_dataset("tiny", data_dir)
    kept = rank_files.read_ranks(os.path.join(model_dir, rank_files.TEST_RANKS_FILE),
                                 num_pairs=len(dataset.test_targets))
    with open(os.path.join(model_dir, "metrics.json")) as handle:
        reported = json.load(handle)["test"]
    accumulator = metrics.RankingMetrics()
    accumulator.update(kept)
    for key, value in accumulator.result().items():
        assert value == pytest.approx(reported[key], abs=1e-9), key
    # Pair by pair, the rank the export serves (its list is cut at top_k).
    served, top_k = evaluation.served_ranks(export.load_export(os.path.join(model_dir, "export")),
                                            dataset, batch_size=64)
    np.testing.assert_array_equal(np.minimum(kept, top_k + 1), served)


def test_evaluate_names_a_missing_baseline_export(cli_run, tmp_path):
    _, model_dir, data_dir = cli_run
    result = helpers.run_python(["-m", "mtd_tf.serving.evaluate", f"--export_dir={model_dir}/export",
                                 f"--baseline_export_dir={tmp_path}", "--dataset=tiny",
                                 f"--data_dir={data_dir}"])
    assert result.returncode != 0
    assert f"{tmp_path}: no SavedModel here" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_warns_about_ids_the_export_ignores(cli_run):
    _, model_dir, data_dir = cli_run
    num_items = registry.load_dataset("tiny", data_dir).num_items
    export_dir = f"{model_dir}/export"
    for session, warning in (
            (f"3 {num_items + 1} 0", f"warning: ids {num_items + 1} 0 are not among the "
                                     f"export's items 1..{num_items} and are ignored"),
            (f"{num_items + 5}", f"warning: ids {num_items + 5} are not among the export's "
                                 f"items 1..{num_items} and are ignored; with no id left, the "
                                 "list is the most popular items and the scores are their "
                                 "training counts")):
        result = helpers.run_python(["-m", "mtd_tf.serving.predict", f"--export_dir={export_dir}",
                                     f"--session={session}"])
        assert result.returncode == 0, result.stderr[-3000:]
        assert [line for line in result.stderr.splitlines()
                if line.startswith("warning:")] == [warning]
        assert len(json.loads(result.stdout)["top_items"]) == min(20, num_items)
    quiet = helpers.run_python(["-m", "mtd_tf.serving.predict", f"--export_dir={export_dir}",
                                f"--session=3 {num_items}"])
    assert "warning:" not in quiet.stderr


def test_evaluate_warns_when_the_catalogues_differ(cli_run, tmp_path):
    _, model_dir, data_dir = cli_run
    num_items = registry.load_dataset("tiny", data_dir).num_items
    result = helpers.run_python(["-m", "mtd_tf.serving.evaluate", f"--export_dir={model_dir}/export",
                                 "--dataset=synthetic", f"--data_dir={tmp_path}"])
    assert result.returncode == 0, result.stderr[-3000:]
    synthetic_items = registry.load_dataset("synthetic", tmp_path).num_items
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: {model_dir}/export recommends items 1..{num_items}, but synthetic's "
        f"training items are 1..{synthetic_items}: was it trained on another dataset? (ids "
        "it does not know are ignored)"]


def test_predict_mistakes_are_one_error_line(cli_run):
    _, model_dir, _ = cli_run
    # str.isdigit() accepts '²' but int() does not: this once ended in a ValueError
    # traceback. The other malformed sessions are in test_parse_session_accepts_ascii_ids_only.
    for export_dir, session, expected in (
            (f"{model_dir}/export", "7 \u00b2",
             "error: --session must hold non-negative integer ids, got '7 \u00b2'"),
            (model_dir, "3", f"error: {model_dir}: no SavedModel here, but its export/ holds "
                             f"one: pass --export_dir={model_dir}/export")):
        result = helpers.run_python(["-m", "mtd_tf.serving.predict", f"--export_dir={export_dir}",
                                     f"--session={session}"])
        assert result.returncode == 2
        assert error_lines(result.stderr) == [expected]
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_predict_missing_export_is_one_error_line(tmp_path):
    result = helpers.run_python(["-m", "mtd_tf.serving.predict", f"--export_dir={tmp_path}/none",
                                 "--session=1 2"])
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"error: {tmp_path}/none: no SavedModel here (run mtd_tf/main.py first; it writes "
        "<model_dir>/export)"]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_parse_session_accepts_ascii_ids_only():
    """Every case in one process (importing mtd_tf.serving.predict defines its flags)."""
    program = textwrap.dedent("""
        import json
        from mtd_tf.errors import MTDError
        from mtd_tf.serving.predict import parse_session
        out = []
        for text in json.loads(input()):
            try:
                out.append(parse_session(text))
            except MTDError as error:
                out.append("error: " + str(error))
        print(json.dumps(out))
    """)
    cases = ["214 7 99", "  5\t6\n7 ", "0 3", "", "  ", "3 -4", "3.5", "1e3", "\u0661",
             "\u00b2", "+3", "9223372036854775807", "9223372036854775808"]
    result = subprocess.run([helpers.PYTHON, "-c", program], input=json.dumps(cases),
                            capture_output=True, text=True, timeout=120,
                            env=helpers.SUBPROCESS_ENV, cwd=helpers.REPO_ROOT, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = dict(zip(cases, json.loads(result.stdout.strip().splitlines()[-1])))
    assert parsed["214 7 99"] == [214, 7, 99]
    assert parsed["  5\t6\n7 "] == [5, 6, 7]
    assert parsed["0 3"] == [0, 3]  # 0 is padding: the model ignores it
    assert parsed["9223372036854775807"] == [2**63 - 1]
    for text in ("", "  "):
        assert parsed[text].startswith("error: --session is empty"), text
    for text in ("3 -4", "3.5", "1e3", "\u0661", "\u00b2", "+3"):
        assert parsed[text].startswith("error: --session must hold non-negative integer ids"), text
    assert parsed["9223372036854775808"].startswith("error: --session id 9223372036854775808")


def test_clis_start_quietly_unless_asked(cli_run, tmp_path):
    """TensorFlow's start-up lines (CPU features, CUDA probing, most of them twice) do not
    precede a CLI's own output; `--verbosity` brings them back."""
    _, model_dir, _ = cli_run

    def stderr_of(*args):
        return subprocess.run([helpers.PYTHON, *args], capture_output=True, text=True,
                              env=helpers.USER_ENV, cwd=helpers.REPO_ROOT, timeout=120,
                              check=False).stderr

    missing = stderr_of("mtd_tf/main.py", "--dataset=nothing_here", f"--data_dir={tmp_path}",
                        f"--model_dir={tmp_path / 'runs' / 'nothing_here_mtd'}")
    assert missing.splitlines() == [line for line in missing.splitlines()
                                    if line.startswith("error: dataset 'nothing_here'")]
    assert len(missing.splitlines()) == 1, missing
    predict = ["-m", "mtd_tf.serving.predict",
               f"--export_dir={os.path.join(model_dir, 'export')}", "--session=3 4 5"]
    assert stderr_of(*predict, "--verbosity=0")  # TensorFlow's own start-up lines
