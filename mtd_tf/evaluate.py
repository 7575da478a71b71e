"""Evaluates an exported model on a dataset's test split, as a deployment would see it.

`python -m mtd_tf.evaluate --export_dir=DIR --dataset=NAME --data_dir=DIR` prints one JSON
line with P@K, MRR@K and NDCG@K for every K in (5, 10, 20) up to the export's top-K, and each
one's standard error over the test pairs. Ranks come from the served top-K list, so a target
outside it counts as a miss.

With `--baseline_export_dir=OTHER` it also evaluates OTHER on the same pairs and reports,
per metric, the gap (DIR - OTHER) and its paired standard error: both models read the same
pairs, so the gap's noise is that of the per-pair differences, and it tells whether a gap
between two runs is more than test sampling alone would give.
"""

import json

from absl import flags
import numpy as np

from mtd_tf import cli
from mtd_tf import export
from mtd_tf import metrics
from mtd_tf.data import augment
from mtd_tf.data import registry

cli.define_data_flags()
flags.DEFINE_string("export_dir", None, "Folder of the SavedModel written by main.py.")
flags.DEFINE_string("baseline_export_dir", None,
                    "Optional second SavedModel: report the gap to it on the same test pairs "
                    "and the gap's paired standard error.")
flags.DEFINE_integer("batch_size", 1024, "Test pairs per serving call.")
flags.mark_flags_as_required(["export_dir"])
FLAGS = flags.FLAGS

REPORT_KS = (5, 10, 20)


def ranks_from_top_items(top_items, targets):
    """1-based position of each target in its served list; len(list) + 1 when absent."""
    hits = top_items == np.asarray(targets)[:, None]  # [batch, K]
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, top_items.shape[1] + 1)


def served_ranks(recommender, dataset, batch_size):
    """Streams the test pairs through the serving signature.

    Returns:
      (int [num_pairs] rank of each target in its served list, the list's length K).
    """
    longest = max(int(dataset.test_prefixes.lengths.max(initial=0)), 1)
    # Served sessions keep every id: the export itself cuts to its own max_len.
    samples = augment.pad_prefixes(dataset.test_prefixes, dataset.test_targets, longest)
    ranks, top_k = [], None
    for start in range(0, len(samples.targets), batch_size):
        stop = start + batch_size
        top_items, _ = recommender.recommend(samples.item_ids[start:stop])
        top_k = top_items.shape[1]
        ranks.append(ranks_from_top_items(top_items, samples.targets[start:stop]))
    return np.concatenate(ranks), top_k


def report_ks(top_k):
    """The cut-offs a served list of length `top_k` can answer."""
    return tuple(k for k in REPORT_KS if k <= top_k) or (top_k,)


def summarize(label, gains):
    """Means and standard errors of per-pair gains (`metrics.per_pair_gains`).

    Returns:
      {label: {metric: mean, percent}, label + "_standard_error": {metric: points}}.
    """
    means, errors = {}, {}
    for name, values in gains.items():
        means[name] = 100.0 * float(np.mean(values))
        errors[name] = (100.0 * float(np.std(values, ddof=1) / np.sqrt(values.size))
                        if values.size > 1 else 0.0)
    return {label: means, f"{label}_standard_error": errors}


def evaluate_export(recommender, dataset, batch_size):
    """One export's test metrics ("test") and their standard errors ("test_standard_error")."""
    ranks, top_k = served_ranks(recommender, dataset, batch_size)
    return summarize("test", metrics.per_pair_gains(ranks, report_ks(top_k)))


def compare_exports(recommender, baseline, dataset, batch_size):
    """Both exports' metrics on the same test pairs, and their per-metric gap.

    Returns:
      `summarize` of "test", "baseline_test" and "gap" (recommender - baseline, per pair),
      each with its standard error; the gap's is paired, so it shrinks as the two agree.
    """
    ranks, top_k = served_ranks(recommender, dataset, batch_size)
    baseline_ranks, baseline_top_k = served_ranks(baseline, dataset, batch_size)
    ks = report_ks(min(top_k, baseline_top_k))
    gains = metrics.per_pair_gains(ranks, ks)
    baseline_gains = metrics.per_pair_gains(baseline_ranks, ks)
    gaps = {name: gains[name] - baseline_gains[name] for name in gains}
    return {**summarize("test", gains), **summarize("baseline_test", baseline_gains),
            **summarize("gap", gaps)}


def main(argv):
    del argv
    recommender = export.load_export(FLAGS.export_dir)
    baseline = FLAGS.baseline_export_dir and export.load_export(FLAGS.baseline_export_dir)
    dataset = registry.load_dataset(
        FLAGS.dataset, registry.resolve_data_dir(FLAGS.data_dir), seed=FLAGS.seed)
    report = {"dataset": dataset.name, "export_dir": FLAGS.export_dir,
              "test_pairs": len(dataset.test_targets)}
    if baseline:
        report["baseline_export_dir"] = FLAGS.baseline_export_dir
        report.update(compare_exports(recommender, baseline, dataset, FLAGS.batch_size))
    else:
        report.update(evaluate_export(recommender, dataset, FLAGS.batch_size))
    print(json.dumps(report))


if __name__ == "__main__":
    cli.run_app(main)
