"""Train, evaluate and export MTD: `python mtd_tf/main.py --dataset=yoochoose`.

Only parses flags and calls `mtd_tf.training.loop`; every flag is documented in --helpfull.
"""

import os
import sys

if __package__ in (None, ""):
    # Run as a script (python mtd_tf/main.py): make the package importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from mtd_tf import cli  # noqa: E402
from mtd_tf.data import registry  # noqa: E402
from mtd_tf.model import VARIANTS  # noqa: E402
from mtd_tf.training.config import SCORING_PRECISIONS  # noqa: E402
from mtd_tf.training.config import WRITEBACK_MODES  # noqa: E402
from mtd_tf.training import loop  # noqa: E402
from mtd_tf.training.config import TrainConfig  # noqa: E402

cli.define_data_flags()
flags.DEFINE_string("model_dir", None,
                    "Run folder: checkpoints/, best/, logs/ (TensorBoard), export/ "
                    "(SavedModel), metrics.json. Default: runs/<dataset>_<variant>.")
flags.DEFINE_enum("variant", "mtd", VARIANTS,
                  "mtd: full model; lo: no graph module; va: vanilla attention over item "
                  "embeddings; at: va + positional decay; ga: graph attention encoder.")
flags.DEFINE_integer("epochs", 10, "Maximum epochs (graph step + f session passes each).")
flags.DEFINE_integer("frequency", None,
                     "Session passes per epoch (the paper's f). Default per dataset: "
                     "yoochoose 1, diginetica 4, retailrocket 6, others 1.")
flags.DEFINE_integer("graph_steps", 1000,
                     "Maximum Adam steps of the graph infomax phase per epoch (0 = none).")
flags.DEFINE_integer("graph_patience", 10, "Early-stopping patience of the graph phase on L_co.")
flags.DEFINE_enum("graph_writeback", "replace", WRITEBACK_MODES,
                  "How the GCN output enters the item table: replace (paper) or rescale to "
                  "the table's mean row norm first.")
flags.DEFINE_float("graph_mix", 1.0,
                   "Share of the graph output in the item table after write-back: "
                   "E <- (1 - mix) E + mix H (1 = overwrite, as the paper).")
flags.DEFINE_integer("gcn_layers", 1, "GCN layers of the graph encoder.")
flags.DEFINE_integer("batch_size", 512, "Training and evaluation batch size.")
flags.DEFINE_integer("embedding_dim", 100, "Embedding size d.")
flags.DEFINE_integer("num_blocks", 1, "Stacked self-attention blocks.")
flags.DEFINE_integer("num_heads", 1, "Attention heads per block.")
flags.DEFINE_float("lr", 1e-3, "Adam learning rate (both steps).")
flags.DEFINE_float("lr_decay", 1.0,
                   "Session-step learning rate factor every --lr_decay_every epochs "
                   "(1 = constant, as the paper).")
flags.DEFINE_integer("lr_decay_every", 3, "Epochs between learning-rate decays.")
flags.DEFINE_float("l2", 1e-6, "L2 weight lambda2.")
flags.DEFINE_float("dropout", 0.2, "Dropout rate.")
flags.DEFINE_float("decay", 0.75, "Positional decay lambda (eq. 4).")
flags.DEFINE_integer("max_len", 50, "Sessions keep their last max_len items.")
flags.DEFINE_integer("patience", 3, "Early stopping: epochs without a better valid P@20.")
flags.DEFINE_integer("export_top_k", 20, "K of the exported serving signature.")
flags.DEFINE_integer("max_train_batches", None,
                     "Cap on batches per session pass (smoke runs and benchmarks).")
flags.DEFINE_enum("scoring_precision", "float32", SCORING_PRECISIONS,
                  "Dtype of the training step's full-softmax matmuls; bfloat16 was faster on "
                  "this project's AMX CPU, GPUs are unmeasured (evaluation always scores in "
                  "float32).")
flags.DEFINE_float("score_scale", 0.0,
                   "0: scores are dot products (paper); s > 0: s times the cosine of the "
                   "session and item vectors (normalised scores with temperature 1/s).")
flags.DEFINE_integer("refit_epochs", 0,
                     "0: hold out the validation split and early-stop on it (SPEC). K > 0: "
                     "train on every training session for exactly K epochs (take K from a "
                     "validated run's best epoch), no validation, and test the last epoch.")
FLAGS = flags.FLAGS


def config_from_flags():
    dataset = registry.canonical_name(FLAGS.dataset)
    return TrainConfig(
        dataset=dataset,
        data_dir=registry.resolve_data_dir(FLAGS.data_dir),
        model_dir=FLAGS.model_dir or os.path.join("runs", f"{dataset}_{FLAGS.variant}"),
        variant=FLAGS.variant, epochs=FLAGS.epochs, frequency=FLAGS.frequency,
        graph_steps=FLAGS.graph_steps, graph_patience=FLAGS.graph_patience,
        graph_writeback=FLAGS.graph_writeback,
        graph_mix=FLAGS.graph_mix, gcn_layers=FLAGS.gcn_layers,
        batch_size=FLAGS.batch_size, embedding_dim=FLAGS.embedding_dim,
        num_blocks=FLAGS.num_blocks, num_heads=FLAGS.num_heads, lr=FLAGS.lr, l2=FLAGS.l2,
        dropout=FLAGS.dropout, decay=FLAGS.decay, max_len=FLAGS.max_len,
        patience=FLAGS.patience, seed=FLAGS.seed, export_top_k=FLAGS.export_top_k,
        max_train_batches=FLAGS.max_train_batches,
        scoring_precision=FLAGS.scoring_precision, score_scale=FLAGS.score_scale,
        lr_decay=FLAGS.lr_decay, lr_decay_every=FLAGS.lr_decay_every,
        refit_epochs=FLAGS.refit_epochs)


def main(argv):
    del argv
    report = loop.train_and_evaluate(config_from_flags())
    test = report["test"]
    print(f"{report['dataset']} {report['variant']}: test P@20 {test['P@20']:.2f} "
          f"MRR@20 {test['MRR@20']:.2f} (best epoch {report['best_epoch']} of "
          f"{report['epochs_run']}); metrics in {os.path.join(report['flags']['model_dir'], 'metrics.json')}")


def run():
    cli.run_app(main)


if __name__ == "__main__":
    run()
