"""Session graphs of a batch of right-padded prefixes, built with tensor ops (SR-GNN).

Each prefix v_1..v_I becomes a small directed graph: one node per distinct item, and an
edge u -> w whenever w is clicked right after u (Wu et al., AAAI 2019, section "Constructing
Session Graphs"). What the model needs from it, for a whole batch at once and inside a
`tf.function` (no Python loop per session):

- `node_items`: the item of each node, nodes in ascending item id, as the authors' code
  orders them (`np.unique` in `utils.Data.get_slice`, CRIPAC-DIG/SR-GNN); rows with fewer
  nodes than the batch's largest graph are padded with item 0;
- `alias`: for each position of the prefix, the node of its item (the code's
  `alias_inputs`), so repeated clicks share one node;
- `adjacency_in`, `adjacency_out`: the normalised connection matrices A^(in), A^(out) of
  the paper's Figure 2, exactly as `get_slice` of the PyTorch code builds them:
    E[u, w] = 1 if w follows u at least once (a repeated transition still counts once; a
      repeated click such as [3, 3] gives the self-loop E[3, 3] = 1),
    A^(in)[w, u] = E[u, w] / indeg(w),    A^(out)[u, w] = E[u, w] / outdeg(u),
  degrees counted over distinct edges and taken as 1 where they are 0. Row w of A^(in)
  averages w's predecessors, row u of A^(out) averages u's successors.

The paper's text weighs an edge by its number of occurrences; both released versions of the
code use the 0/1 matrix E above, which is what is built here. (The TensorFlow version of
the code leaves out the transpose of the PyTorch version and of Figure 2, issue #12 of the
repository; this module follows the figure.) The authors' graphs also hold a node for the
padding id 0 of padded rows, which has no edges and is masked out of the readout: it cannot
change any score and is left out here, so a row's nodes are its real items only.
"""

from typing import NamedTuple

import tensorflow as tf

# Sorts after every item id, so a row's padding comes after its real items.
_PADDING_KEY = tf.int32.max


class SessionGraphs(NamedTuple):
    """A batch of session graphs, padded to the batch's largest number of nodes N >= 1.

    Attributes:
      node_items: int32 `[batch, N]`, the item of each node in ascending id; 0 past a
        row's last node.
      alias: int32 `[batch, len]`, the node of each position's item; 0 at padding.
      adjacency_in: float32 `[batch, N, N]`, A^(in) (rows: the node receiving the edge).
      adjacency_out: float32 `[batch, N, N]`, A^(out) (rows: the node sending the edge).
    """

    node_items: tf.Tensor
    alias: tf.Tensor
    adjacency_in: tf.Tensor
    adjacency_out: tf.Tensor


def build_session_graphs(item_ids):
    """The session graph of every right-padded prefix of `item_ids`.

    Args:
      item_ids: int `[batch, len]`, ids 1..M right-padded with 0; a row may be all padding
        (it gets one empty node and no edges).

    Returns:
      `SessionGraphs` (see there for shapes).
    """
    item_ids = tf.cast(item_ids, tf.int32)
    mask = item_ids > 0  # [B, L], True = real item
    batch = tf.shape(item_ids)[0]

    keys = tf.where(mask, item_ids, _PADDING_KEY)
    sorted_keys = tf.sort(keys, axis=1)  # [B, L]
    sorted_real = sorted_keys != _PADDING_KEY
    # A sorted position opens a node when its item differs from the one before it.
    differs = tf.not_equal(sorted_keys[:, 1:], sorted_keys[:, :-1])
    opens_node = sorted_real & tf.concat([tf.ones([batch, 1], tf.bool), differs], axis=1)
    node_of_sorted = tf.cumsum(tf.cast(opens_node, tf.int32), axis=1) - 1  # [B, L]
    num_nodes = tf.reduce_max(node_of_sorted, axis=1) + 1  # [B], 0 for an all-padding row
    max_nodes = tf.maximum(tf.reduce_max(num_nodes), 1)

    # A position's node is that of its item's first place in the sorted row.
    first_place = tf.searchsorted(sorted_keys, keys, side="left")  # [B, L]
    alias = tf.where(mask, tf.gather(node_of_sorted, first_place, batch_dims=1), 0)

    # Each node's item: one segment per (row, node); padding goes to one extra segment.
    rows = tf.range(batch)[:, tf.newaxis]
    segments = tf.where(sorted_real, rows * max_nodes + node_of_sorted, batch * max_nodes)
    node_items = tf.math.unsorted_segment_max(
        tf.where(sorted_real, sorted_keys, 0), segments, batch * max_nodes + 1)
    node_items = tf.reshape(tf.maximum(node_items[:-1], 0), [batch, max_nodes])

    # E[u, w] > 0 iff some position i has node u and position i + 1 (real) has node w.
    positions = tf.one_hot(alias, max_nodes, dtype=tf.float32) * tf.cast(
        mask, tf.float32)[..., tf.newaxis]  # [B, L, N]; zero rows at padding
    transitions = tf.einsum("bin,bim->bnm", positions[:, :-1], positions[:, 1:])  # [B, N, N]
    edges = tf.cast(transitions > 0, tf.float32)
    in_degree = tf.maximum(tf.reduce_sum(edges, axis=1), 1.0)  # [B, N], over senders u
    out_degree = tf.maximum(tf.reduce_sum(edges, axis=2), 1.0)  # [B, N], over receivers w
    adjacency_in = tf.transpose(edges, [0, 2, 1]) / in_degree[:, :, tf.newaxis]
    adjacency_out = edges / out_degree[:, :, tf.newaxis]
    return SessionGraphs(node_items, alias, adjacency_in, adjacency_out)
