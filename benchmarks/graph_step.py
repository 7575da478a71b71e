"""One graph infomax step with TensorFlow's COO product against our CSR product.

    python benchmarks/graph_step.py --dataset=diginetica --data_dir=../shared/data

Builds the dataset's `A_norm` and two identical `GraphInfomax` steps, one traced with
`tf.sparse.sparse_dense_matmul` and one with `mtd_tf.sparse_matmul.sparse_dense_matmul`,
then times them alternately, so a burst of CPU stolen by neighbours slows both alike.
Prints one JSON line: median milliseconds per step of each and their ratio.
"""

import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mtd_tf import sparse_matmul  # noqa: E402
from mtd_tf.data import registry  # noqa: E402
from mtd_tf.layers import graph_attention  # noqa: E402
from mtd_tf.layers import sparse_gcn  # noqa: E402
from mtd_tf.models import graph_infomax  # noqa: E402
from mtd_tf.models.graph_infomax import GraphInfomax  # noqa: E402
from mtd_tf.training import graph_step  # noqa: E402
from mtd_tf.training.config import TrainConfig  # noqa: E402
from mtd_tf.training.fused_adam import FusedAdam  # noqa: E402
from mtd_tf.training.inputs import build_inputs  # noqa: E402

cli.define_data_flags()
flags.DEFINE_enum("encoder", "gcn", graph_infomax.ENCODERS, "Graph encoder to time.")
flags.DEFINE_integer("embedding_dim", 100, "d.")
flags.DEFINE_integer("steps", 10, "Timed steps of each product (after one that traces).")
FLAGS = flags.FLAGS

PRODUCTS = {"coo": tf.sparse.sparse_dense_matmul, "csr": sparse_matmul.sparse_dense_matmul}


def make_step(product, num_items, dim):
    """A graph step traced now with `product` in both encoders' sparse-times-dense slot."""
    # The layers look the function up in their own module at trace time, so swapping the
    # module attribute around the first call fixes which product the traced step uses.
    sparse_gcn.sparse_dense_matmul = graph_attention.sparse_dense_matmul = product
    infomax = GraphInfomax(encoder=FLAGS.encoder)
    infomax.build((num_items, dim))
    return graph_step.make_graph_train_step(infomax, FusedAdam(learning_rate=1e-3))


def main(argv):
    del argv
    config = TrainConfig.from_settings(dataset=registry.canonical_name(FLAGS.dataset),
                                       data_dir=registry.resolve_data_dir(FLAGS.data_dir))
    inputs = build_inputs(config)
    num_items, dim = inputs.num_items, FLAGS.embedding_dim
    features = tf.random.normal([num_items, dim], stddev=0.05, seed=0)
    permutation = np.random.default_rng(0).permutation(num_items).astype(np.int32)
    steps = {}
    for name, product in PRODUCTS.items():
        steps[name] = make_step(product, num_items, dim)
        float(steps[name](features, inputs.adjacency, permutation)["loss/co"])  # traces
    sparse_gcn.sparse_dense_matmul = graph_attention.sparse_dense_matmul = PRODUCTS["csr"]
    milliseconds = {name: [] for name in steps}
    for _ in range(FLAGS.steps):
        for name, step in steps.items():
            start = time.perf_counter()
            float(step(features, inputs.adjacency, permutation)["loss/co"])
            milliseconds[name].append(1e3 * (time.perf_counter() - start))
    medians = {name: float(np.median(times)) for name, times in milliseconds.items()}
    print(json.dumps({
        "dataset": inputs.dataset_name,
        "encoder": FLAGS.encoder,
        "num_items": num_items,
        "nonzeros": int(inputs.adjacency.values.shape[0]),
        "coo_step_ms": round(medians["coo"], 1),
        "csr_step_ms": round(medians["csr"], 1),
        "speedup": round(medians["coo"] / medians["csr"], 2),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "devices": [d.device_type for d in tf.config.list_physical_devices()],
        "date": time.strftime("%Y-%m-%d"),
    }))


if __name__ == "__main__":
    cli.run_app(main)
