"""SR: sequential rules, the items that followed the prefix's last item in training sessions."""

import dataclasses

import numpy as np
from scipy import sparse

from mtd_tf import settings
from mtd_tf.baselines import decays
from mtd_tf.baselines import first_per_row
from mtd_tf.baselines.pop import Pop
from mtd_tf.baselines.sparse_scorer import SparseScorer


@dataclasses.dataclass(frozen=True)
class SRSettings:
    """SR's settings; defaults from session-rec's `SequentialRules` constructor
    (`algorithms/baselines/sr.py`): steps 10, weighting div, pruning 20."""

    steps: int = settings.setting(
        10, "SR: rules from an item to each of the next `steps` items of its session.",
        settings.positive_int)
    weighting: str = settings.setting(
        "div", "SR: rule weight by the gap between the two items (mtd_tf.baselines.decays).",
        choices=decays.DECAYS)
    pruning: int = settings.setting(
        20, "SR: rules kept per item, the strongest (0: all).", settings.non_negative_int)

    def __post_init__(self):
        settings.check_fields(self)


class SequentialRules(SparseScorer):
    """Scores item j by the weight of the rule (last prefix item -> j).

    A rule a -> b gains weighting(g) (`decays.gap_decay`) each time b follows a by g <= steps
    positions in a training session (Kamehkhosh et al., TempRec 2017; session-rec's
    `SequentialRules`, whose rules these are: repeated and equal items count too). Each
    item keeps its `pruning` strongest rules; ties at the cut keep the smaller item id
    (session-rec keeps the rule seen first). Items without a rule from the last item, and
    every item of a prefix with no known item, are ranked by training popularity below
    the others (`SparseScorer`).

    Tuning grid (one stage, 24 settings): steps in {1, 2, 3, 5, 10, 15} x weighting in
    {div, linear, quadratic, log}, within session-rec's search space
    (`conf/save/rsc15/window/opt/window_rsc15_sr.yml`: steps 2..30, the same weightings).

    Args:
      train: training `Sessions`, ids in 1..num_items.
      num_items: M.
      setting: `SRSettings`.
    """

    Settings = SRSettings
    TUNING_GRID = ({"steps": (1, 2, 3, 5, 10, 15),
                    "weighting": ("div", "linear", "quadratic", "log")},)

    def __init__(self, train, num_items, setting=None):
        self.setting = SRSettings() if setting is None else setting
        self.num_items = num_items
        self.popularity = Pop(train, num_items).counts  # [M]
        self.rules = self._prune(self._mine(train))  # [M, M] float64 csr

    def _mine(self, train):
        """float64 csr [M, M]: row a - 1, column b - 1 holds the summed weight of a -> b."""
        session_of = np.repeat(np.arange(len(train)), train.lengths)
        values = train.values.astype(np.int64) - 1
        sources, destinations, weights = [], [], []
        for gap in range(1, self.setting.steps + 1):  # a loop over gaps, not over sessions
            later = np.flatnonzero(session_of[gap:] == session_of[:-gap])
            sources.append(values[later])
            destinations.append(values[later + gap])
            weights.append(np.full(len(later), decays.gap_decay(self.setting.weighting, [gap])[0]))
        rules = sparse.csr_matrix(
            (np.concatenate(weights), (np.concatenate(sources), np.concatenate(destinations))),
            shape=(self.num_items, self.num_items))
        rules.eliminate_zeros()  # the clipped linear weighting gives 0 from 10 steps on
        return rules

    def _prune(self, rules):
        if not self.setting.pruning:
            return rules
        rows = np.repeat(np.arange(self.num_items), np.diff(rules.indptr))
        kept = first_per_row(rows, (rules.indices, -rules.data), self.setting.pruning)
        return sparse.csr_matrix((rules.data[kept], (rows[kept], rules.indices[kept])),
                                 shape=rules.shape)

    def sparse_scores(self, prefixes):
        """float64 csr [len(prefixes), M]: the rule weights from each prefix's last item."""
        has_items = prefixes.lengths > 0
        last_items = prefixes.values[prefixes.row_splits[1:][has_items] - 1].astype(np.int64)
        selected = self.rules[last_items - 1]  # [prefixes with items, M]
        counts = np.zeros(len(prefixes), dtype=np.int64)
        counts[has_items] = np.diff(selected.indptr)
        return sparse.csr_matrix((selected.data, selected.indices,
                                  np.concatenate([[0], np.cumsum(counts)])),
                                 shape=(len(prefixes), self.num_items))
