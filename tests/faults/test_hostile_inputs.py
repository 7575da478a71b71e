"""Hostile and odd data files, through every CLI that reads data, and unknown test ids.

A file from the internet may be a pickle that runs code, a truncated download, the wrong
structure, or hold ids that are not items. Each must stop the CLI before any effect with
a non-zero exit and one line `error: PATH: ...problem` on stderr, never a traceback; ids
that training never saw must be counted and reported, never ranked against a wrong item.
"""

import json
import os
import pickle
import re
import subprocess
import sys

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from mtd_tf.data import formats
from mtd_tf.data import record_checks
from mtd_tf.data import registry
from mtd_tf.data.sessions import Sessions
from mtd_tf.errors import DataError
from tests.conftest import REPO_ROOT

TRAIN = [[1, 2, 3], [4, 5], [2, 6, 7, 1], [8, 9, 10], [3, 4], [5, 6, 7], [9, 1, 2],
         [10, 3], [7, 8, 9, 2], [4, 6]]
PREFIXES = [[1, 2], [4], [6, 7]]
TARGETS = [3, 5, 1]


class _RunsShellCommand:
    """Unpickling this would run `touch MARKER`, as a hostile published split could."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _ImportsSubprocess:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return subprocess.call, (["touch", self.marker],)


def _pickled(value, protocol=4):
    return lambda marker: pickle.dumps(value, protocol=protocol)


def _text(text):
    return lambda marker: text.encode("utf-8")


# (case id, format, the file that is bad, its bytes given the marker path, expected problem).
# The other file of the pair is valid. The problem is matched against the whole error line.
CASES = [
    ("pickle_reduce_os_system", "pickle", "train",
     lambda marker: pickle.dumps([[1, 2], _RunsShellCommand(marker)], protocol=4),
     r"pickle refers to (os|posix)\.system: only lists, tuples and ints are allowed"),
    ("pickle_reduce_protocol_0", "pickle", "test",
     lambda marker: pickle.dumps(([[1]], [_RunsShellCommand(marker)]), protocol=0),
     r"pickle refers to (os|posix)\.system"),
    ("pickle_subprocess_call", "pickle", "train",
     lambda marker: pickle.dumps([_ImportsSubprocess(marker)], protocol=5),
     r"pickle refers to subprocess\.call"),
    ("pickle_global_eval", "pickle", "train",
     lambda marker: b"cbuiltins\neval\n(S'__import__(\"os\").system(\"touch " +
     str(marker).encode() + b"\")'\ntR.",
     r"pickle refers to builtins\.eval"),
    ("pickle_set", "pickle", "train", _pickled([[1, 2], {3, 4}]), r"pickle contains a set"),
    ("pickle_truncated", "pickle", "train",
     lambda marker: pickle.dumps(TRAIN * 20, protocol=4)[:77],
     r"file is (truncated|not a valid pickle)"),
    ("pickle_empty", "pickle", "test", lambda marker: b"", r"file is empty"),
    ("pickle_not_a_pickle", "pickle", "train", lambda marker: b"hello\nworld\n",
     r"not a pickle"),
    ("pickle_dict", "pickle", "train", _pickled({1: [1, 2], 2: [3]}), r"pickle contains a dict"),
    ("pickle_bare_int", "pickle", "train", _pickled(7),
     r"expected a list of sessions, found an int"),
    ("pickle_deeper_nesting", "pickle", "train", _pickled([[[1, 2]], [[3]]]),
     r"record 1: \[1, 2\] \(a list\) is not a positive integer id"),
    ("pickle_float_id", "pickle", "train", _pickled([[1, 2.5]]), r"pickle contains a float"),
    ("pickle_string_id", "pickle", "train", _pickled([["7", 2]]), r"pickle contains a string"),
    ("pickle_bool_id", "pickle", "train", _pickled([[True, 2]]), r"pickle contains a bool"),
    ("pickle_none_id", "pickle", "train", _pickled([[1, None]]), r"pickle contains None"),
    ("pickle_zero_id", "pickle", "train", _pickled([[1, 2], [3, 0]]),
     r"record 2: 0 is not a positive integer id"),
    ("pickle_negative_id", "pickle", "train", _pickled([[1, 2], [3], [-4, 5]]),
     r"record 3: -4 is not a positive integer id"),
    ("pickle_huge_id", "pickle", "train", _pickled([[1, 2 ** 40]]),
     r"record 1: id 1099511627776 is larger than the largest allowed id"),
    ("pickle_empty_session", "pickle", "train", _pickled([[1, 2], []]),
     r"record 2: empty session"),
    ("pickle_no_sessions", "pickle", "train", _pickled([]), r"no training sessions"),
    ("pickle_test_triple", "pickle", "test", _pickled(([[1]], [2], [3])),
     r"expected a pair \(prefixes, targets\), found a tuple of 3 items"),
    ("pickle_test_only_prefixes", "pickle", "test", _pickled([[1, 2], [3], [4, 5]]),
     r"expected a pair \(prefixes, targets\), found a list of 3 items"),
    ("pickle_test_dict", "pickle", "test", _pickled({"prefixes": [[1]]}),
     r"pickle contains a dict"),
    ("pickle_test_lengths_differ", "pickle", "test", _pickled(([[1], [2]], [3])),
     r"the pair's parts differ in length: 2 prefixes but 1 targets"),
    ("pickle_test_zero_target", "pickle", "test", _pickled(([[1], [2]], [3, 0])),
     r"record 2: target 0 is not a positive integer id"),
    ("pickle_test_nested_target", "pickle", "test", _pickled(([[1]], [[2]])),
     r"record 1: target \[2\] \(a list\) is not a positive integer id"),
    ("pickle_test_empty_prefix", "pickle", "test", _pickled(([[1], []], [2, 3])),
     r"record 2: empty prefix"),
    ("pickle_test_no_pairs", "pickle", "test", _pickled(([], [])), r"no test pairs"),
    ("text_letter_id", "text", "train", _text("1 2\n3 x\n"),
     r"record 2: 'x' is not a positive integer id"),
    ("text_zero_id", "text", "train", _text("1 2\n0 3\n"),
     r"record 2: 0 is not a positive integer id"),
    ("text_negative_id", "text", "train", _text("1 2\n3 -4\n"),
     r"record 2: '-4' is not a positive integer id"),
    ("text_float_id", "text", "test", _text("1 2\t3\n1.5\t2\n"),
     r"record 2: '1\.5' is not a positive integer id"),
    ("text_empty_session", "text", "train", _text("1 2\n\n3 4\n"), r"record 2: empty session"),
    ("text_truncated_line", "text", "train", _text("1 2\n3 "),
     r"record 2: ids must be separated by single spaces"),
    ("text_binary_garbage", "text", "train", lambda marker: b"\x80\x04\x95\xff\x00garbage",
     r"record 1: .* is not a positive integer id"),
    ("text_empty_train", "text", "train", _text(""), r"no training sessions"),
    ("text_empty_test", "text", "test", _text(""), r"no test pairs"),
    ("text_test_without_tab", "text", "test", _text("1 2 3\n"),
     r"record 1: expected prefix ids, one tab, then the target id; found 0 tabs"),
    ("text_test_empty_prefix", "text", "test", _text("1\t2\n\t3\n"), r"record 2: empty prefix"),
    ("text_huge_id", "text", "train", _text("1 99999999999\n"),
     r"record 1: id 99999999999 is larger than the largest allowed id"),
]
CASE_IDS = [case[0] for case in CASES]
_CASES_BY_ID = {case[0]: case for case in CASES}

# What every CLI must survive; a sample for the CLIs that pay a TensorFlow start-up.
TENSORFLOW_CLI_CASES = ["pickle_reduce_os_system", "pickle_test_triple", "text_empty_session"]

# TensorFlow's C++ runtime logs a few lines while it is imported, before any of our code
# runs (oneDNN, CUDA and CPU-feature notices); they are not ours to silence.
_TENSORFLOW_STARTUP_LINE = re.compile(
    r"^(?:[IWEF]0000 00:00:|WARNING: All log messages before absl::InitializeLog|"
    r"To enable the following instructions)")


def _bad_file_path(data_dir, case_id):
    _, fmt, which, _, _ = _CASES_BY_ID[case_id]
    names = {("pickle", "train"): formats.TRAIN_PICKLE, ("pickle", "test"): formats.TEST_PICKLE,
             ("text", "train"): formats.TRAIN_TEXT, ("text", "test"): formats.TEST_TEXT}
    return data_dir / case_id / names[fmt, which]


@pytest.fixture(name="hostile_dir", scope="module")
def fixture_hostile_dir(tmp_path_factory):
    """One dataset folder per case: a valid pair of files with one of them replaced."""
    data_dir = tmp_path_factory.mktemp("hostile")
    for case_id, fmt, which, make_bytes, _ in CASES:
        folder = data_dir / case_id
        folder.mkdir()
        if fmt == "pickle":
            (folder / formats.TRAIN_PICKLE).write_bytes(pickle.dumps(TRAIN))
            (folder / formats.TEST_PICKLE).write_bytes(pickle.dumps((PREFIXES, TARGETS)))
        else:
            formats.write_text_split(folder, TRAIN, PREFIXES, TARGETS)
        _bad_file_path(data_dir, case_id).write_bytes(make_bytes(_marker(data_dir, case_id)))
    return data_dir


def _marker(data_dir, case_id):
    """The file a code-running pickle of this case would create."""
    return data_dir / f"{case_id}.pwned"


def _run(args, timeout=180):
    env = {key: value for key, value in os.environ.items() if key != "MTD_DATA_DIR"}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _assert_one_error_line(completed, path, problem, allow_tensorflow_startup=False):
    """Exit 2, nothing on stdout, and stderr is exactly `error: PATH: ...problem`."""
    assert "Traceback" not in completed.stderr, completed.stderr
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    if allow_tensorflow_startup:
        lines = [line for line in lines if not _TENSORFLOW_STARTUP_LINE.match(line)]
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    assert re.search(problem, lines[0]), (problem, lines[0])


# The loader itself, every case (fast, in-process).


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_loader_refuses_with_the_file_and_the_problem(hostile_dir, case_id):
    with pytest.raises(DataError) as raised:
        registry.load_dataset(case_id, hostile_dir)
    message = str(raised.value)
    assert message.startswith(f"{_bad_file_path(hostile_dir, case_id)}: ")
    assert re.search(_CASES_BY_ID[case_id][4], message), message
    assert not _marker(hostile_dir, case_id).exists()


# Through the CLIs, as a user runs them.


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_stats_cli(hostile_dir, case_id):
    completed = _run(["-m", "mtd_tf.data.stats", f"--dataset={case_id}",
                      f"--data_dir={hostile_dir}"])
    _assert_one_error_line(completed, _bad_file_path(hostile_dir, case_id),
                           _CASES_BY_ID[case_id][4])
    assert not _marker(hostile_dir, case_id).exists()


@pytest.mark.parametrize("case_id", [case_id for case_id in CASE_IDS if "pickle" in case_id][::2]
                         + ["text_negative_id", "text_empty_test", "pickle_reduce_protocol_0"])
def test_baselines_cli(hostile_dir, case_id):
    completed = _run(["-m", "mtd_tf.baselines", "--method=itemknn", f"--dataset={case_id}",
                      f"--data_dir={hostile_dir}"])
    _assert_one_error_line(completed, _bad_file_path(hostile_dir, case_id),
                           _CASES_BY_ID[case_id][4])
    assert not _marker(hostile_dir, case_id).exists()


@pytest.mark.slow
@pytest.mark.parametrize("case_id", TENSORFLOW_CLI_CASES)
def test_main_cli(hostile_dir, tmp_path, case_id):
    model_dir = tmp_path / "run"
    completed = _run(["mtd_tf/main.py", f"--dataset={case_id}", f"--data_dir={hostile_dir}",
                      f"--model_dir={model_dir}", "--epochs=1"])
    _assert_one_error_line(completed, _bad_file_path(hostile_dir, case_id),
                           _CASES_BY_ID[case_id][4], allow_tensorflow_startup=True)
    assert not _marker(hostile_dir, case_id).exists()
    assert not (model_dir / "checkpoints").exists()


@pytest.fixture(name="tiny_export", scope="module")
def fixture_tiny_export(tmp_path_factory):
    """An untrained 10-item model's SavedModel: evaluate reads the export before the data."""
    from mtd_tf.serving import export  # pylint: disable=import-outside-toplevel
    from mtd_tf.models.mtd import MTDModel  # pylint: disable=import-outside-toplevel

    model = MTDModel(num_items=10, embedding_dim=8, max_len=5)
    model.build()
    export_dir = tmp_path_factory.mktemp("export") / "export"
    export.export_saved_model(model, str(export_dir), top_k=5,
                              item_popularity=np.arange(10, 0, -1))
    return export_dir


@pytest.mark.slow
@pytest.mark.parametrize("case_id", ["pickle_reduce_os_system", "pickle_truncated"])
def test_evaluate_cli(hostile_dir, tiny_export, case_id):
    completed = _run(["-m", "mtd_tf.serving.evaluate", f"--export_dir={tiny_export}",
                      f"--dataset={case_id}", f"--data_dir={hostile_dir}"])
    _assert_one_error_line(completed, _bad_file_path(hostile_dir, case_id),
                           _CASES_BY_ID[case_id][4], allow_tensorflow_startup=True)
    assert not _marker(hostile_dir, case_id).exists()


def test_training_names_a_dataset_too_small_to_validate_or_train(tmp_path):
    from mtd_tf.errors import MTDError  # pylint: disable=import-outside-toplevel
    from mtd_tf.training import loop  # pylint: disable=import-outside-toplevel
    from mtd_tf.training.config import TrainConfig  # pylint: disable=import-outside-toplevel

    # Five sessions: round(0.1 * 5) = 0 validation sessions (Python rounds half to even).
    assert len(TRAIN) >= 5
    formats.write_text_split(tmp_path / "five", TRAIN[:5], PREFIXES, TARGETS)
    with pytest.raises(MTDError) as raised:
        loop.Trainer(TrainConfig.from_settings(dataset="five", data_dir=str(tmp_path),
                                 model_dir=str(tmp_path / "run")))
    assert str(raised.value) == (
        f"{tmp_path / 'five'}: no validation samples: the validation split (the last 10% of "
        "the training sessions) is empty or holds only sessions too short to give a (prefix, "
        "target) pair; it needs at least 6 training sessions")
    # Sessions of one click give no (prefix, target) pair at all.
    formats.write_text_split(tmp_path / "clicks", [[item] for item in range(1, 21)], PREFIXES,
                             TARGETS)
    with pytest.raises(MTDError, match="clicks: no training samples: every training session"):
        loop.Trainer(TrainConfig.from_settings(dataset="clicks", data_dir=str(tmp_path),
                                 model_dir=str(tmp_path / "run")))


# Unknown ids: counted, reported, and never ranked against a wrong item.

# Training knows items 1..10 (item 8, the target of pair 3, only once). Pair 2 loses id 11;
# pair 3 loses both its ids and is kept empty; pairs 4 and 5 have targets training never
# saw (sure misses). With M = 10 every known target ranks within the top 10, so P@10 and
# P@20 are exactly 3 of 5 pairs: 60%.
UNKNOWN_PREFIXES = [[1, 2], [11, 4], [12, 13], [6, 7], [1]]
UNKNOWN_TARGETS = [3, 5, 8, 99, 14]


@pytest.fixture(name="unknown_ids_dir", scope="module")
def fixture_unknown_ids_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("unknown")
    rng = np.random.default_rng(0)
    common_items = [1, 2, 3, 4, 5, 6, 7, 9, 10]
    train = [list(rng.choice(common_items, size=rng.integers(2, 6))) for _ in range(60)]
    train[0] = list(range(1, 11))  # every item 1..10 occurs, item 8 only here
    formats.write_text_split(data_dir / "unknown", train, UNKNOWN_PREFIXES, UNKNOWN_TARGETS)
    return data_dir


def test_unknown_ids_are_counted(unknown_ids_dir):
    dataset = registry.load_dataset("unknown", unknown_ids_dir)
    assert dataset.num_items == 10
    assert dataset.test_prefixes.to_lists() == [[1, 2], [4], [], [6, 7], [1]]
    assert dataset.test_targets.tolist() == UNKNOWN_TARGETS
    assert dataset.unknown_id_counts() == {
        "test_unknown_prefix_ids": 3, "test_emptied_prefixes": 1, "test_unknown_targets": 2}


def test_known_ids_only_report_zero_counts(tmp_path):
    formats.write_text_split(tmp_path / "clean", TRAIN, PREFIXES, TARGETS)
    assert set(registry.load_dataset("clean", tmp_path).unknown_id_counts().values()) == {0}


def test_trainer_ranks_unknown_targets_as_misses_and_empty_prefixes_by_popularity(
        unknown_ids_dir, tmp_path):
    from mtd_tf import metrics  # pylint: disable=import-outside-toplevel
    from mtd_tf.training import loop  # pylint: disable=import-outside-toplevel
    from mtd_tf.training.config import TrainConfig  # pylint: disable=import-outside-toplevel

    trainer = loop.Trainer(TrainConfig.from_settings(
        dataset="unknown", data_dir=str(unknown_ids_dir), model_dir=str(tmp_path / "run"),
        embedding_dim=8, batch_size=2, graph_steps=0))
    test = trainer.inputs.test
    result = trainer.evaluate(test, "test")

    # Expected ranks, pair by pair, from the model's own scores and the popularity counts.
    scores = trainer.model(test.item_ids, training=False).numpy()  # [5, 10]
    popularity = trainer.inputs.item_popularity.astype(np.float64)  # [10]
    expected = metrics.RankingMetrics()
    for row, target in enumerate(test.targets):
        row_scores = scores[row] if test.lengths[row] else popularity
        expected.update(metrics.target_ranks(row_scores[None, :], np.array([target])))
    assert result == pytest.approx(expected.result())
    assert result["P@10"] == result["P@20"] == 60.0
    # The empty prefix is ranked by popularity, where item 8 (seen once) comes last; the
    # model's all-zero scores for it would have ranked it first.
    assert result["MRR@20"] < 100.0 * (1 + 1 / 10 + 1 + 1 / 10) / 5


@pytest.mark.slow
def test_unknown_ids_through_main_baselines_and_evaluate(unknown_ids_dir, tmp_path):
    model_dir = tmp_path / "run"
    completed = _run(["mtd_tf/main.py", "--dataset=unknown", f"--data_dir={unknown_ids_dir}",
                      f"--model_dir={model_dir}", "--epochs=1", "--graph_steps=2",
                      "--batch_size=16", "--embedding_dim=8"])
    assert completed.returncode == 0, completed.stderr
    assert "dropped 3 test prefix ids unknown to training" in completed.stderr
    assert "2 of 5 test targets are not training items" in completed.stderr
    report = json.loads((model_dir / "metrics.json").read_text())
    assert (report["test_unknown_prefix_ids"], report["test_emptied_prefixes"],
            report["test_unknown_targets"]) == (3, 1, 2)
    assert report["test"]["P@10"] == report["test"]["P@20"] == 60.0

    # S-POP, like the export, ranks the empty prefix by popularity (Item-KNN makes it a miss).
    for args in (["-m", "mtd_tf.baselines", "--method=spop"],
                 ["-m", "mtd_tf.serving.evaluate", f"--export_dir={model_dir / 'export'}"]):
        completed = _run([*args, "--dataset=unknown", f"--data_dir={unknown_ids_dir}"])
        assert completed.returncode == 0, completed.stderr
        assert "2 of 5 test targets are not training items" in completed.stderr
        # The export serves K = M = 10 items, so it reports no P@20.
        assert json.loads(completed.stdout)["test"]["P@10"] == 60.0


# Property-based: random files never crash a loader with anything but DataError.

_SETTINGS = hypothesis.settings(
    max_examples=50, deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])

_leaves = (st.integers(min_value=-3, max_value=2 ** 33) | st.integers() | st.booleans()
           | st.none() | st.floats(allow_nan=True) | st.text(max_size=3) | st.binary(max_size=3))
_nested = st.recursive(
    _leaves,
    lambda children: (st.lists(children, max_size=4) | st.tuples(children, children)
                      | st.dictionaries(st.integers(0, 3), children, max_size=2)
                      | st.frozensets(st.integers(0, 3), max_size=2)),
    max_leaves=12)
# Mostly well-formed shapes, so that the record checks (not only the opcode scan) are hit.
_id_like = st.integers(min_value=-2, max_value=12) | st.integers(min_value=2 ** 31 - 2)
_sessions_like = st.lists(st.lists(_id_like, max_size=4) | _nested, max_size=5)


def _assert_valid_sessions(sessions):
    assert isinstance(sessions, Sessions)
    assert (sessions.lengths >= 1).all()
    assert len(sessions.values) == 0 or (
        sessions.values.min() >= 1 and sessions.values.max() <= record_checks.MAX_ITEM_ID)


@_SETTINGS
@hypothesis.given(value=_nested | _sessions_like | st.tuples(_sessions_like, st.lists(_id_like)),
                  protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_random_pickled_structures_load_or_raise_data_error(tmp_path, value, protocol):
    path = tmp_path / "random.pkl"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    try:
        sessions = formats.read_train_pickle(path)
    except DataError as error:
        assert str(error).startswith(f"{path}: ")
    else:
        _assert_valid_sessions(sessions)
        assert sessions.to_lists() == [list(session) for session in value]
    try:
        prefixes, targets = formats.read_test_pickle(path)
    except DataError as error:
        assert str(error).startswith(f"{path}: ")
    else:
        _assert_valid_sessions(prefixes)
        assert len(prefixes) == len(targets) and (targets >= 1).all()


@_SETTINGS
@hypothesis.given(data=st.binary(max_size=300)
                  | st.binary(max_size=300).map(lambda tail: b"\x80\x04" + tail)
                  | st.binary(max_size=300).map(lambda tail: pickle.dumps(TRAIN)[:40] + tail))
def test_random_bytes_load_or_raise_data_error(tmp_path, data):
    path = tmp_path / "random.bin"
    path.write_bytes(data)
    for read in (formats.read_train_pickle, formats.read_train_text):
        try:
            _assert_valid_sessions(read(path))
        except DataError as error:
            assert str(error).startswith(f"{path}: ")
    for read in (formats.read_test_pickle, formats.read_test_text):
        try:
            prefixes, targets = read(path)
        except DataError as error:
            assert str(error).startswith(f"{path}: ")
        else:
            _assert_valid_sessions(prefixes)
            assert len(prefixes) == len(targets)


@_SETTINGS
@hypothesis.given(text=st.text(alphabet=st.sampled_from("0123456789 \t\n-x\r"), max_size=80))
def test_random_text_loads_what_it_says_or_raises_data_error(tmp_path, text):
    path = tmp_path / "random.txt"
    path.write_bytes(text.encode("utf-8"))
    try:
        sessions = formats.read_train_text(path)
    except DataError as error:
        assert str(error).startswith(f"{path}: record ")
    else:
        _assert_valid_sessions(sessions)
        # The reader's normalisation: CRLF -> LF, then a final newline if missing.
        normalized = text.replace("\r\n", "\n")
        normalized += "\n" if normalized and not normalized.endswith("\n") else ""
        assert sessions.to_lists() == [[int(token) for token in line.split(" ")]
                                       for line in normalized.split("\n")[:-1]]
