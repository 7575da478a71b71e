"""Seconds per session-step pass and per graph step, against the full-softmax FLOP floor.

    python benchmarks/epoch_time.py --dataset=yoochoose --data_dir=../shared/data

The floor of one pass is the three full-softmax matmuls per sample (scores q E^T, and the
two gradients), 6 * N * d * M FLOPs, at the float32 throughput of those matmuls on the same
shapes, probed after every timed batch. `ratio = pass seconds / floor seconds`: everything besides those
matmuls (attention, pooling, softmax, Adam, input) should hide under them (target <= 1.5
on a 2-core CPU). With --max_train_batches the pass is timed on that many batches and
scaled to the full pass. `--scoring_precision=bfloat16` times the bfloat16 option against
the same float32 floor.
"""

import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mtd_tf.data import pipeline  # noqa: E402
from mtd_tf.data import registry  # noqa: E402
from mtd_tf.training.config import SCORING_PRECISIONS  # noqa: E402
from mtd_tf.training.config import TrainConfig  # noqa: E402
from mtd_tf.training.loop import Trainer  # noqa: E402

cli.define_data_flags()
flags.DEFINE_integer("batch_size", 512, "Batch size of the session step.")
flags.DEFINE_integer("embedding_dim", 100, "d.")
flags.DEFINE_integer("max_train_batches", None, "Time this many batches and scale up.")
flags.DEFINE_integer("graph_steps", 20, "Graph steps to time (after one warm-up step).")
flags.DEFINE_enum("scoring_precision", "float32", SCORING_PRECISIONS,
                  "Dtype of the training step's full-softmax matmuls (the floor stays float32).")
FLAGS = flags.FLAGS


def make_floor_probe(batch_size, dim, num_items):
    """A callable that runs the three full-softmax matmuls of one batch (float32)."""
    rng = np.random.default_rng(0)
    session = tf.constant(rng.normal(size=(batch_size, dim)), tf.float32)
    table = tf.constant(rng.normal(size=(num_items, dim)), tf.float32)
    grad_scores = tf.constant(rng.normal(size=(batch_size, num_items)), tf.float32)

    @tf.function
    def three_matmuls():
        scores = tf.matmul(session, table, transpose_b=True)  # [B, M]
        grad_session = tf.matmul(grad_scores, table)  # [B, d]
        grad_table = tf.matmul(grad_scores, session, transpose_a=True)  # [M, d]
        return tf.reduce_sum(scores[:, :1]) + tf.reduce_sum(grad_session[:1]) + tf.reduce_sum(grad_table[:1])

    three_matmuls().numpy()
    return lambda: three_matmuls().numpy()


def seconds_of(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def time_session_pass(trainer, floor_probe):
    """Seconds of the pass's batches and of a floor probe run after each of them.

    Interleaving the probe with the batches gives both the same machine: on a shared VM
    the CPU time stolen by neighbours changes from minute to minute, and a floor measured
    before or after the pass swung the ratio by up to 30%.

    Returns:
      (batch seconds [timed], probe seconds [timed], batches in a full pass).
    """
    samples = trainer.inputs.train
    warmup = pipeline.make_dataset(samples, trainer.settings.batch_size, shuffle=True, seed=1)
    for batch in trainer.strategy.experimental_distribute_dataset(warmup.take(2)):
        float(trainer.train_step(batch)["loss/in"])
    full_batches = pipeline.num_batches(samples, trainer.settings.batch_size)
    limit = trainer.settings.max_train_batches
    dataset = pipeline.make_dataset(samples, trainer.settings.batch_size, shuffle=True,
                                    seed=trainer.settings.seed)
    if limit:
        dataset = dataset.take(limit)
    batch_seconds, probe_seconds = [], []
    batches = iter(trainer.strategy.experimental_distribute_dataset(dataset))
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            break
        float(trainer.train_step(batch)["loss/in"])  # as the training loop reads it
        batch_seconds.append(time.perf_counter() - start)
        probe_seconds.append(seconds_of(floor_probe))
    return np.array(batch_seconds), np.array(probe_seconds), full_batches


def time_graph_steps(trainer, steps):
    """Seconds per graph infomax step (after one warm-up step that traces)."""
    features = tf.convert_to_tensor(trainer.model.item_embeddings)
    num_items = int(features.shape[0])
    rng = np.random.default_rng(0)
    trainer.graph_train_step(features, trainer.inputs.adjacency,
                             rng.permutation(num_items).astype(np.int32))
    start = time.perf_counter()
    for _ in range(steps):
        out = trainer.graph_train_step(features, trainer.inputs.adjacency,
                                       rng.permutation(num_items).astype(np.int32))
    float(out["loss/co"])
    return (time.perf_counter() - start) / steps


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as model_dir:
        config = TrainConfig.from_settings(
            dataset=registry.canonical_name(FLAGS.dataset),
            data_dir=registry.resolve_data_dir(FLAGS.data_dir), model_dir=model_dir,
            batch_size=FLAGS.batch_size, embedding_dim=FLAGS.embedding_dim,
            max_train_batches=FLAGS.max_train_batches, seed=FLAGS.seed,
            scoring_precision=FLAGS.scoring_precision)
        trainer = Trainer(config)
        num_samples = len(trainer.inputs.train.targets)
        num_items = trainer.inputs.num_items
        probe = make_floor_probe(config.trainer.batch_size, config.model.embedding_dim, num_items)
        batch_seconds, probe_seconds, full = time_session_pass(trainer, probe)
        graph_seconds = time_graph_steps(trainer, FLAGS.graph_steps)
    pass_seconds = batch_seconds.sum() * full / len(batch_seconds)
    # The floor of a pass: its 6 N d M FLOPs at the probes' throughput. Sums on both sides,
    # so a burst of stolen CPU slows a batch and its neighbouring probe alike.
    throughput = (6.0 * config.trainer.batch_size * config.model.embedding_dim * num_items
                  / np.mean(probe_seconds))
    floor_seconds = 6.0 * num_samples * config.model.embedding_dim * num_items / throughput
    print(json.dumps({
        "dataset": trainer.inputs.dataset_name,
        "train_samples": num_samples,
        "num_items": num_items,
        "scoring_precision": config.trainer.scoring_precision,
        "batches_timed": len(batch_seconds),
        "batches_per_pass": full,
        "pass_seconds": round(float(pass_seconds), 2),
        "graph_step_seconds": round(graph_seconds, 4),
        "matmul_gflops": round(float(throughput) / 1e9, 1),
        "floor_seconds": round(float(floor_seconds), 2),
        "ratio": round(float(pass_seconds / floor_seconds), 3),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "devices": [d.device_type for d in tf.config.list_physical_devices()],
        "date": time.strftime("%Y-%m-%d"),
    }))


if __name__ == "__main__":
    cli.run_app(main)
