"""VSTAN: STAN with V-SKNN's weighting of neighbours by their match's recency, and IDF."""

import dataclasses
import math

import numpy as np

from mtd_tf import settings
from mtd_tf.baselines.neighbourhood import inverse_document_frequency
from mtd_tf.baselines.neighbourhood import positive_or_inf
from mtd_tf.baselines.stan import STAN
from mtd_tf.baselines.stan import STANSettings


@dataclasses.dataclass(frozen=True)
class VSTANSettings(STANSettings):
    """VSTAN's settings; defaults from session-rec's `VSKNN_STAN` (`algorithms/knn/vstan.py`).

    As STAN's (same constructor defaults there: `sample_size` 5000, `lambda_spw` 1.02,
    `lambda_inh` 2.05; `k` 100 from the docstring), plus `lambda_ipw` 1.02 and
    `lambda_idf` 5, the constructor's defaults.
    """

    lambda_ipw: float = settings.setting(
        1.02, "VSTAN: neighbour weight exp(-(step - 1) / lambda_ipw), step = 1 + how many "
        "positions before the prefix's end the neighbour's most recent shared item is.",
        positive_or_inf)
    lambda_idf: float = settings.setting(
        5.0, "VSTAN: votes for item j times 1 + lambda_idf * idf(j) (0: off).",
        settings.in_range(0, math.inf, high_open=True))


class VSTAN(STAN):
    """STAN plus V-SKNN's sequence-aware scoring and IDF (Ludewig et al., UMUAI 2021).

    Everything as `STAN`; a neighbour n's votes are further multiplied by
    exp(-(step(p, n) - 1) / lambda_ipw), step(p, n) = 1 + how many positions before the end
    of p the most recent item of p that n holds is (V-SKNN's `weighting_score` with STAN's
    exponential form; session-rec's `lambda_ipw`), and the votes for item j by
    1 + lambda_idf * idf(j), idf(j) = ln(training sessions / clicks on j) (session-rec's
    `lambda_idf`). The similarity is session-rec's default `cosine`.

    Tuning grid: STAN's three stages, then lambda_ipw in {0.5, 1.02, 4} x lambda_idf in
    {1, 5, 10} (session-rec's README grid for lambda_idf is {1, 2, 5, 10}; rsc15's tuned
    configurations use lambda_ipw 1 and 2): at most 21 + 8 = 29 settings.

    Args:
      train: training `Sessions`, ids in 1..num_items, oldest first.
      num_items: M.
      setting: `VSTANSettings`.
    """

    Settings = VSTANSettings
    TUNING_GRID = STAN.TUNING_GRID + (
        {"lambda_ipw": (0.5, 1.02, 4.0), "lambda_idf": (1.0, 5.0, 10.0)},)

    def __init__(self, train, num_items, setting=None):
        super().__init__(train, num_items, setting)
        if self.setting.lambda_idf:
            self.item_weights = (1.0 + self.setting.lambda_idf
                                 * inverse_document_frequency(train, num_items))

    def neighbour_weights(self, similarities, steps):
        return similarities * np.exp(-(steps - 1) / self.setting.lambda_ipw)
