"""Methods that score a few items per prefix, and rank the rest by training popularity.

SKNN, V-SKNN, STAN, VSTAN and SR give a positive score to the items their neighbours or
rules reach, a small share of the M items; every other item (no neighbour holds it, no rule
leads to it, or the prefix has no known item) is ranked by its training occurrence count
below every scored item, as S-POP orders the items its session has not seen. The scores
are built sparse (`sparse_scores`); `score` writes them out dense, with the popularity
fallback, for any caller; `target_ranks` gives the same ranks as `metrics.target_ranks`
on those dense scores (DESIGN.md section 5, ties to the target) from the sparse scores
alone, so evaluation never fills a [batch, M] matrix.
"""

import functools

import numpy as np

from mtd_tf import metrics


class SparseScorer:
    """Dense scores and ranks from `sparse_scores(prefixes) -> csr [batch, M]`.

    Subclasses implement `sparse_scores` (non-negative entries; 0 or absent = not scored)
    and set `self.popularity` (float [M], `Pop.counts`) and `self.num_items`.
    """

    num_items = None
    popularity = None

    def sparse_scores(self, prefixes):
        """float64 csr [len(prefixes), M]: the method's scores, >= 0, absent = not scored."""
        raise NotImplementedError

    def score(self, prefixes):
        """float64 [len(prefixes), M]: the scores where positive; elsewhere the training
        popularity / (max + 1) - 1, in [-1, 0), so below every scored item."""
        scores = self.sparse_scores(prefixes).toarray()
        fallback = self.popularity / (self.popularity.max() + 1.0) - 1.0
        np.copyto(scores, np.broadcast_to(fallback, scores.shape), where=scores <= 0)
        return scores

    @functools.cached_property
    def _sorted_popularity(self):
        return np.sort(self.popularity)

    def target_ranks(self, prefixes, targets):
        """int64 [len(prefixes)]: `metrics.target_ranks(self.score(prefixes), targets)`.

        A scored target's rank is 1 + the scored items above it; an unscored one's is 1 +
        every scored item + the unscored items more popular than it.
        """
        scores = self.sparse_scores(prefixes).tocsr()
        scores.sum_duplicates()
        scores.eliminate_zeros()
        targets = np.asarray(targets, dtype=np.int64)
        rankable = (targets >= 1) & (targets <= self.num_items)
        columns = np.where(rankable, targets - 1, 0)
        rows = np.arange(len(targets))
        target_scores = np.asarray(scores[rows, columns]).ravel()  # 0 = not scored
        entry_rows = np.repeat(rows, np.diff(scores.indptr))
        scored = np.diff(scores.indptr)
        above_scored = np.bincount(entry_rows, minlength=len(rows),
                                   weights=scores.data > target_scores[entry_rows])
        target_popularity = self.popularity[columns]
        more_popular = self.num_items - np.searchsorted(
            self._sorted_popularity, target_popularity, side="right")
        more_popular_scored = np.bincount(
            entry_rows, minlength=len(rows),
            weights=self.popularity[scores.indices] > target_popularity[entry_rows])
        ranks = np.where(target_scores > 0, 1 + above_scored,
                         1 + scored + more_popular - more_popular_scored)
        return np.where(rankable, ranks.astype(np.int64), metrics.UNRANKED)
