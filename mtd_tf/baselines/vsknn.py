"""V-SKNN: SKNN with more weight on the prefix's recent items and on recently matched neighbours."""

import dataclasses

import numpy as np

from mtd_tf import settings
from mtd_tf.baselines import decays
from mtd_tf.baselines.neighbourhood import K_HELP
from mtd_tf.baselines.neighbourhood import SAMPLE_SIZE_HELP
from mtd_tf.baselines.neighbourhood import SessionNeighbourhood
from mtd_tf.baselines.neighbourhood import inverse_document_frequency


@dataclasses.dataclass(frozen=True)
class VSKNNSettings:
    """V-SKNN's settings; defaults from session-rec's `VMContextKNN` (`algorithms/knn/vsknn.py`).

    `k`: its docstring's "Default value" 100 (the constructor has none); `sample_size`
    1000, `weighting` div, `weighting_score` div and `idf_weighting` off (0): the
    constructor's defaults.
    """

    k: int = settings.setting(100, K_HELP, settings.positive_int)
    sample_size: int = settings.setting(1000, SAMPLE_SIZE_HELP, settings.positive_int)
    weighting: str = settings.setting(
        "div", "V-SKNN: weight of a prefix item by its position (mtd_tf.baselines.decays).",
        choices=decays.DECAYS)
    weighting_score: str = settings.setting(
        "div", "V-SKNN: weight of a neighbour by how far from the prefix's end its most recent "
        "shared item is (mtd_tf.baselines.decays).", choices=decays.DECAYS)
    idf_weighting: float = settings.setting(
        0.0, "V-SKNN: votes for item j times 1 + idf_weighting * idf(j) (0: off).",
        settings.in_range(0, float("inf"), high_open=True))

    def __post_init__(self):
        settings.check_fields(self)


class VSKNN(SessionNeighbourhood):
    """SKNN with position-decayed prefix weights (Ludewig and Jannach, UMUAI 2018).

    With w_p(i) = weighting(pos_p(i), |p|) for the last occurrence of prefix item i
    (`decays.position_weight`), the similarity is session-rec's `vec`:
    sim(p, n) = sum_{i in p ∩ n} w_p(i) / |p| (|p| distinct items; no norm of n). A
    neighbour's vote is sim(p, n) * weighting_score(step(p, n)), step(p, n) = 1 + how many
    positions before the prefix's end its most recent shared item is (`decays.gap_decay`),
    times 1 + idf_weighting * idf(j) for item j (session-rec: `idf_weighting`, idf = ln of
    sessions over clicks of j). Candidates are the `sample_size` most recent sessions
    sharing an item, a session's index being its time (`mtd_tf.baselines.neighbourhood`).

    Tuning grid, three stages (each searched with the best of the previous ones fixed;
    session-rec's search space, `conf/save/rsc15/window/opt/window_rsc15_knn.yml` and its
    README's idf_weighting in {1, 2, 5, 10}), at most 9 + 15 + 4 = 28 settings:
    k in {100, 500, 1500} x sample_size in {1000, 5000, 10000}; then weighting x
    weighting_score, each in {div, linear, quadratic, log}; then idf_weighting in
    {0, 1, 2, 5, 10}.

    Args:
      train: training `Sessions`, ids in 1..num_items, oldest first.
      num_items: M.
      setting: `VSKNNSettings`.
    """

    Settings = VSKNNSettings
    TUNING_GRID = (
        {"k": (100, 500, 1500), "sample_size": (1000, 5000, 10000)},
        {"weighting": ("div", "linear", "quadratic", "log"),
         "weighting_score": ("div", "linear", "quadratic", "log")},
        {"idf_weighting": (0.0, 1.0, 2.0, 5.0, 10.0)},
    )

    def __init__(self, train, num_items, setting=None):
        super().__init__(train, num_items, setting)
        if self.setting.idf_weighting:
            self.item_weights = (1.0 + self.setting.idf_weighting
                                 * inverse_document_frequency(train, num_items))

    def prefix_item_weights(self, positions, lengths):
        return decays.position_weight(self.setting.weighting, positions, lengths)

    def similarity(self, overlap, rows, sessions, prefix_weights):
        del sessions
        prefix_sizes = np.diff(prefix_weights.indptr)
        return overlap / prefix_sizes[rows]

    def neighbour_weights(self, similarities, steps):
        return similarities * decays.gap_decay(self.setting.weighting_score, steps)
