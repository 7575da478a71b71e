"""The `strategy` setting: which `tf.distribute.Strategy` a run trains under, and where
each worker of a multi-worker run reads and writes.

- `default`: the current strategy: one device, as runs trained before the setting existed.
- `mirrored`: `tf.distribute.MirroredStrategy` over this machine's GPUs (its CPU without).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy` over the machines that the
  `TF_CONFIG` environment variable lists (`cluster_config`), every one running the same
  command; gradients are all-reduced by TensorFlow's collectives.

Outputs follow TensorFlow's multi-worker guide: the chief (the "chief" task, else worker
0) writes the run's outputs into the run folder; every other worker saves its checkpoints
and its export into a folder of its own inside it, `workertemp_<task index>`, deleted
after each save (every worker saves, because a save may read variables through
collectives), and writes nothing else. Every worker restores from the run folder, so
--model_dir must be a folder they all read (a shared file system); the trainer checks
that they all resume at the same point.

Failures stay bounded, by TensorFlow's coordination service. At start-up the strategy
waits for every peer to register, by default for an hour, holding the interpreter (no
Python thread, signal handler or Ctrl-C runs meanwhile); configured first here, with its
registration as a barrier of --peer_timeout seconds, the service fails the wait on every
worker that did start, in one error line. A peer that dies mid-run stops sending the
service heartbeats, and the service aborts every collective of the others within seconds
(about 7 s on loopback); `peers_reported` turns that into one line. TensorFlow's
per-collective timeout (`CommunicationOptions(timeout_seconds=...)`) is not used: it parks
a thread for the whole timeout on every collective (measured: 1,000 more threads after 500
steps with 300 s), and TensorFlow documents it for debugging only.
"""

import contextlib
import dataclasses
import os
import re
import shutil

from absl import logging
import tensorflow as tf
# The module MultiWorkerMirroredStrategy configures the coordination service from: the
# same `context` and configuration proto, whatever the TensorFlow version.
from tensorflow.python.distribute import collective_all_reduce_strategy
from tensorflow.python.eager import context as eager_context

from mtd_tf.errors import ClusterError
from mtd_tf.errors import ConfigError
from mtd_tf.training import cluster_config
from mtd_tf.training import worker_agreement

STRATEGIES = ("default", "mirrored", "multi_worker")
# A non-chief worker's own folder inside the run folder (the name TensorFlow's guide uses).
WORKER_FOLDER_PREFIX = "workertemp_"


def make_strategy(name, peer_timeout):
    """The strategy the setting `name` (one of `STRATEGIES`) stands for.

    `multi_worker` starts this worker's server and waits for every peer of TF_CONFIG's
    cluster, at most `peer_timeout` seconds. Create it before TensorFlow runs anything
    else in the process (TensorFlow's rule for collectives).

    Raises:
      ConfigError: TF_CONFIG is missing or malformed (`cluster_config`).
      ClusterError: a peer did not register within `peer_timeout` seconds, or this
        worker cannot start its server (its port is taken).
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "multi_worker":
        return _join_cluster(cluster_config.read_tf_config(), peer_timeout)
    if os.environ.get(cluster_config.ENVIRONMENT_VARIABLE, "").strip():
        logging.warning("%s is set, but --strategy=%s trains in this process alone "
                        "(--strategy=multi_worker trains with the cluster it lists)",
                        cluster_config.ENVIRONMENT_VARIABLE, name)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _join_cluster(cluster, peer_timeout):
    """MultiWorkerMirroredStrategy, once every peer registered (within `peer_timeout`)."""
    who = f"{cluster.task_type} {cluster.index} ({cluster.address})"
    _bound_registration(cluster, peer_timeout)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except tf.errors.DeadlineExceededError:
        raise ClusterError(
            f"{who}: not every worker of TF_CONFIG's cluster connected within "
            f"--peer_timeout={peer_timeout:g} s; start the same command on each of the "
            f"{cluster.num_workers} tasks it lists, each with its own task in TF_CONFIG, "
            "and check that their addresses are reachable from here") from None
    except tf.errors.OpError as error:
        raise ClusterError(f"{who} cannot join the cluster ({tf_words(error)}); is its "
                           "port in use by another process?") from None
    except RuntimeError as error:  # collectives configured after TensorFlow started
        raise ConfigError(f"--strategy=multi_worker must start before TensorFlow runs "
                          f"anything in this process ({tf_words(error)})") from None
    logging.info("%s joined a cluster of %d workers", who, cluster.num_workers)
    return strategy


def _bound_registration(cluster, peer_timeout):
    """Configures TensorFlow's coordination service as MultiWorkerMirroredStrategy would
    (a standalone service led by the chief, over the chief and worker jobs), with the
    registration of every task a barrier of `peer_timeout` seconds; the strategy then
    keeps this configuration."""
    proto = collective_all_reduce_strategy.coordination_config_pb2
    leader = "chief" if "chief" in cluster.jobs else "worker"
    context = eager_context.context()
    context.configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{leader}/replica:0/task:0",
        cluster_register_timeout_in_ms=int(peer_timeout * 1000),
        coordinated_jobs=[proto.CoordinatedJob(name=job, num_tasks=len(addresses))
                          for job, addresses in cluster.jobs.items()])
    config = context.coordination_service
    if "cluster_register_with_barrier" in config.DESCRIPTOR.fields_by_name:
        config.cluster_register_with_barrier = True
    else:  # older TensorFlow: its own wait for peers applies
        logging.warning("this TensorFlow cannot bound the wait for peers; --peer_timeout "
                        "is not applied")


def is_chief(strategy):
    """Whether this process keeps the run's outputs (a single process always does)."""
    return bool(strategy.extended.should_checkpoint)


@dataclasses.dataclass(frozen=True)
class WorkerFolders:
    """Where one worker of a run reads and writes.

    Attributes:
      run_dir: the run folder (--model_dir): every worker restores from it, and only the
        chief writes into it.
      write_dir: where this worker saves checkpoints and the export: `run_dir` for the
        chief, else `run_dir/workertemp_<task index>`.
      task: "" for the chief, else "<job>_<index>" (e.g. "worker_1").
    """

    run_dir: str
    write_dir: str
    task: str = ""

    @property
    def is_chief(self):
        return not self.task

    def lock_file(self, name):
        """The lock file `name` of this worker's role: the run folder's own for the chief,
        one per task for the others, who share the folder."""
        return os.path.join(self.run_dir, name if self.is_chief else f"{name}.{self.task}")

    def discard(self):
        """Deletes what a worker other than the chief has saved (TensorFlow's recipe)."""
        if not self.is_chief:
            shutil.rmtree(self.write_dir, ignore_errors=True)


def worker_folders(model_dir, strategy):
    """This process's `WorkerFolders` in the run folder `model_dir` under `strategy`."""
    if is_chief(strategy):
        return WorkerFolders(run_dir=model_dir, write_dir=model_dir)
    resolver = strategy.cluster_resolver
    return WorkerFolders(
        run_dir=model_dir,
        write_dir=os.path.join(model_dir, f"{WORKER_FOLDER_PREFIX}{resolver.task_id}"),
        task=f"{resolver.task_type}_{resolver.task_id}")


@contextlib.contextmanager
def peers_reported(strategy, model_dir):
    """Turns a lost peer into one `ClusterError` line (multi-worker runs only).

    TensorFlow's coordination service aborts every collective of every worker once a peer
    stops sending heartbeats (or cannot be reached); nothing is saved then, since the
    aborted step may have left this worker half-updated: the last checkpoint is the state
    every worker resumes from.
    """
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.AbortedError) as error:
        if not worker_agreement.spans_processes(strategy):
            raise
        raise ClusterError(
            f"the cluster lost a worker ({_lost_peers(error)}); the last checkpoint in "
            f"{model_dir} is kept: start every worker again with the same command to "
            "resume") from None


def _lost_peers(error):
    """Which peers TensorFlow names as gone, else its own words."""
    _, found, listed = error.message.partition("unhealthy")
    tasks = sorted(set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", listed)))
    if found and tasks:
        names = ", ".join(f"{job} {task}" for job, task in tasks)
        return f"{names} stopped sending heartbeats"
    return tf_words(error)


def tf_words(error):
    """The line of a TensorFlow error that says what happened (its message opens with
    where a graph failed)."""
    message = getattr(error, "message", None) or str(error)
    aborted = re.search(r"aborted by: ([^\n]+)", message)
    if aborted:
        return aborted.group(1).strip()[:300]
    lines = [line.strip() for line in message.splitlines() if line.strip()
             and not line.startswith(("Graph execution error", "Detected at node", "File "))]
    return (lines[0] if lines else type(error).__name__)[:300]
