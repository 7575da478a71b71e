"""Session-based nearest neighbours: the machinery SKNN, V-SKNN, STAN and VSTAN share.

For a prefix p (the current session), each method of the family (session-rec,
`algorithms/knn/`) does the same four steps; they differ only in the weights, which each
subclass supplies through the hooks named here:

1. Candidates: the training sessions holding at least one item of p; of those, the
   `sample_size` most recent (session-rec's `sampling='recent'`).
2. Similarity of each candidate n: a function of the weighted overlap
   `sum_{i in p, i in n} w_p(i)`, where `w_p(i)` is the weight of p's distinct item i given
   the position of its last occurrence (`prefix_item_weights`; 1 when it returns None),
   and of the method's norms and decays (`similarity`).
3. Neighbours: the `k` candidates of highest positive similarity. session-rec breaks ties
   by the iteration order of a Python set; mtd-tf prefers the more recent session.
4. Votes: every item j of every neighbour n gets
   `neighbour_weights(sim(p, n), step(p, n)) * item_distance_weights(|pos_n(j) - a(p, n)|)`,
   summed over neighbours and multiplied by `item_weights[j]` (IDF; 1 when None). Here
   `step(p, n)` is the distance from the end of p of the most recent item of p that n holds
   (1 = p's last item), `pos_n(j)` the position of j's last occurrence in n, and `a(p, n)`
   the largest position in n of an item of p. Items of p are scored like any other
   (session-rec's `remind=True`).

Items no neighbour holds, and every item of a prefix with no known item, are ranked by
training popularity below the voted ones (`SparseScorer`).

Time. The published splits carry no timestamps, but their training sessions are in
chronological order (oldest first, DESIGN.md section 1), so a session's index is its time:
"most recent" means the largest index, and an age is counted in sessions (the prefixes
being scored come after every training session).

Everything is batched over many prefixes with `scipy.sparse` products and flat NumPy
arrays: there is no Python loop over prefixes, candidates or neighbours.
"""

import numpy as np
from scipy import sparse

from mtd_tf.baselines import first_per_row
from mtd_tf.baselines import last_positions
from mtd_tf.baselines.pop import Pop
from mtd_tf.baselines.sparse_scorer import SparseScorer

# The help of the two settings every method of the family has.
K_HELP = "Neighbour sessions whose items vote (the k most similar candidates)."
SAMPLE_SIZE_HELP = ("Candidates: the most recent training sessions sharing an item with the "
                    "prefix, at most this many.")


def positive_or_inf(value):
    """A check (`mtd_tf.settings`) for a decay constant: > 0, `inf` = no decay."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return None
    return "must be a number > 0 (inf: no decay)"


def inverse_document_frequency(train, num_items):
    """float [M]: ln(sessions / occurrences) per item, as session-rec's `idf` (occurrences
    count repeats, as its `groupby(item).size()` counts clicks); 0 for items never seen."""
    occurrences = np.bincount(train.values, minlength=num_items + 1)[1:]
    idf = np.zeros(num_items)
    seen = occurrences > 0
    idf[seen] = np.log(len(train) / occurrences[seen])
    return idf


class SessionNeighbourhood(SparseScorer):
    """Scores items by the votes of the training sessions most similar to the prefix.

    Subclasses set `Settings` (a frozen dataclass with at least `k` and `sample_size`) and
    `TUNING_GRID`, implement `similarity`, and override the other hooks as they need.

    Args:
      train: training `Sessions`, ids in 1..num_items, oldest first.
      num_items: M.
      setting: the subclass's `Settings` (default: its defaults).
    """

    Settings = None
    TUNING_GRID = ()

    def __init__(self, train, num_items, setting=None):
        self.setting = self.Settings() if setting is None else setting
        self.num_items = num_items
        self.num_sessions = len(train)
        self.popularity = Pop(train, num_items).counts  # [M]
        self.session_items = last_positions(train, num_items)  # [N, M], last positions
        incidence = self.session_items.astype(np.float64)
        incidence.data[:] = 1.0
        self.item_sessions = incidence.T.tocsr()  # [M, N], binary
        self.session_sizes = np.diff(self.session_items.indptr)  # [N], distinct items
        self.item_weights = None  # [M] multipliers of the votes, or None

    # Hooks.

    def prefix_item_weights(self, positions, lengths):
        """w_p(i) for distinct prefix items (None: all 1).

        Args:
          positions: int [n], 1-based position of the item's last occurrence in its prefix.
          lengths: int [n], the length of that prefix (repeats counted).
        """
        del positions, lengths
        return None

    def similarity(self, overlap, rows, sessions, prefix_weights):
        """float [n]: the similarity of candidate `sessions` to prefixes `rows`.

        Args:
          overlap: float [n], sum of w_p(i) over the items the two share.
          rows: int [n], the prefix of each pair (row of the batch).
          sessions: int [n], the candidate's index (= its time).
          prefix_weights: float csr [batch, M], w_p(i) of each distinct prefix item.
        """
        raise NotImplementedError

    def neighbour_weights(self, similarities, steps):
        """float [n]: a neighbour's vote weight, from its similarity and step(p, n) (int [n])."""
        del steps
        return similarities

    def item_distance_weights(self, distances):
        """float [e] multipliers of the votes for |pos_n(j) - a(p, n)| (int [e]), or None."""
        del distances
        return None

    # The shared steps.

    def sparse_scores(self, prefixes):
        """float64 csr [len(prefixes), M]: the summed votes."""
        prefix_items = last_positions(prefixes, self.num_items)  # [P, M]
        entry_rows = np.repeat(np.arange(len(prefixes)), np.diff(prefix_items.indptr))
        weights = self.prefix_item_weights(prefix_items.data,
                                           prefixes.lengths[entry_rows])
        prefix_weights = prefix_items.astype(np.float64)
        prefix_weights.data[:] = 1.0 if weights is None else weights
        rows, sessions, overlap = self._candidates(prefix_weights)
        similarities = self.similarity(overlap, rows, sessions, prefix_weights)
        positive = similarities > 0
        rows, sessions, similarities = rows[positive], sessions[positive], similarities[positive]
        nearest = first_per_row(rows, (-sessions, -similarities), self.setting.k)
        return self._votes(prefix_items, prefixes.lengths, rows[nearest], sessions[nearest],
                           similarities[nearest])

    def _candidates(self, prefix_weights):
        """(rows, sessions, overlap) of the sampled candidates, each int/float [n]."""
        # One product gives both sums over the shared items: its real part counts them
        # (every candidate has >= 1, whatever the weights), its imaginary part adds w_p(i).
        both = prefix_weights.astype(np.complex128)
        both.data = 1.0 + 1.0j * prefix_weights.data
        shared = (both @ self.item_sessions).tocsr()  # [P, N]
        counts = np.diff(shared.indptr)
        if counts.max(initial=0) > self.setting.sample_size:
            # Sorted, the indices rise along a row: the most recent candidates come last.
            shared.sort_indices()
        rows = np.repeat(np.arange(shared.shape[0]), counts)
        from_end = shared.indptr[rows + 1] - 1 - np.arange(shared.nnz)
        sampled = from_end < self.setting.sample_size  # all, when no row has more
        return (rows[sampled], shared.indices[sampled].astype(np.int64),
                shared.data[sampled].imag)

    def _votes(self, prefix_items, prefix_lengths, rows, sessions, similarities):
        """float64 csr [P, M]: the summed votes of the neighbours (rows, sessions, similarities)."""
        if not len(rows):
            return sparse.csr_matrix(prefix_items.shape)
        # One entry per (neighbour, distinct item of the neighbour).
        sizes = self.session_sizes[sessions]  # [Q]
        pair_starts = np.cumsum(sizes) - sizes
        entry_pair = np.repeat(np.arange(len(rows)), sizes)  # [E]
        flat = (self.session_items.indptr[sessions][entry_pair]
                + np.arange(len(entry_pair)) - pair_starts[entry_pair])
        items = self.session_items.indices[flat]  # [E], 0-based
        neighbour_positions = self.session_items.data[flat]  # [E]
        entry_rows = rows[entry_pair]
        prefix_positions = np.asarray(prefix_items[entry_rows, items]).ravel()  # [E], 0 = absent
        # Every neighbour shares at least one item, so both maxima are >= 1.
        recent = np.maximum.reduceat(prefix_positions, pair_starts)  # [Q]
        anchors = np.maximum.reduceat(np.where(prefix_positions > 0, neighbour_positions, 0),
                                      pair_starts)  # [Q]
        steps = prefix_lengths[rows] - recent + 1
        votes = self.neighbour_weights(similarities, steps)[entry_pair]
        distance_weights = self.item_distance_weights(
            np.abs(neighbour_positions - anchors[entry_pair]))
        if distance_weights is not None:
            votes = votes * distance_weights
        if self.item_weights is not None:
            votes = votes * self.item_weights[items]
        return sparse.csr_matrix((votes, (entry_rows, items)), shape=prefix_items.shape)
