"""Multi-worker training on TensorFlow's MultiWorkerMirroredStrategy.

Two worker processes on 127.0.0.1 train as one process does with the same global batch,
a bad TF_CONFIG or a missing peer ends a worker with one error line, and a cluster that
lost a worker resumes from the last checkpoint when both are started again. Workers run
`mtd_tf/main.py` as a person starts them, each with its own TF_CONFIG; every process a
test starts is killed and reaped when the test ends, however it ends.

Dropout is 0 where weights are compared: Keras draws each replica's dropout masks for its
share of the batch, so two replicas mask a batch unlike one device masking all of it
(with dropout 0.2 the validation P@20 of the tiny run differs: 11.99 against 12.30).
"""

import json
import os
import subprocess
import time
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import graph
from mtd_tf.errors import ConfigError
from mtd_tf.models.graph_infomax import GraphInfomax
from mtd_tf.training import cluster_config
from mtd_tf.training import run_settings
from mtd_tf.training import strategies
from mtd_tf.training import worker_agreement
from mtd_tf.training.config import TrainConfig
from mtd_tf.training.graph_step import make_graph_train_step
from tests import helpers

TRAINING = dict(dataset=helpers.TINY, epochs=2, frequency=1, graph_steps=3, batch_size=128,
                embedding_dim=16, max_train_batches=4, patience=3, seed=0, dropout=0.0)
# CSRM stands for the comparison models (they all go through the same loop): its bank of
# recent sessions is written by the training step itself, from every replica's share.
MODELS = {"mtd": {}, "csrm": dict(model="csrm", embedding_dropout=0.0)}
RUN_SECONDS = 240  # the most a worker of these tiny runs may take on a loaded machine
POLL_SECONDS = 0.01


class Cluster:
    """Worker processes of one cluster on 127.0.0.1 (ports picked free), each running
    `main.py` with its own TF_CONFIG; all are killed and reaped when the block ends."""

    def __init__(self, log_dir, num_workers=2):
        self.tf_configs = cluster_config.loopback_tf_configs(num_workers)
        self.addresses = json.loads(self.tf_configs[0])["cluster"]["worker"]
        self.log_dir = log_dir
        self.started = []  # (process, log file)

    def tf_config(self, index):
        return self.tf_configs[index]

    def start(self, index, arguments, name):
        """Starts worker `index` with `main.py ARGUMENTS`; its output goes to `name`.log."""
        log = open(self.log_dir / f"{name}.log", "w")  # pylint: disable=consider-using-with
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            [helpers.PYTHON, "mtd_tf/main.py", *arguments], cwd=helpers.REPO_ROOT,
            env=dict(helpers.SUBPROCESS_ENV, TF_CONFIG=self.tf_config(index)),
            stdout=log, stderr=subprocess.STDOUT)
        self.started.append((process, log))
        process.log_path = self.log_dir / f"{name}.log"
        return process

    def run_all(self, arguments, name):
        """Starts every worker with the same command and waits for all; their processes."""
        processes = [self.start(index, arguments, f"{name}{index}")
                     for index in range(len(self.addresses))]
        for process in processes:
            process.wait(timeout=RUN_SECONDS)
        return processes

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for process, log in self.started:
            if process.poll() is None:
                process.kill()
            process.wait()
            log.close()


def output(process):
    return process.log_path.read_text()


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith("error:")]


def worker_arguments(data_dir, model_dir, peer_timeout=120, model="mtd"):
    settings = dict(TRAINING, **MODELS[model])
    return [f"--{name}={value}" for name, value in settings.items()] + [
        f"--data_dir={data_dir}", f"--model_dir={model_dir}", "--strategy=multi_worker",
        f"--peer_timeout={peer_timeout}"]


def checkpoint_values(folder):
    """{name: array} of every value in the newest checkpoint of `folder`."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(folder)))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


@pytest.fixture(name="data_dir", scope="module")
def fixture_data_dir(tmp_path_factory):
    return helpers.write_tiny_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(name="one_process", scope="module")
def fixture_one_process(data_dir, tmp_path_factory):
    """`run(model) -> (run folder, metrics.json)` of TRAINING with `model`, in this one
    process, uninterrupted; each model's run is made once."""
    runs = {}

    def run(model):
        if model not in runs:
            one_dir = tmp_path_factory.mktemp(f"one_process_{model}")
            runs[model] = one_dir, helpers.train_and_evaluate(TrainConfig.from_settings(
                **TRAINING, **MODELS[model], data_dir=data_dir, model_dir=str(one_dir)))
        return runs[model]

    return run


def assert_same_as_one_process(model_dir, one_process, model):
    """The cluster's run folder holds what one process's uninterrupted run holds: the
    same metrics, test ranks and weights; only the chief kept outputs."""
    one_dir, one = one_process(model)
    two = json.loads((model_dir / "metrics.json").read_text())
    for key in ("valid", "test", "best_epoch", "test_by_target"):
        assert two[key] == one[key], key
    np.testing.assert_array_equal(np.load(model_dir / "test_ranks.npy"),
                                  np.load(one_dir / "test_ranks.npy"))
    expected = checkpoint_values(one_dir / "checkpoints")
    values = checkpoint_values(model_dir / "checkpoints")
    assert sorted(values) == sorted(expected)
    for name, value in values.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-5, err_msg=name)
    # The chief kept the outputs; the other worker saved apart and kept nothing.
    assert (model_dir / "export" / "saved_model.pb").is_file()
    assert not list(model_dir.glob(f"{strategies.WORKER_FOLDER_PREFIX}*"))
    assert json.loads((model_dir / "settings.json").read_text())["strategy"] == "multi_worker"


# MTD's two-worker run is the restarted cluster of the killed-worker test below.
@pytest.mark.slow
def test_two_workers_train_as_one_process_with_the_same_global_batch(
        tmp_path, data_dir, one_process):
    model_dir = tmp_path / "two_workers"
    with Cluster(tmp_path) as cluster:
        chief, worker = cluster.run_all(worker_arguments(data_dir, model_dir, model="csrm"),
                                        "worker")
        assert chief.returncode == 0, output(chief)[-3000:]
        assert worker.returncode == 0, output(worker)[-3000:]
    assert_same_as_one_process(model_dir, one_process, "csrm")


@pytest.mark.slow
@pytest.mark.parametrize("tf_config, expected", [
    (None, "error: --strategy=multi_worker needs the TF_CONFIG environment variable"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}', "error: TF_CONFIG is not JSON"),
])
def test_a_bad_tf_config_is_one_error_line(tmp_path, tf_config, expected):
    environment = {key: value for key, value in helpers.SUBPROCESS_ENV.items()
                   if key != "TF_CONFIG"}
    if tf_config is not None:
        environment["TF_CONFIG"] = tf_config
    completed = subprocess.run(
        [helpers.PYTHON, "mtd_tf/main.py", "--strategy=multi_worker",
         f"--model_dir={tmp_path / 'run'}"], cwd=helpers.REPO_ROOT, env=environment,
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert [line[:len(expected)] for line in error_lines(completed.stderr)] == [expected]


@pytest.mark.slow
def test_a_worker_whose_peer_never_starts_stops_after_peer_timeout(tmp_path, data_dir):
    with Cluster(tmp_path) as cluster:
        started = time.monotonic()
        alone = cluster.start(0, worker_arguments(data_dir, tmp_path / "run", peer_timeout=3),
                              "alone")
        alone.wait(timeout=RUN_SECONDS)
        waited = time.monotonic() - started
    text = output(alone)
    assert alone.returncode == 2, text[-3000:]
    assert "Traceback" not in text
    (line,) = error_lines(text)
    assert "within --peer_timeout=3 s" in line and cluster.addresses[0] in line
    assert waited < 60  # imports, then 3 s of waiting


@pytest.mark.slow
def test_a_killed_worker_then_both_restarted_resume_from_the_last_checkpoint(
        tmp_path, data_dir, one_process):
    model_dir = tmp_path / "run"
    arguments = worker_arguments(data_dir, model_dir)
    epoch_saved = model_dir / "checkpoints" / "checkpoint"  # the manager writes it last
    with Cluster(tmp_path) as cluster:
        chief = cluster.start(0, arguments, "chief")
        worker = cluster.start(1, arguments, "worker")
        deadline = time.monotonic() + RUN_SECONDS
        while not epoch_saved.exists():
            assert chief.poll() is None and worker.poll() is None, output(chief)[-3000:]
            assert time.monotonic() < deadline, "epoch 1 was never saved"
            time.sleep(POLL_SECONDS)
        worker.kill()  # in epoch 2, whose checkpoint the chief cannot finish alone
        chief.wait(timeout=RUN_SECONDS)
        text = output(chief)
        assert chief.returncode == 2, text[-3000:]
        assert "Traceback" not in text
        (line,) = error_lines(text)
        assert "the cluster lost a worker" in line and "same command" in line
        assert not (model_dir / "metrics.json").exists()

        chief, worker = cluster.run_all(arguments, "restarted")
        assert chief.returncode == 0, output(chief)[-3000:]
        assert worker.returncode == 0, output(worker)[-3000:]
    assert "resumed from" in output(chief) and "after epoch 1" in output(chief)
    report = json.loads((model_dir / "metrics.json").read_text())
    assert report["epochs_run"] == 2 and set(report["valid"]) == set(report["test"])
    # Resumed, the cluster ends where an uninterrupted run ends.
    assert_same_as_one_process(model_dir, one_process, "mtd")


# TF_CONFIG's checks, one line each, without starting TensorFlow's server.

GOOD_CLUSTER = {"worker": ["host1:2222", "host2:2222"]}


@pytest.mark.parametrize("value, words", [
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), 'needs a "cluster" object'),
    (json.dumps({"cluster": GOOD_CLUSTER}), 'needs a "task" object'),
    (json.dumps({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": 2}}),
     "task index 2 is out of range: job 'worker' has 2 address(es), so 0 to 1"),
    (json.dumps({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": -1}}),
     "task index -1 is out of range"),
    (json.dumps({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": "0"}}),
     "task index must be an integer"),
    (json.dumps({"cluster": GOOD_CLUSTER, "task": {"type": "chief", "index": 0}}),
     "task type 'chief' is not a job of its cluster"),
    (json.dumps({"cluster": {"ps": ["h:1"], **GOOD_CLUSTER},
                 "task": {"type": "worker", "index": 0}}), "cluster job 'ps'"),
    (json.dumps({"cluster": {"worker": ["host1"]}, "task": {"type": "worker", "index": 0}}),
     "address 'host1' of job 'worker' is not \"host:port\""),
    (json.dumps({"cluster": {"worker": ["h:1", "h:1"]},
                 "task": {"type": "worker", "index": 0}}),
     "address 'h:1' is listed twice"),
    (json.dumps({"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}),
     "exactly one address"),
    (json.dumps({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}),
     "lists no \"worker\""),
])
def test_a_malformed_tf_config_names_its_problem(value, words):
    with pytest.raises(ConfigError, match="^TF_CONFIG ") as raised:
        cluster_config.parse_tf_config(value)
    assert words in str(raised.value)


def test_a_well_formed_tf_config_gives_its_task():
    cluster = cluster_config.read_tf_config({"TF_CONFIG": json.dumps(
        {"cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"]},
         "task": {"type": "worker", "index": 1}, "environment": "cloud"})})
    assert (cluster.task_type, cluster.index, cluster.address) == ("worker", 1, "w:2")
    assert cluster.num_workers == 3


def test_only_the_chief_writes_the_run_folder():
    def strategy(chief, task_type="worker", task_id=1):
        return types.SimpleNamespace(
            extended=types.SimpleNamespace(should_checkpoint=chief),
            cluster_resolver=types.SimpleNamespace(task_type=task_type, task_id=task_id))

    chief = strategies.worker_folders("runs/a", strategy(True))
    assert (chief.write_dir, chief.lock_file(".lock"), chief.is_chief) == (
        "runs/a", os.path.join("runs/a", ".lock"), True)
    other = strategies.worker_folders("runs/a", strategy(False))
    assert other.write_dir == os.path.join("runs/a", "workertemp_1") and not other.is_chief
    assert other.lock_file(".lock") == os.path.join("runs/a", ".lock.worker_1")
    assert strategies.is_chief(tf.distribute.get_strategy())
    assert isinstance(strategies.make_strategy("mirrored", 1.0),
                      tf.distribute.MirroredStrategy)


def test_a_run_resumes_under_another_strategy_but_workers_share_the_rest(tmp_path):
    config = TrainConfig.from_settings(**TRAINING, data_dir="data", model_dir=str(tmp_path))
    run_settings.check_or_record(config, 1)
    (tmp_path / "metrics.json").write_text("{}")  # the folder now has progress
    run_settings.check_or_record(config.replace(strategy="multi_worker", peer_timeout=9.0), 1)
    with pytest.raises(ConfigError, match="embedding_dim"):
        run_settings.check_or_record(config.replace(embedding_dim=8), 1)
    # A non-chief worker only checks; paths and the timeout may differ between machines.
    run_settings.check_or_record(config.replace(model_dir=str(tmp_path / "new")), 1,
                                 record=False)
    assert not (tmp_path / "new").exists()
    record = run_settings.worker_record(config, 1, data=None)
    assert record == run_settings.worker_record(
        config.replace(data_dir="/mnt/data", model_dir="/mnt/run", peer_timeout=1.0), 1, None)
    assert record != run_settings.worker_record(config.replace(lr=0.01), 1, None)


def test_workers_that_disagree_stop_in_one_line(monkeypatch):
    # Two workers as the gather sees them: this one, and one holding zeros.
    monkeypatch.setattr(worker_agreement, "spans_processes", lambda strategy: True)
    monkeypatch.setattr(worker_agreement, "gather_from_replicas",
                        lambda strategy, values: np.array([values, [0] * len(values)]))
    with pytest.raises(ConfigError, match=r"^the workers do not have the same checkpoint to "
                       r"resume from \(replica\(s\) 1 differ from the chief's, replica 0\): "
                       r"share the folder$"):
        worker_agreement.check_same(None, [3, 42], "checkpoint to resume from",
                                    "share the folder")
    worker_agreement.check_same(None, [0, 0], "checkpoint to resume from")
    assert worker_agreement.any_worker(None, True) and not worker_agreement.any_worker(
        None, False)


def test_the_graph_step_under_the_default_strategy_is_the_plain_update():
    # Under one replica the graph step must stay the update it was before strategies ran
    # it (a tape and apply_gradients in cross-replica context), bit for bit.
    normalized = graph.normalized_adjacency(graph.transition_adjacency(
        [[1, 2, 3], [2, 4], [5, 6, 1], [3, 5]], 6))
    adjacency = graph.to_sparse_tensor(normalized)
    features = np.random.default_rng(0).normal(0.0, 0.05, (6, 8)).astype(np.float32)
    permutation = np.array([3, 1, 5, 0, 2, 4], np.int32)

    def trained(plain):
        keras.utils.set_random_seed(0)
        infomax = GraphInfomax(l2=1e-3)
        infomax.build((6, 8))
        optimizer = keras.optimizers.Adam(1e-2)
        optimizer.build(infomax.trainable_variables)

        @tf.function
        def plain_step(features, adjacency, permutation):
            variables = infomax.trainable_variables
            with tf.GradientTape() as tape:
                loss, _ = infomax.infomax_loss(features, adjacency, permutation, training=True)
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

        step = plain_step if plain else make_graph_train_step(infomax, optimizer)
        for _ in range(3):
            step(tf.constant(features), adjacency, tf.constant(permutation))
        return [v.numpy() for v in infomax.trainable_variables]

    for ours, plain in zip(trained(False), trained(True)):
        np.testing.assert_array_equal(ours, plain)
