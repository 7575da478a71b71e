"""S-POP: the items seen most often in the current session, then the globally popular ones."""

from mtd_tf.baselines import session_item_counts
from mtd_tf.baselines.pop import Pop


class SessionPop:
    """Scores item m by (count of m in the prefix, count of m in training), in that order.

    score = in-session count * (max global count + 1) + global count, so any in-session
    occurrence outweighs every global count, and global popularity orders both the items
    tied within the session and the items the session has not seen. All terms are integers
    far below 2**53, so the float64 order is exact.

    Args:
      train: training `Sessions`, ids in 1..num_items.
      num_items: M.
    """

    def __init__(self, train, num_items):
        self.num_items = num_items
        self.popularity = Pop(train, num_items).counts  # [M]
        self.session_weight = self.popularity.max() + 1.0

    def score(self, prefixes):
        """float64 [len(prefixes), M]."""
        in_session = session_item_counts(prefixes, self.num_items).toarray()
        return in_session * self.session_weight + self.popularity
