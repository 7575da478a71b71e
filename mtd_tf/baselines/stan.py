"""STAN: session kNN with decays for the prefix's positions, neighbour recency and item distance."""

import dataclasses
import math

import numpy as np

from mtd_tf import settings
from mtd_tf.baselines.neighbourhood import K_HELP
from mtd_tf.baselines.neighbourhood import SAMPLE_SIZE_HELP
from mtd_tf.baselines.neighbourhood import SessionNeighbourhood
from mtd_tf.baselines.neighbourhood import positive_or_inf


@dataclasses.dataclass(frozen=True)
class STANSettings:
    """STAN's settings; defaults from session-rec's `STAN` (`algorithms/knn/stan.py`).

    `k`: its docstring's "Default value" 100 (the constructor has none); `sample_size`
    5000, `lambda_1` (`lambda_spw`) 1.02 and `lambda_3` (`lambda_inh`) 2.05: the
    constructor's defaults. `lambda_2` (`lambda_snh`) is 5 days there; without timestamps
    mtd-tf measures age in sessions and writes the constant as a share of the training
    sessions, 0.1 by default (the tuning grid spans 0.01 to no decay).
    """

    k: int = settings.setting(100, K_HELP, settings.positive_int)
    sample_size: int = settings.setting(5000, SAMPLE_SIZE_HELP, settings.positive_int)
    lambda_1: float = settings.setting(
        1.02, "STAN/VSTAN: prefix item weight exp(-(|p| - position) / lambda_1) (inf: 1).",
        positive_or_inf)
    lambda_2: float = settings.setting(
        0.1, "STAN/VSTAN: neighbour weight exp(-age / (lambda_2 * training sessions)), age in "
        "sessions (inf: no recency decay).", positive_or_inf)
    lambda_3: float = settings.setting(
        2.05, "STAN/VSTAN: vote weight exp(-|distance in the neighbour from the shared item| / "
        "lambda_3) (inf: 1).", positive_or_inf)

    def __post_init__(self):
        settings.check_fields(self)


class STAN(SessionNeighbourhood):
    """Sequence and Time Aware Neighbourhood (Garg et al., SIGIR 2019).

    For prefix p (length |p|, repeats counted) and training session n (`session-rec`'s
    `STAN`, whose formulas these are):

    - prefix item weight w_p(i) = exp(-(|p| - pos_p(i)) / lambda_1), pos_p(i) the
      position (1-based) of i's last occurrence: the last item weighs 1;
    - sim(p, n) = sum_{i in p ∩ n} w_p(i) / (sqrt(sum_{i in p} w_p(i)^2) sqrt(|n|)) *
      exp(-age(n) / (lambda_2 N)), |n| distinct items, N training sessions, and
      age(n) = N - index(n): a session's index is its time (the splits carry no
      timestamps; session-rec's lambda_2 is in days), so the newest session has age 1;
    - item j of neighbour n votes sim(p, n) exp(-|pos_n(j) - a(p, n)| / lambda_3), with
      pos_n(j) the position of j's last occurrence in n and a(p, n) the largest position
      in n of an item of p.

    Candidates are the `sample_size` most recent sessions sharing an item with p
    (`mtd_tf.baselines.neighbourhood`).

    Tuning grid, three stages (each searched with the best of the previous ones fixed),
    at most 9 + 8 + 4 = 21 settings, from session-rec's search space
    (`conf/save/rsc15/window/opt/window_rsc15_stan.yml`: k up to 2000, sample_size up to
    10000, lambda_1 and lambda_3 in {1e-5, 0.5, 1, 2, 4, 8}): k in {100, 500, 1500} x
    sample_size in {1000, 5000, 10000}; then lambda_1 in {1e-5, 1.02, 4} x lambda_3 in
    {0.5, 2.05, 8}; then lambda_2 in {0.01, 0.05, 0.1, 0.5, inf}.

    Args:
      train: training `Sessions`, ids in 1..num_items, oldest first.
      num_items: M.
      setting: `STANSettings` (VSTAN: `VSTANSettings`).
    """

    Settings = STANSettings
    TUNING_GRID = (
        {"k": (100, 500, 1500), "sample_size": (1000, 5000, 10000)},
        {"lambda_1": (1e-5, 1.02, 4.0), "lambda_3": (0.5, 2.05, 8.0)},
        {"lambda_2": (0.01, 0.05, 0.1, 0.5, math.inf)},
    )

    def prefix_item_weights(self, positions, lengths):
        return np.exp(-(lengths - positions) / self.setting.lambda_1)

    def similarity(self, overlap, rows, sessions, prefix_weights):
        prefix_norms = np.sqrt(np.asarray(prefix_weights.multiply(prefix_weights).sum(axis=1)))
        ages = self.num_sessions - sessions
        recency = np.exp(-ages / (self.setting.lambda_2 * self.num_sessions))
        return (overlap / (prefix_norms[rows, 0] * np.sqrt(self.session_sizes[sessions]))
                * recency)

    def item_distance_weights(self, distances):
        return np.exp(-distances / self.setting.lambda_3)
