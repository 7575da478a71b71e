"""Samples per second of the session step for clusters of 1 and 2 workers of
--strategy=multi_worker on loopback, and the share of a step spent synchronising.

    python benchmarks/multi_worker.py --dataset=synthetic_m2000_s20000 --batches=20

The script starts its own workers (this script again, with --worker_index and TF_CONFIG
on free 127.0.0.1 ports), as many as each cluster has. Every worker builds the job's
`Trainer` under MultiWorkerMirroredStrategy and times --batches steady steps of the
global batch (--batch_size, dealt out between the workers); after each, it times a step
without synchronisation: its own share of the batch on a model of its own under the
default strategy, no all-reduce. So

    sync_share = 1 - unsynchronised step / synchronised step

is the part of a step spent in all-reduce (and in waiting for the slower worker). The
two kinds of step alternate, and the workers start each pair together (a barrier that is
not timed), so both see the same machine: on a shared one the CPU left to a process
changes from minute to minute. On one machine the workers also share its cores, so two
cannot train faster than one; across machines they would.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mtd_tf import losses  # noqa: E402
from mtd_tf.data import pipeline  # noqa: E402
from mtd_tf.data import registry  # noqa: E402
from mtd_tf.training import cluster_config  # noqa: E402
from mtd_tf.training import session_step  # noqa: E402
from mtd_tf.training import strategies  # noqa: E402
from mtd_tf.training import worker_agreement  # noqa: E402
from mtd_tf.training.config import TrainConfig  # noqa: E402
from mtd_tf.training.fused_adam import FusedAdam  # noqa: E402
from mtd_tf.training.loop import Trainer  # noqa: E402

cli.define_data_flags()
flags.DEFINE_list("workers", ["1", "2"], "Cluster sizes to time, one after the other.")
flags.DEFINE_integer("batch_size", 512, "Global batch size of the session step.")
flags.DEFINE_integer("embedding_dim", 100, "d.")
flags.DEFINE_integer("batches", 20, "Steady steps timed in each phase.")
flags.DEFINE_integer("warmup", 3, "Steps run before timing (the first traces).")
flags.DEFINE_float("peer_timeout", 300.0, "--peer_timeout of the workers.")
flags.DEFINE_integer("worker_index", None, "Internal: run as this worker of TF_CONFIG.")
flags.DEFINE_string("model_dir", None, "Internal: the workers' run folder.")
FLAGS = flags.FLAGS


def config_for(model_dir):
    return TrainConfig.from_settings(
        dataset=registry.canonical_name(FLAGS.dataset),
        data_dir=registry.resolve_data_dir(FLAGS.data_dir), model_dir=model_dir,
        batch_size=FLAGS.batch_size, embedding_dim=FLAGS.embedding_dim, seed=FLAGS.seed,
        strategy="multi_worker", peer_timeout=FLAGS.peer_timeout)


def seconds_of(step, batch):
    """Seconds of one step, its loss read as the training loop reads it."""
    start = time.perf_counter()
    float(step(batch)["loss/in"])
    return time.perf_counter() - start


def run_worker():
    """One worker: synchronised steps under the strategy, then unsynchronised ones."""
    config = config_for(FLAGS.model_dir)
    strategy = strategies.make_strategy("multi_worker", FLAGS.peer_timeout)
    trainer = Trainer(config, strategy=strategy)
    steps = FLAGS.warmup + FLAGS.batches
    dataset = pipeline.make_dataset(trainer.inputs.train, FLAGS.batch_size, shuffle=True,
                                    seed=FLAGS.seed).repeat().take(steps)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    together = strategy.experimental_distribute_dataset(dataset.with_options(options))

    # This worker's share of every global batch, on a model no other worker sees.
    workers = strategy.num_replicas_in_sync
    shares = pipeline.make_dataset(trainer.inputs.train, -(-FLAGS.batch_size // workers),
                                   shuffle=True, seed=FLAGS.seed).repeat().take(steps)
    model = config.model.build(trainer.inputs.num_items)
    optimizer = FusedAdam(learning_rate=config.trainer.lr)
    optimizer.build(model.trainable_variables)
    alone = session_step.make_session_train_step(
        model, optimizer, tf.distribute.get_strategy(), config.trainer.l2,
        shares.element_spec,
        matmul_dtype=losses.MATMUL_DTYPES[config.trainer.scoring_precision])

    synchronised, unsynchronised = [], []
    for index, (batch, share) in enumerate(zip(together, shares)):
        worker_agreement.check_same(strategy, [index], "step")  # start the pair together
        pair = seconds_of(trainer.train_step, batch), seconds_of(alone, share)
        if index >= FLAGS.warmup:
            synchronised.append(pair[0])
            unsynchronised.append(pair[1])
    print(json.dumps({"worker": FLAGS.worker_index,
                      "synchronised_step_seconds": float(np.median(synchronised)),
                      "unsynchronised_step_seconds": float(np.median(unsynchronised))}),
          flush=True)


def time_cluster(num_workers):
    """Starts `num_workers` workers of this script; their figures, summed up."""
    tf_configs = cluster_config.loopback_tf_configs(num_workers)
    with tempfile.TemporaryDirectory() as model_dir:
        arguments = [arg for arg in sys.argv[1:] if not arg.startswith("--workers")]
        processes = []
        try:
            for index, tf_config in enumerate(tf_configs):
                processes.append(subprocess.Popen(  # pylint: disable=consider-using-with
                    [sys.executable, os.path.abspath(__file__), *arguments,
                     f"--worker_index={index}", f"--model_dir={model_dir}"],
                    env=dict(os.environ, TF_CONFIG=tf_config), stdout=subprocess.PIPE,
                    text=True))
            outputs = [process.communicate(timeout=1800)[0] for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
    if any(process.returncode for process in processes):
        raise RuntimeError(f"a worker of the {num_workers}-worker cluster failed")
    figures = [json.loads(text.strip().splitlines()[-1]) for text in outputs]
    synchronised = max(figure["synchronised_step_seconds"] for figure in figures)
    unsynchronised = max(figure["unsynchronised_step_seconds"] for figure in figures)
    return {
        "workers": num_workers,
        "samples_per_second": round(FLAGS.batch_size / synchronised, 1),
        "step_ms": round(1000 * synchronised, 1),
        "unsynchronised_step_ms": round(1000 * unsynchronised, 1),
        "sync_share": round(1.0 - unsynchronised / synchronised, 3),
    }


def main(argv):
    del argv
    if FLAGS.worker_index is not None:
        run_worker()
        return
    # The dataset is made once, before the workers read it (a synthetic one is generated
    # on first use, and two workers must not write it at once).
    dataset = registry.load_dataset(registry.canonical_name(FLAGS.dataset),
                                    registry.resolve_data_dir(FLAGS.data_dir), seed=FLAGS.seed)
    load_before = os.getloadavg()[0]
    clusters = [time_cluster(int(count)) for count in FLAGS.workers]
    print(json.dumps({
        "dataset": dataset.name,
        "num_items": dataset.num_items,
        "global_batch": FLAGS.batch_size,
        "embedding_dim": FLAGS.embedding_dim,
        "batches_timed": FLAGS.batches,
        "clusters": clusters,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }))


if __name__ == "__main__":
    cli.run_app(main)
