"""The global item-transition graph of DESIGN.md section 3 (paper eq. 6), built once from training sessions.

Built with SciPy on the host: the graph is fixed for a whole run, so building it is a one-off
cost, and a sparse matrix never materialises the M x M dense adjacency (the reference's did:
about 1.2 GB in float32 for Yoochoose 1/64, 7.4 GB for Diginetica). Row and column `m - 1` stand for item `m`; padding id 0 has no row.
"""

import numpy as np
import scipy.sparse
import tensorflow as tf

from mtd_tf.data.sessions import Sessions


def transition_adjacency(sessions, num_items, directed=False):
    """Binary adjacency of consecutive item pairs in the training sessions.

    Every consecutive pair `(v_i, v_{i+1})` inside a session gives an edge; self-pairs
    (`v_i == v_{i+1}`) are skipped, repeated transitions count once, and the graph is made
    symmetric unless `directed`.

    Args:
      sessions: `Sessions` or a list of lists of item ids, ids in `1..num_items`.
      num_items: M, the number of items.
      directed: keep only `v_i -> v_{i+1}` (row = source item) instead of both directions.

    Returns:
      `scipy.sparse.csr_matrix` float32 [M, M] with entries 1, canonical (sorted, no
      duplicates), no diagonal.

    Raises:
      ValueError: `num_items` is not a positive integer, or an id is outside `1..num_items`.
    """
    if isinstance(num_items, bool) or not isinstance(num_items, (int, np.integer)) or num_items < 1:
        raise ValueError(f"num_items must be a positive integer, got {num_items!r}")
    if not isinstance(sessions, Sessions):
        sessions = Sessions.from_lists(sessions)
    values = np.asarray(sessions.values, dtype=np.int64)  # [total_items]
    if values.size and (values.min() < 1 or values.max() > num_items):
        bad = values[(values < 1) | (values > num_items)][0]
        raise ValueError(f"item id {bad} is outside 1..{num_items}")

    # Pair k is (values[k], values[k + 1]); it crosses a boundary when k + 1 starts a session.
    crosses_boundary = np.zeros(max(values.size - 1, 0), dtype=bool)  # [total_items - 1]
    starts = np.asarray(sessions.row_splits[1:-1], dtype=np.int64)
    starts = starts[(starts > 0) & (starts < values.size)]  # empty sessions repeat a split
    crosses_boundary[starts - 1] = True
    sources, targets = values[:-1] - 1, values[1:] - 1  # 0-based rows
    keep = ~crosses_boundary & (sources != targets)
    rows, cols = sources[keep], targets[keep]
    if not directed:
        rows, cols = np.concatenate([rows, cols]), np.concatenate([cols, rows])

    adjacency = scipy.sparse.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(num_items, num_items))
    adjacency.sum_duplicates()
    adjacency.data[:] = 1.0  # binary: a transition seen k times is one edge
    return adjacency


def normalized_adjacency(adjacency):
    """Symmetric normalisation with self-loops, `D^-1/2 (A + I) D^-1/2` (eq. 6).

    `D` holds the row sums of `A + I`, so an item with no edge keeps exactly its own row
    (`1` on the diagonal) and its embedding passes through the GCN unmixed.

    Args:
      adjacency: square scipy sparse matrix [M, M], e.g. from `transition_adjacency`.

    Returns:
      `scipy.sparse.csr_matrix` float32 [M, M], canonical.

    Raises:
      ValueError: `adjacency` is not square.
    """
    num_rows, num_cols = adjacency.shape
    if num_rows != num_cols:
        raise ValueError(f"adjacency must be square, got shape {adjacency.shape}")
    # Float64 for the degrees: hub items have thousands of neighbours.
    with_self_loops = scipy.sparse.csr_matrix(adjacency, dtype=np.float64) + scipy.sparse.eye(
        num_rows, dtype=np.float64, format="csr")
    degrees = np.asarray(with_self_loops.sum(axis=1)).ravel()  # [M], >= 1 for binary A
    inverse_sqrt = scipy.sparse.diags(1.0 / np.sqrt(degrees))
    normalized = scipy.sparse.csr_matrix(inverse_sqrt @ with_self_loops @ inverse_sqrt, dtype=np.float32)
    normalized.sum_duplicates()
    return normalized


def to_sparse_tensor(matrix):
    """A scipy sparse matrix as a float32 `tf.sparse.SparseTensor` with row-major sorted indices.

    Args:
      matrix: scipy sparse matrix [rows, cols].

    Returns:
      `tf.sparse.SparseTensor` float32, dense_shape [rows, cols], canonical ordering (what
      `tf.sparse` ops such as `tf.sparse.softmax` expect).
    """
    canonical = scipy.sparse.csr_matrix(matrix, dtype=np.float32, copy=True)
    canonical.sum_duplicates()  # also sorts the column indices of each row
    coo = canonical.tocoo()
    indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)  # [nnz, 2]
    return tf.sparse.SparseTensor(indices, coo.data, dense_shape=canonical.shape)
