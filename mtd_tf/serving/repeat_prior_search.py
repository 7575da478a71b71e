"""Choosing a ranking-time prior (`repeat_prior`) on validation pairs, in one scoring pass.

The prior moves only the prefix's own items, so a pair's rank under any prior follows from
a few numbers read once: the target's score, the scores of the prefix's items, and the
`TOP_MARGIN + len` best scores of the row. No item outside those can pass a target that
stays within the top `max(REPORT_KS)`, so the ranks (exact up to that cut-off, any larger
one reported as one more) of every prior on a grid cost a pass of array arithmetic each
instead of a pass of the model.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from mtd_tf import metrics
from mtd_tf import repeats
from mtd_tf.serving.repeat_prior import RepeatPrior
from mtd_tf.serving.repeat_prior import lifted_positions
from mtd_tf.serving.repeat_prior import prefix_features
from mtd_tf.training.progress import PassProgress

# Ranks are exact up to the largest reported cut-off.
TOP_MARGIN = max(metrics.REPORT_KS) + 1
# Each weight's grid, in units of the median distance from a row's best score down to
# its prefix items' scores: the bonus that lifts a typical prefix item to the top is 1
# (a negative one moves the session's items down, for data where sessions seldom return).
BONUS_GRID = (0.0, -0.5, -0.25, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
COUNT_GRID = (0.0, 0.125, 0.25, 0.5, 1.0)
RECENCY_GRID = (0.0, -0.0625, -0.125, -0.25, -0.5)
# How many of the session's items at most get the bonus (0: all; not in units).
LIFT_LIMIT_GRID = (0, 5, 8, 12, 16)


@dataclasses.dataclass
class PairScores:
    """What the ranks of validation pairs under any prior need (N pairs, prefixes of
    length L, T = L + TOP_MARGIN best items kept per row)."""

    target_scores: np.ndarray  # float32 [N]
    top_scores: np.ndarray  # float32 [N, T], best first
    top_in_prefix: np.ndarray  # bool [N, T]: that item is in the row's prefix
    top_is_target: np.ndarray  # bool [N, T]
    prefix_scores: np.ndarray  # float32 [N, L]: each position's item's score
    last: np.ndarray  # bool [N, L]: the position holds its item's last click
    log_count: np.ndarray  # float32 [N, L]
    log_later: np.ndarray  # float32 [N, L]
    is_target: np.ndarray  # bool [N, L]: the position's item is the target
    repeat: np.ndarray  # bool [N]: the target is in its prefix


def score_pairs(retrieval, item_ids, targets, batch_size):
    """`PairScores` of right-padded prefixes (int [N, L]) and targets (int [N]) under
    `retrieval` (a `TopKRetrieval` of a model without a head or prior)."""
    length = item_ids.shape[1]
    keep = min(length + TOP_MARGIN, retrieval.model.num_items)
    parts = []
    progress = PassProgress("scoring validation pairs", -(-len(targets) // batch_size))
    for start in range(0, len(targets), batch_size):
        ids = tf.constant(item_ids[start:start + batch_size], tf.int32)
        batch_targets = np.asarray(targets[start:start + batch_size])
        scores = retrieval.scores(ids)  # [batch, M]
        top_scores, top_columns = tf.math.top_k(scores, keep)
        top_items = top_columns.numpy() + 1
        ids_np = ids.numpy()
        last, log_count, log_later = (value.numpy() for value in prefix_features(ids))
        parts.append(dict(
            target_scores=tf.gather(scores, batch_targets - 1, batch_dims=1).numpy(),
            top_scores=top_scores.numpy(),
            top_in_prefix=(top_items[:, :, None] == ids_np[:, None, :]).any(axis=2),
            top_is_target=top_items == batch_targets[:, None],
            prefix_scores=tf.gather(scores, np.maximum(ids_np - 1, 0), batch_dims=1).numpy(),
            last=last, log_count=log_count, log_later=log_later,
            is_target=(ids_np == batch_targets[:, None]) & (ids_np > 0),
            repeat=(ids_np == batch_targets[:, None]).any(axis=1)))
        progress.update(len(batch_targets))
    return PairScores(**{name: np.concatenate([part[name] for part in parts])
                         for name in parts[0]})


def prior_ranks(pairs, prior):
    """int [N]: each pair's rank under `prior` (a `RepeatPrior`), exact up to
    `TOP_MARGIN - 1`, `TOP_MARGIN` for any larger rank."""
    lifted = pairs.prefix_scores + prior.bonuses(pairs.log_count, pairs.log_later)
    raised = np.where(lifted_positions(pairs.last, lifted, prior.lift_limit), lifted,
                      pairs.prefix_scores)
    raised = np.where(pairs.last, raised, -np.inf)  # [N, L]
    target = np.where(pairs.repeat,
                      np.where(pairs.is_target & pairs.last, raised, -np.inf).max(axis=1),
                      pairs.target_scores)
    others = np.where(pairs.top_in_prefix | pairs.top_is_target, -np.inf, pairs.top_scores)
    raised_others = np.where(pairs.is_target, -np.inf, raised)
    higher = ((others > target[:, None]).sum(axis=1)
              + (raised_others > target[:, None]).sum(axis=1))
    return np.minimum(higher + 1, TOP_MARGIN)


def score_unit(pairs):
    """The grid's unit: the median of (row's best score - prefix item's score) over the
    distinct prefix items of every pair (1 when there are none)."""
    gaps = (pairs.top_scores[:, :1] - pairs.prefix_scores)[pairs.last]
    median = float(np.median(gaps)) if gaps.size else 0.0
    return median if median > 0 else 1.0


def grid(unit):
    """Every `RepeatPrior` of the grid, no prior first (it wins ties); a limit only with
    a prior it limits."""
    priors = [RepeatPrior(unit * bonus, unit * count, unit * recency, limit)
              for bonus in BONUS_GRID for count in COUNT_GRID for recency in RECENCY_GRID
              for limit in LIFT_LIMIT_GRID]
    return [prior for prior in priors if prior.active or not prior.lift_limit]


def choose(pairs, objective="MRR@20", no_loss_on=()):
    """The grid's prior with the best `objective` (a metric of `metrics.per_pair_gains` at
    a cut-off of `REPORT_KS`) on `pairs`, among those that lose nothing on any metric of
    `no_loss_on` against no prior there, and its report beside no prior's.

    `no_loss_on` lets a deployment trade one metric for another only where validation says
    the other costs nothing (say the best MRR@20 that keeps P@20): no prior is always
    eligible, so the choice never does worse than the model alone on those metrics.

    Returns:
      (the chosen `RepeatPrior`, {"objective", "no_loss_on", "grid_points", "score_unit",
       "chosen": its settings, "without" and "with": {"metrics", "by_target"} of the
       pairs}).
    """
    unit = score_unit(pairs)
    candidates = grid(unit)
    values = [{name: gains.mean() for name, gains in metrics.per_pair_gains(
        prior_ranks(pairs, prior), metrics.REPORT_KS).items()} for prior in candidates]
    floor = values[0]  # no prior, the grid's first
    unknown = sorted({objective, *no_loss_on} - set(floor))
    if unknown:
        raise ValueError(f"not a reported metric: {', '.join(unknown)}")
    eligible = [index for index, value in enumerate(values)
                if all(value[name] >= floor[name] for name in no_loss_on)]
    # The first of equals: no prior on a tie.
    best = candidates[max(eligible, key=lambda index: (values[index][objective], -index))]
    report = {"objective": objective, "no_loss_on": list(no_loss_on),
              "grid_points": len(candidates), "score_unit": unit, "chosen": best.as_settings()}
    for label, prior in (("without", RepeatPrior()), ("with", best)):
        ranks = prior_ranks(pairs, prior)
        means, errors = metrics.summarize_gains(metrics.per_pair_gains(ranks,
                                                                       metrics.REPORT_KS))
        report[label] = {"metrics": means, "standard_error": errors,
                         "by_target": repeats.split_report(ranks, pairs.repeat)}
    return best, report
