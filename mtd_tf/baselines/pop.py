"""POP: every session gets the same list, the items seen most often in training."""

import numpy as np


class Pop:
    """Scores item m by its number of occurrences in the training sessions (repeats counted).

    Counting occurrences (not sessions) is what reproduces the paper's Table 2 POP row
    exactly at K = 10 on all three datasets.

    Args:
      train: training `Sessions`, ids in 1..num_items.
      num_items: M.
    """

    def __init__(self, train, num_items):
        self.counts = np.bincount(train.values, minlength=num_items + 1)[1:].astype(np.float64)

    def score(self, prefixes):
        """float64 [len(prefixes), M]: the counts for every prefix (a read-only broadcast view)."""
        return np.broadcast_to(self.counts, (len(prefixes), len(self.counts)))
