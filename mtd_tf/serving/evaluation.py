"""Metrics of an exported model's served top-K lists, with standard errors over test pairs.

Every metric is a mean of per-pair gains (`metrics.per_pair_gains`), so its standard error
is that of a mean, and the gap between two exports read on the same pairs has the
standard error of the per-pair differences (paired: pairs both hit or both miss add no
noise). Ranks come from the served list, so a target outside it counts as a miss.
"""

import numpy as np

from mtd_tf import metrics
from mtd_tf import repeats
from mtd_tf.data import augment


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
    return tuple(k for k in metrics.REPORT_KS if k <= top_k) or (top_k,)


def summarize(label, gains):
    """`metrics.summarize_gains` under the report's keys: {label: {metric: mean, percent},
    label + "_standard_error": {metric: points}}."""
    means, errors = metrics.summarize_gains(gains)
    return {label: means, f"{label}_standard_error": errors}


def evaluate_export(recommender, dataset, batch_size):
    """One export's test metrics ("test"), their standard errors ("test_standard_error")
    and the same for repeat and new targets apart ("test_by_target")."""
    ranks, top_k = served_ranks(recommender, dataset, batch_size)
    ks = report_ks(top_k)
    return {**summarize("test", metrics.per_pair_gains(ranks, ks)),
            "test_by_target": repeats.split_report(ranks, _repeat_targets(dataset), ks)}


def compare_exports(recommender, baseline, dataset, batch_size):
    """Both exports' metrics on the same test pairs, and their per-metric gap
    (`compare_ranks`), at the cut-offs both served lists answer; each export's repeat/new
    split too ("test_by_target", "baseline_test_by_target")."""
    return compare_served(served_ranks(recommender, dataset, batch_size),
                          served_ranks(baseline, dataset, batch_size), dataset)


def compare_served(served, baseline_served, dataset):
    """`compare_exports` from two `served_ranks` results, so that an export read once can
    be compared with several others."""
    (ranks, top_k), (baseline_ranks, baseline_top_k) = served, baseline_served
    ks = report_ks(min(top_k, baseline_top_k))
    repeat = _repeat_targets(dataset)
    return {**compare_ranks(ranks, baseline_ranks, ks),
            "test_by_target": repeats.split_report(ranks, repeat, ks),
            "baseline_test_by_target": repeats.split_report(baseline_ranks, repeat, ks)}


def _repeat_targets(dataset):
    return repeats.repeat_targets(dataset.test_prefixes, dataset.test_targets)


def compare_ranks(ranks, baseline_ranks, ks=metrics.REPORT_KS):
    """Two models' metrics from their ranks of the same pairs, and their per-metric gap.

    Returns:
      `summarize` of "test", "baseline_test" and "gap" (model - baseline, per pair),
      each with its standard error; the gap's is paired, so it shrinks as the two agree.
    """
    ranks, baseline_ranks = np.asarray(ranks), np.asarray(baseline_ranks)
    if ranks.shape != baseline_ranks.shape:
        raise ValueError(f"ranks of {ranks.size} and {baseline_ranks.size} pairs do not pair up")
    gains = metrics.per_pair_gains(ranks, ks)
    baseline_gains = metrics.per_pair_gains(baseline_ranks, ks)
    gaps = {name: gains[name] - baseline_gains[name] for name in gains}
    return {**summarize("test", gains), **summarize("baseline_test", baseline_gains),
            **summarize("gap", gaps)}
