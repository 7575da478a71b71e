"""The export's candidate vectors, computed once and stored in slices of whole blocks.

Serving scores every call against the same table, so whatever the model does to make it
(normalise it for scaled cosines, cast it, append a bias column) is done once at export.
Each slice is its own variable, its rows padded with zeros to whole blocks of
`block_top_k`: the scoring matmul then writes rows that the block top-K reads without a
copy (slicing a table at call time, or cutting a score row at a block boundary, copies
it, and costs as much as a third of the matmul).
"""

import numpy as np
import tensorflow as tf

from mtd_tf.serving.block_top_k import DEFAULT_BLOCK
from mtd_tf.serving.block_top_k import running_top_k


class CandidateTable(tf.Module):
    """Exact top-K of query vectors against fixed candidate vectors.

    Args:
      vectors: [M, d'] candidate vectors (row j = item j+1), in the dtype queries come in.
      slice_items: rows scored at once (rounded down to whole blocks, at least one).
    """

    def __init__(self, vectors, slice_items, block=DEFAULT_BLOCK):
        super().__init__(name="candidate_table")
        vectors = np.asarray(vectors)
        self.num_items = len(vectors)
        self.block = block
        rows = max(block, slice_items // block * block)
        self.starts = list(range(0, self.num_items, rows))
        self.valid = [min(rows, self.num_items - start) for start in self.starts]
        self.slices = [
            tf.Variable(np.pad(vectors[start:start + valid], [(0, -valid % block), (0, 0)]),
                        trainable=False, name=f"candidates_{index}")
            for index, (start, valid) in enumerate(zip(self.starts, self.valid))]

    def top_k(self, query, k):
        """(scores float32 [batch, k'], item columns int32 [batch, k'] best first), k' =
        min(k, M); equal scores list the lower column first."""
        k = min(k, self.num_items)
        scored_slices = (
            (start, tf.cast(tf.matmul(query, table, transpose_b=True), tf.float32), valid)
            for start, valid, table in zip(self.starts, self.valid, self.slices))
        return running_top_k(scored_slices, k, self.block)
