"""SKNN: session-based kNN, the items of the training sessions most similar to the prefix."""

import dataclasses

import numpy as np

from mtd_tf import settings
from mtd_tf.baselines.neighbourhood import K_HELP
from mtd_tf.baselines.neighbourhood import SAMPLE_SIZE_HELP
from mtd_tf.baselines.neighbourhood import SessionNeighbourhood


@dataclasses.dataclass(frozen=True)
class SKNNSettings:
    """SKNN's settings; defaults from session-rec's `ContextKNN` (`algorithms/knn/sknn.py`).

    `k` has no default in the constructor there; 100 is its docstring's "Default value".
    `sample_size` = 1000 is the constructor's default.
    """

    k: int = settings.setting(100, K_HELP, settings.positive_int)
    sample_size: int = settings.setting(1000, SAMPLE_SIZE_HELP, settings.positive_int)

    def __post_init__(self):
        settings.check_fields(self)


class SKNN(SessionNeighbourhood):
    """Scores item j by sum over the k nearest sessions n holding j of cos(p, n).

    cos(p, n) = |p ∩ n| / sqrt(|p| |n|) over the *sets* of distinct items (Jannach and
    Ludewig, RecSys 2017; session-rec's `ContextKNN` with `similarity='cosine'`). Neighbours
    come from the `sample_size` most recent sessions sharing an item with the prefix, a
    session's index being its time (`mtd_tf.baselines.neighbourhood`). session-rec computes
    `li / sqrt(la) * sqrt(lb)`, which is |p ∩ n| sqrt(|p|) / sqrt(|n|): a constant factor
    per prefix away from the cosine, so its neighbours and ranking are the same.

    Tuning grid (one stage, 25 settings): k in {50, 100, 500, 1000, 1500} x sample_size in
    {500, 1000, 2500, 5000, 10000}, session-rec's search space for SKNN
    (`conf/save/rsc15/window/opt/window_rsc15_knn.yml`).

    Args:
      train: training `Sessions`, ids in 1..num_items, oldest first.
      num_items: M.
      setting: `SKNNSettings`.
    """

    Settings = SKNNSettings
    TUNING_GRID = ({"k": (50, 100, 500, 1000, 1500),
                    "sample_size": (500, 1000, 2500, 5000, 10000)},)

    def similarity(self, overlap, rows, sessions, prefix_weights):
        prefix_sizes = np.diff(prefix_weights.indptr)
        return overlap / np.sqrt(prefix_sizes[rows] * self.session_sizes[sessions])
