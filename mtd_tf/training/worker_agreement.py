"""What the workers of a multi-worker run must agree on, checked or made so with
TensorFlow's own collectives.

Under `tf.distribute.MultiWorkerMirroredStrategy` every worker is a process running the
same loop, and each decision that leads to a collective (whether to save now, when the
graph phase stops, which epoch a restart resumes) must come out the same on all of them:
otherwise one worker waits in an all-reduce that the others never start, or they train
different models under one name. The losses and metrics the loop decides on are already
reduced over the replicas; what is left is agreed here. Within one process (the default
and the mirrored strategies) the replicas share the host, so nothing is exchanged.
"""

import functools
import hashlib

import numpy as np
import tensorflow as tf

from mtd_tf.errors import ConfigError


def spans_processes(strategy):
    """Whether `strategy`'s replicas live in several processes (a multi-worker run)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def concatenate_replicas(strategy, values):
    """Each of `values` (per-replica results of a step, or a tensor each worker holds)
    joined along its first axis in replica order, over every worker of a multi-worker run
    (worker by worker, the chief's first); a tuple of numpy arrays."""
    if not spans_processes(strategy):
        return tuple(np.concatenate([np.asarray(part) for part in
                                     strategy.experimental_local_results(value)])
                     for value in values)
    gather, _ = _collectives(strategy)
    return tuple(np.asarray(strategy.experimental_local_results(value)[0])
                 for value in gather(tuple(values)))


def gather_from_replicas(strategy, values):
    """int64 `[replicas, k]`: the host integers `values` (`[k]`) of every replica."""
    row = tf.constant(np.asarray(values, np.int64).reshape(1, -1))  # [1, k]
    return concatenate_replicas(strategy, (row,))[0]


def any_worker(strategy, flag):
    """Whether `flag` is true on any worker: the time-based choices of one worker (a
    mid-epoch checkpoint is due) become every worker's."""
    if not spans_processes(strategy):
        return bool(flag)
    return bool(gather_from_replicas(strategy, [int(bool(flag))]).any())


def check_same(strategy, values, what, remedy=""):
    """Raises `ConfigError` unless every worker holds the same host integers `values`.

    A collective, so it is also a barrier: no worker returns before every worker called
    it (a worker reading what the chief saved waits here for the save to end).

    Args:
      strategy: the run's strategy (nothing is exchanged within one process).
      values: int `[k]`, e.g. a digest of the settings, or the epoch a restart resumes.
      what: what the values stand for, for the message.
      remedy: what to do when they differ, for the message.
    """
    if not spans_processes(strategy):
        return
    rows = gather_from_replicas(strategy, values)  # [replicas, k]
    differing = [index for index, row in enumerate(rows) if not np.array_equal(row, rows[0])]
    if differing:
        raise ConfigError(
            f"the workers do not have the same {what} (replica(s) "
            f"{', '.join(map(str, differing))} differ from the chief's, replica 0)"
            + (f": {remedy}" if remedy else ""))


def digest_values(text, words=4):
    """`words` integers below 2^56 (int64-safe) from the SHA-256 of `text`, for
    `check_same`."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [int.from_bytes(digest[8 * i:8 * i + 7], "big") for i in range(words)]


def replica_mean(strategy, tensor):
    """The mean of `tensor` over the replicas of a multi-worker run (`tensor` itself within
    one process): each worker computes the graph phase's `H` alone, and the same kernels
    on other hardware may differ in the last bits; averaged, every worker writes the same
    table back."""
    if not spans_processes(strategy):
        return tensor
    _, mean = _collectives(strategy)
    return strategy.experimental_local_results(mean(tensor))[0]


@functools.lru_cache(maxsize=None)
def _collectives(strategy):
    """`strategy`'s traced all-gather and mean all-reduce, built once per strategy: a
    `tf.function` built per call would trace again every time."""

    def replica_gather(*local):
        context = tf.distribute.get_replica_context()
        # tf.identity: a collective on the function's own input finds no device to
        # reduce to ("destinations can not be empty").
        return tuple(context.all_gather(tf.identity(part), axis=0) for part in local)

    def replica_mean(local):
        return tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.MEAN, tf.identity(local))

    gather = tf.function(lambda values: strategy.run(replica_gather, args=values),
                         reduce_retracing=True)
    mean = tf.function(lambda value: strategy.run(replica_mean, args=(value,)),
                       reduce_retracing=True)
    return gather, mean
