"""How do training and evaluation scale with the catalogue size M?

For each M, a synthetic dataset of M items (`synthetic_m<M>_s<SESSIONS>`) is drawn once;
then for each loss a child process builds the model without the graph module (`lo`: the
session step is what grows with M), trains --batches batches (the first two are warm-up,
not timed) and ranks --eval_batches batches of test pairs against all M items, a slice of
the catalogue at a time (`serving.retrieval`). It reports training samples/s, evaluation
pairs/s and its peak resident memory (getrusage). Targets: with sampled softmax, samples/s
at M = 10^6 within 1.5x of M = 10^4; evaluation cost no worse than linear in M; no run
over 8 GiB.

    python benchmarks/catalog_scale.py [--items=10000,100000,1000000]
        [--losses=full_softmax,sampled_softmax] [--optimizers=adam,sparse_adam]
        [--num_negatives=1024] [--data_dir=DIR]

Prints one JSON line per M and loss, with the command, the machine and the date, then the
ratios the targets are about.
"""

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

flags.DEFINE_list("items", ["10000", "100000", "1000000"], "Catalogue sizes M.")
flags.DEFINE_integer("sessions", 200000, "Sessions drawn per synthetic dataset.")
flags.DEFINE_list("losses", ["full_softmax", "sampled_softmax"], "Losses to time.")
flags.DEFINE_integer("num_negatives", 1024, "Negatives of the sampled softmax.")
flags.DEFINE_list("optimizers", ["adam", "sparse_adam"],
                  "Optimizers timed with the sampled softmax (--optimizer of main.py; the full "
                  "softmax uses every row, so it is timed with adam only).")
flags.DEFINE_integer("batch_size", 256, "Training and evaluation batch size.")
flags.DEFINE_integer("embedding_dim", 100, "Embedding size d.")
flags.DEFINE_integer("batches", 62, "Training batches per run (the first two not timed; ten timed "
                     "batches were too few on a shared machine).")
flags.DEFINE_integer("eval_batches", 10, "Evaluation batches per run (the first not timed).")
flags.DEFINE_string("data_dir", "/tmp/mtd_catalog_scale",
                    "Where the synthetic datasets are drawn (reused when present).")
flags.DEFINE_string("child", None, "Internal: M:LOSS to time in this process.")
FLAGS = flags.FLAGS

TARGET_SAMPLED_RATIO = 1.5
TARGET_RSS_GIB = 8.0


def _timed_rate(step, batches, warmup):
    """Items per second of `step(batch) -> count` over `batches`, after `warmup` of them."""
    counted, start = 0, None
    for index, batch in enumerate(batches):
        if index == warmup:
            start = time.perf_counter()
        count = step(batch)
        if index >= warmup:
            counted += count
    return counted / (time.perf_counter() - start)


def time_one(num_items, loss, optimizer_name):
    """{train_samples_per_s, eval_pairs_per_s, peak_rss_gib} of one M, loss and optimizer."""
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from mtd_tf import sampled_softmax  # pylint: disable=import-outside-toplevel
    from mtd_tf.data import augment  # pylint: disable=import-outside-toplevel
    from mtd_tf.data import pipeline  # pylint: disable=import-outside-toplevel
    from mtd_tf.data import registry  # pylint: disable=import-outside-toplevel
    from mtd_tf.models.mtd_config import MTDConfig  # pylint: disable=import-outside-toplevel
    from mtd_tf.training import session_step  # pylint: disable=import-outside-toplevel
    from mtd_tf.training import row_sparse_adam  # pylint: disable=import-outside-toplevel

    dataset = registry.load_dataset(f"synthetic_m{num_items}_s{FLAGS.sessions}", FLAGS.data_dir)
    keras.utils.set_random_seed(0)
    model = MTDConfig(variant="lo", embedding_dim=FLAGS.embedding_dim).build(dataset.num_items)
    optimizer = row_sparse_adam.session_optimizer(optimizer_name, model, 1e-3, 1e-6)
    optimizer.build(model.trainable_variables)
    train = augment.augment_prefixes(dataset.train, 1, model.max_len)
    test = augment.pad_prefixes(dataset.test_prefixes, dataset.test_targets, model.max_len)
    popularity = tf.math.bincount(dataset.train.values, minlength=dataset.num_items + 1)[1:]
    strategy = tf.distribute.get_strategy()
    train_batches = list(pipeline.make_dataset(train, FLAGS.batch_size, shuffle=True)
                         .take(FLAGS.batches))
    spec = (tf.TensorSpec([None, None], train_batches[0][0].dtype),
            tf.TensorSpec([None], train_batches[0][1].dtype))
    sampler = (sampled_softmax.PopularitySampler(popularity.numpy(), FLAGS.num_negatives)
               if loss == "sampled_softmax" else None)
    train_step = session_step.make_session_train_step(
        model, optimizer, strategy, 1e-6, spec, sampler=sampler)
    rank_step = session_step.make_rank_step(model, strategy, spec, popularity.numpy())

    def train_one(batch):
        float(train_step(batch)["loss/in"])  # waits for the step
        return int(batch[1].shape[0])

    def rank_one(batch):
        return int(rank_step(batch).shape[0])

    eval_batches = list(pipeline.make_dataset(test, FLAGS.batch_size, shuffle=False)
                        .take(FLAGS.eval_batches))
    return {"catalogue_items": dataset.num_items,
            "train_samples_per_s": _timed_rate(train_one, train_batches, warmup=2),
            "eval_pairs_per_s": _timed_rate(rank_one, eval_batches, warmup=1),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main(argv):
    del argv
    if FLAGS.child:
        items, loss, optimizer = FLAGS.child.split(":")
        print(json.dumps(time_one(int(items), loss, optimizer)))
        return
    stamp = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv),
             "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    runs = [(loss, optimizer) for loss in FLAGS.losses
            for optimizer in (FLAGS.optimizers if loss == "sampled_softmax" else ["adam"])]
    rows = {}
    for items in FLAGS.items:
        for loss, optimizer in runs:
            args = [a for a in sys.argv[1:] if not a.startswith("--child")]
            done = subprocess.run([sys.executable, os.path.abspath(__file__), *args,
                                   f"--child={items}:{loss}:{optimizer}"], capture_output=True,
                                  text=True, check=False)
            if done.returncode:
                row = {"error": done.stderr.strip().splitlines()[-1:]}
            else:
                row = json.loads(done.stdout.strip().splitlines()[-1])
            rows[(int(items), loss, optimizer)] = row
            print(json.dumps({"items": int(items), "loss": loss, "optimizer": optimizer, **row,
                              **stamp}), flush=True)
    sizes = sorted({items for items, _, _ in rows})
    for loss, optimizer in runs:
        first = rows.get((sizes[0], loss, optimizer), {})
        last = rows.get((sizes[-1], loss, optimizer), {})
        if "train_samples_per_s" in first and "train_samples_per_s" in last:
            print(json.dumps({
                "loss": loss, "optimizer": optimizer, "items": [sizes[0], sizes[-1]],
                "train_slowdown": first["train_samples_per_s"] / last["train_samples_per_s"],
                "eval_cost_ratio": first["eval_pairs_per_s"] / last["eval_pairs_per_s"],
                "items_ratio": sizes[-1] / sizes[0],
                "target_sampled_slowdown": TARGET_SAMPLED_RATIO,
                "target_rss_gib": TARGET_RSS_GIB}))


if __name__ == "__main__":
    app.run(main)
