"""Item-KNN: the items that co-occur most with the last item of the prefix (cosine)."""

import numpy as np
from scipy import sparse

from mtd_tf.baselines import session_item_counts


class ItemKNN:
    """Scores item j by its cosine similarity to the prefix's last item i over training sessions.

    Items are session-incidence vectors, so sim(i, j) = |S_i ∩ S_j| / sqrt(|S_i| |S_j|) with
    S_i the set of training sessions containing i. The similarity matrix is held sparse
    (M x M dense would be 7.4 GB for Diginetica); only a batch of rows is made dense.

    An item is not its own neighbour: sim(i, i) = 0, as in GRU4Rec's Item-KNN (otherwise
    the last item always ranks first, and every repeated click is a hit at rank 1). A prefix
    with no item has no last item: its row is NaN, which `target_ranks` counts as a miss.

    Args:
      train: training `Sessions`, ids in 1..num_items.
      num_items: M.
    """

    def __init__(self, train, num_items):
        self.num_items = num_items
        incidence = session_item_counts(train, num_items)  # [sessions, M]
        incidence.data[:] = 1.0
        shared_sessions = (incidence.T @ incidence).tocsr()  # [M, M]; diagonal = |S_i|
        sessions_per_item = shared_sessions.diagonal()
        # Items in no session have empty rows and columns; any positive norm leaves them at 0.
        inverse_norms = sparse.diags(1.0 / np.sqrt(np.maximum(sessions_per_item, 1.0)))
        similarities = inverse_norms @ shared_sessions @ inverse_norms
        similarities = (similarities - sparse.diags(similarities.diagonal())).tocsr()
        similarities.eliminate_zeros()
        self.similarities = similarities

    def score(self, prefixes):
        """float64 [len(prefixes), M]; NaN rows for empty prefixes."""
        has_items = prefixes.lengths > 0
        last_items = prefixes.values[prefixes.row_splits[1:][has_items] - 1]
        scores = np.full((len(prefixes), self.num_items), np.nan)
        scores[has_items] = self.similarities[last_items.astype(np.int64) - 1].toarray()
        return scores
