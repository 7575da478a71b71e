"""build_session_graphs against a plain-Python restatement of the authors' graph building.

`authors_slice` restates `Data.get_slice` of CRIPAC-DIG/SR-GNN's PyTorch code on the padded
rows, padding node included; the tensor version must give the same graphs once that
padding node (item 0, no edges) is dropped.
"""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.layers.session_graph import build_session_graphs

# Repeats, a self-loop ([3, 3, 4]), a repeated edge (1 -> 2 twice), one click, padding only,
# a full row, and the paper's Figure 2 session v1 v2 v3 v2 v4.
SESSIONS = np.array([
    [3, 3, 4, 0, 0, 0],
    [1, 2, 1, 2, 5, 0],
    [7, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [9, 8, 9, 8, 9, 6],
    [1, 2, 3, 2, 4, 0],
])


def authors_slice(rows):
    """Per row (items, alias, A_in, A_out) as the authors' code builds them: nodes are the
    sorted distinct ids of the padded row (0 included when padded), u_A[u, v] = 1 for every
    transition up to the first padding, A_in = (u_A / in-degree)^T and A_out = (u_A^T /
    out-degree)^T, degrees of 0 taken as 1 (their concatenation is transposed in the code)."""
    graphs = []
    for row in rows:
        node = np.unique(row)
        size = len(node)
        u_a = np.zeros((size, size))
        for i in range(len(row) - 1):
            if row[i + 1] == 0:
                break
            u_a[np.where(node == row[i])[0][0], np.where(node == row[i + 1])[0][0]] = 1
        sum_in = u_a.sum(0)
        sum_in[sum_in == 0] = 1
        sum_out = u_a.sum(1)
        sum_out[sum_out == 0] = 1
        a_in = (u_a / sum_in).T
        a_out = (u_a.T / sum_out).T
        alias = [np.where(node == item)[0][0] for item in row]
        graphs.append((node, np.array(alias), a_in, a_out))
    return graphs


def expected_graphs(rows):
    """The authors' graphs without the padding node, padded to the largest node count."""
    trimmed = []
    for row, (node, alias, a_in, a_out) in zip(rows, authors_slice(rows)):
        real = node != 0
        shift = int(node[0] == 0)  # the padding node sorts first
        real_alias = np.where(row > 0, alias - shift, 0)
        trimmed.append((node[real], real_alias, a_in[np.ix_(real, real)],
                        a_out[np.ix_(real, real)]))
    max_nodes = max(1, max(len(node) for node, *_ in trimmed))
    items = np.zeros((len(rows), max_nodes), int)
    a_in = np.zeros((len(rows), max_nodes, max_nodes))
    a_out = np.zeros_like(a_in)
    for b, (node, _, row_in, row_out) in enumerate(trimmed):
        n = len(node)
        items[b, :n], a_in[b, :n, :n], a_out[b, :n, :n] = node, row_in, row_out
    return items, np.stack([alias for _, alias, *_ in trimmed]), a_in, a_out


def assert_graphs_equal(graphs, rows):
    items, alias, a_in, a_out = expected_graphs(rows)
    np.testing.assert_array_equal(graphs.node_items.numpy(), items)
    np.testing.assert_array_equal(graphs.alias.numpy(), alias)
    np.testing.assert_allclose(graphs.adjacency_in.numpy(), a_in, atol=1e-7)
    np.testing.assert_allclose(graphs.adjacency_out.numpy(), a_out, atol=1e-7)


def test_matches_the_authors_construction():
    graphs = build_session_graphs(tf.constant(SESSIONS))
    assert graphs.node_items.dtype == tf.int32 and graphs.alias.dtype == tf.int32
    assert graphs.adjacency_in.dtype == tf.float32
    assert_graphs_equal(graphs, SESSIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_authors_construction_on_random_sessions(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 9, size=6)
    rows = np.zeros((6, 8), int)
    for b, length in enumerate(lengths):
        rows[b, :length] = rng.integers(1, 5, size=length)  # few items: many repeats
    assert_graphs_equal(build_session_graphs(tf.constant(rows)), rows)


def test_figure_2_of_the_paper():
    # v1 v2 v3 v2 v4: v2 is left for v3 and v4 (1/2 each), entered from v1 and v3 (1/2 each).
    graphs = build_session_graphs(tf.constant([[1, 2, 3, 2, 4]]))
    np.testing.assert_array_equal(graphs.node_items.numpy(), [[1, 2, 3, 4]])
    np.testing.assert_array_equal(graphs.alias.numpy(), [[0, 1, 2, 1, 3]])
    np.testing.assert_allclose(graphs.adjacency_out.numpy()[0], [
        [0, 1, 0, 0], [0, 0, 0.5, 0.5], [0, 1, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(graphs.adjacency_in.numpy()[0], [
        [0, 0, 0, 0], [0.5, 0, 0.5, 0], [0, 1, 0, 0], [0, 1, 0, 0]])


def test_repeated_transitions_count_once_and_repeated_clicks_loop():
    # [3, 3, 4]: edges 3 -> 3 and 3 -> 4; node 3 has out-degree 2 and in-degree 1.
    # [1, 2, 1, 2]: 1 -> 2 twice and 2 -> 1 once, all weight 1 (the code sets, not adds).
    graphs = build_session_graphs(tf.constant([[3, 3, 4, 0], [1, 2, 1, 2]]))
    np.testing.assert_allclose(graphs.adjacency_out.numpy(), [
        [[0.5, 0.5], [0, 0]], [[0, 1], [1, 0]]])
    np.testing.assert_allclose(graphs.adjacency_in.numpy(), [
        [[1, 0], [1, 0]], [[0, 1], [1, 0]]])


def test_padding_columns_and_all_padding_rows():
    graphs = build_session_graphs(tf.constant(SESSIONS))
    wider = build_session_graphs(tf.constant(np.pad(SESSIONS, [[0, 0], [0, 3]])))
    for name in ("node_items", "adjacency_in", "adjacency_out"):
        np.testing.assert_array_equal(getattr(wider, name).numpy(), getattr(graphs, name).numpy())
    np.testing.assert_array_equal(wider.alias.numpy()[:, :SESSIONS.shape[1]], graphs.alias.numpy())
    # Padding only: one empty node, no edges.
    empty = build_session_graphs(tf.zeros([2, 3], tf.int32))
    np.testing.assert_array_equal(empty.node_items.numpy(), [[0], [0]])
    np.testing.assert_array_equal(empty.alias.numpy(), np.zeros((2, 3)))
    assert not empty.adjacency_in.numpy().any() and not empty.adjacency_out.numpy().any()


def test_one_trace_for_any_batch_and_length():
    traced = tf.function(build_session_graphs,
                         input_signature=[tf.TensorSpec([None, None], tf.int32)])
    for rows in (SESSIONS, SESSIONS[:2, :3], np.array([[5]])):
        assert_graphs_equal(traced(tf.constant(rows, tf.int32)), rows)
    assert traced.experimental_get_tracing_count() == 1
