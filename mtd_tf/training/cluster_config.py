"""The cluster of a multi-worker run, read from the `TF_CONFIG` environment variable and
checked before TensorFlow sees it.

`tf.distribute.MultiWorkerMirroredStrategy` reads `TF_CONFIG` itself, but a malformed one
fails deep inside TensorFlow (a traceback, or a worker that waits forever for a peer that
was never listed), so every mistake a person typing it can make is one `ConfigError` line
here. The format is TensorFlow's:

    {"cluster": {"worker": ["host1:12345", "host2:12345"]},
     "task": {"type": "worker", "index": 0}}

with an optional `"chief"` job of one address. The chief is the `"chief"` task when the
cluster has one, else worker 0 (TensorFlow's rule); it alone keeps the run's outputs.
"""

import dataclasses
import json
import os
import socket

from mtd_tf.errors import ConfigError

ENVIRONMENT_VARIABLE = "TF_CONFIG"
# The jobs MultiWorkerMirroredStrategy trains with; "ps" belongs to parameter-server
# training and "evaluator" to a side-car evaluation task, neither of which this job runs.
JOBS = ("chief", "worker")
EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
           '"task": {"type": "worker", "index": 0}}')


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A checked cluster: `jobs` maps "chief"/"worker" to their "host:port" addresses;
    this process is task `index` of job `task_type`."""

    jobs: dict
    task_type: str
    index: int

    @property
    def num_workers(self):
        return sum(len(addresses) for addresses in self.jobs.values())

    @property
    def address(self):
        """This task's own "host:port"."""
        return self.jobs[self.task_type][self.index]


def read_tf_config(environ=None):
    """The cluster of `TF_CONFIG` in `environ` (default: this process's environment).

    Raises:
      ConfigError: TF_CONFIG is unset, or not the JSON of a cluster this job can train on
        (the message says which part is wrong).
    """
    text = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE, "")
    if not text.strip():
        raise ConfigError(
            f"--strategy=multi_worker needs the {ENVIRONMENT_VARIABLE} environment variable, "
            f"the same cluster on every worker and each its own task, e.g. "
            f"{ENVIRONMENT_VARIABLE}='{EXAMPLE}'")
    return parse_tf_config(text)


def parse_tf_config(text):
    """The `Cluster` that TF_CONFIG's `text` describes; `ConfigError` naming what is wrong."""
    value, not_json = _loads(text)
    if not_json:
        _fail(f"is not JSON ({not_json})")
    if not isinstance(value, dict):
        _fail(f"must be a JSON object, got {type(value).__name__}")
    for key in ("cluster", "task"):
        if not isinstance(value.get(key), dict):
            _fail(f"needs a \"{key}\" object" + (
                f", got {value[key]!r}" if key in value else ""))
    jobs = _checked_jobs(value["cluster"])
    task = value["task"]
    task_type, index = task.get("type"), task.get("index")
    if not isinstance(task_type, str) or task_type not in jobs:
        _fail(f"task type {task_type!r} is not a job of its cluster ({', '.join(jobs)})")
    if not isinstance(index, int) or isinstance(index, bool):
        _fail(f"task index must be an integer, got {index!r}")
    if not 0 <= index < len(jobs[task_type]):
        _fail(f"task index {index} is out of range: job {task_type!r} has "
              f"{len(jobs[task_type])} address(es), so 0 to {len(jobs[task_type]) - 1}")
    return Cluster(jobs=jobs, task_type=task_type, index=index)


def _loads(text):
    """(the JSON value of `text`, None) or (None, why it is not JSON)."""
    try:
        return json.loads(text), None
    except ValueError as error:
        return None, str(error)


def _checked_jobs(cluster):
    """{job: [address, ...]} of TF_CONFIG's "cluster", every address "host:port" once."""
    unknown = sorted(set(cluster) - set(JOBS))
    if unknown:
        _fail(f"cluster job {unknown[0]!r} is not one --strategy=multi_worker runs "
              f"(it runs {' and '.join(JOBS)} tasks)")
    if not cluster.get("worker") and not cluster.get("chief"):
        _fail("cluster lists no \"worker\" (or \"chief\") addresses")
    jobs, seen = {}, set()
    for job in JOBS:
        if job not in cluster:
            continue
        addresses = cluster[job]
        if not isinstance(addresses, list) or not addresses:
            _fail(f"cluster job {job!r} must be a non-empty list of \"host:port\" "
                  f"addresses, got {addresses!r}")
        if job == "chief" and len(addresses) != 1:
            _fail(f"cluster job 'chief' must have exactly one address, got {len(addresses)}")
        for address in addresses:
            _check_address(job, address)
            if address in seen:
                _fail(f"address {address!r} is listed twice: each task needs its own port")
            seen.add(address)
        jobs[job] = list(addresses)
    return jobs


def _check_address(job, address):
    host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        _fail(f"address {address!r} of job {job!r} is not \"host:port\" with a port "
              "from 1 to 65535")


def _fail(problem):
    raise ConfigError(f"{ENVIRONMENT_VARIABLE} {problem}; expected e.g. {EXAMPLE}")


def loopback_tf_configs(num_workers):
    """One `TF_CONFIG` text per worker of a cluster on 127.0.0.1, on ports free right now:
    the benchmark's and the tests' clusters on one machine."""
    sockets = [socket.socket() for _ in range(num_workers)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        addresses = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    return [json.dumps({"cluster": {"worker": addresses},
                        "task": {"type": "worker", "index": index}})
            for index in range(num_workers)]
