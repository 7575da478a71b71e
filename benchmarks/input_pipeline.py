"""Is the input pipeline ever the bottleneck? Pipeline throughput against a model floor.

Measures, in one run on one machine:
  - augmentation time (sessions -> padded samples);
  - pipeline samples/s: building and iterating one full shuffled epoch of
    `make_dataset` (batch 512), the median of three epochs after a warm-up epoch;
  - floor samples/s: a `tf.function` training step doing only the full-softmax scoring
    every MTD variant ends with (q [512, 100] @ E[M, 100]^T, sparse softmax
    cross-entropy, gradients wrt q and E, Adam update), M = the dataset's num_items.
The real model does this plus the session encoder and the graph step, so it is slower
than the floor and pipeline/floor understates the real headroom. Target: ratio >= 20, so
the input never bounds training.

  PYTHONPATH=. python benchmarks/input_pipeline.py --dataset=diginetica --data_dir=../shared/data

Prints one JSON line with the figures at the end.
"""

import json
import time

from mtd_tf import cli  # (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mtd_tf.data import augment  # noqa: E402
from mtd_tf.data import pipeline  # noqa: E402
from mtd_tf.data import registry  # noqa: E402

flags.DEFINE_integer("batch_size", 512, "Batch size for both measurements.")
flags.DEFINE_integer("embedding_dim", 100, "d of the floor's embeddings.")
flags.DEFINE_integer("floor_steps", 20, "Timed floor steps (after 3 warm-up steps).")
FLAGS = flags.FLAGS
cli.define_data_flags()


def pipeline_samples_per_second(samples, batch_size, seed, timed_epochs=3):
    """Median over epochs 1..3 (build + iterate) after warm-up epoch 0; (rate, padding)."""
    seconds = []
    for epoch in range(timed_epochs + 1):
        start = time.perf_counter()
        cells = 0
        for item_ids, _ in pipeline.make_dataset(samples, batch_size, True, seed, epoch):
            cells += item_ids.shape[0] * item_ids.shape[1]
        seconds.append(time.perf_counter() - start)
    padding = 1.0 - samples.lengths.sum() / cells
    return len(samples) / float(np.median(seconds[1:])), padding


def floor_samples_per_second(num_items, batch_size, embedding_dim, steps, seed):
    """Samples/s of the full-softmax scoring step alone (see the module docstring)."""
    rng = np.random.default_rng(seed)
    query = tf.Variable(rng.normal(size=(batch_size, embedding_dim)).astype(np.float32))
    item_embeddings = tf.Variable(
        rng.normal(scale=0.1, size=(num_items, embedding_dim)).astype(np.float32))
    variables = [query, item_embeddings]
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)
    # Targets are ids 1..M; column j of the scores is item j + 1.
    target_batches = [tf.constant(rng.integers(0, num_items, size=batch_size), tf.int32)
                      for _ in range(steps)]

    @tf.function(input_signature=[tf.TensorSpec([batch_size], tf.int32)])
    def train_step(target_columns):
        with tf.GradientTape() as tape:
            scores = tf.matmul(query, item_embeddings, transpose_b=True)  # [B, M]
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=target_columns, logits=scores))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    for targets in target_batches[:3]:
        train_step(targets).numpy()
    start = time.perf_counter()
    for targets in target_batches:
        loss = train_step(targets)
    loss.numpy()  # waits for the last step on asynchronous devices
    return steps * batch_size / (time.perf_counter() - start)


def main(argv):
    del argv
    dataset = registry.load_dataset(
        FLAGS.dataset, registry.resolve_data_dir(FLAGS.data_dir), seed=FLAGS.seed)
    min_prefix_len = registry.dataset_defaults(dataset).min_prefix_len
    start = time.perf_counter()
    samples = augment.augment_prefixes(dataset.train, min_prefix_len)
    augment_seconds = time.perf_counter() - start
    logging.info("augmented %d samples in %.3f s", len(samples), augment_seconds)

    pipeline_rate, padding = pipeline_samples_per_second(samples, FLAGS.batch_size, FLAGS.seed)
    logging.info("pipeline: %.0f samples/s, padding %.1f %%", pipeline_rate, 100 * padding)
    floor_rate = floor_samples_per_second(
        dataset.num_items, FLAGS.batch_size, FLAGS.embedding_dim, FLAGS.floor_steps, FLAGS.seed)
    logging.info("floor (M=%d): %.0f samples/s", dataset.num_items, floor_rate)
    print(json.dumps({
        "dataset": dataset.name,
        "num_samples": len(samples),
        "num_items": dataset.num_items,
        "device": "GPU" if tf.config.list_logical_devices("GPU") else "CPU",
        "augment_seconds": round(augment_seconds, 3),
        "pipeline_samples_per_s": round(pipeline_rate),
        "padding_fraction": round(float(padding), 4),
        "floor_samples_per_s": round(floor_rate),
        "pipeline_over_floor": round(pipeline_rate / floor_rate, 1),
    }))


if __name__ == "__main__":
    cli.run_app(main)
