"""Repeat and new targets: a next click that returns to an item of its own prefix, or not.

A large share of next clicks are repeats, and a model that ranks the prefix's own items
first (S-POP does nothing else) scores those almost for free, so an overall figure hides
how a model splits between the two. Every evaluation reports both parts (Ren et al.,
RepeatNet, AAAI 2019; Li et al., SIGIR 2023).
"""

import numpy as np

from mtd_tf import metrics


def repeat_targets(prefixes, targets):
    """bool [num_pairs]: whether each target occurs in its own (whole) prefix.

    Args:
      prefixes: `data.sessions.Sessions`, one prefix per pair.
      targets: int [num_pairs].
    """
    targets = np.asarray(targets).reshape(-1)
    if len(prefixes) != targets.size:
        raise ValueError(f"{len(prefixes)} prefixes but {targets.size} targets")
    rows = np.repeat(np.arange(targets.size), prefixes.lengths)
    hits = prefixes.values == targets[rows]
    return np.bincount(rows[hits], minlength=targets.size) > 0


def split_report(ranks, repeat, ks=metrics.REPORT_KS):
    """Metrics of the repeat and the new targets apart, from every pair's rank.

    Returns:
      {"repeat", "new"}: each {"share": percent of all pairs, "pairs": count,
       "metrics": {metric: percent}, "standard_error": {metric: points}} (the
       standard error of a mean of per-pair gains; metrics and errors None for a part with
       no pairs, the error None for one pair).
    """
    ranks, repeat = np.asarray(ranks).reshape(-1), np.asarray(repeat, dtype=bool).reshape(-1)
    if ranks.shape != repeat.shape:
        raise ValueError(f"{ranks.size} ranks but {repeat.size} repeat flags")
    report = {}
    for part, members in (("repeat", repeat), ("new", ~repeat)):
        count = int(members.sum())
        means, errors = metrics.summarize_gains(metrics.per_pair_gains(ranks[members], ks))
        report[part] = {"share": 100.0 * count / ranks.size if ranks.size else None,
                        "pairs": count, "metrics": means, "standard_error": errors}
    return report
