"""Transition graph and its normalisation against dense NumPy on small random sessions."""

import numpy as np
import pytest
import scipy.sparse
import tensorflow as tf

from mtd_tf import graph
from mtd_tf.data.sessions import Sessions


def dense_transitions(sessions, num_items, directed=False):
    """The graph by definition: one Python loop over every consecutive pair."""
    adjacency = np.zeros((num_items, num_items), dtype=np.float32)
    for session in sessions:
        for source, target in zip(session[:-1], session[1:]):
            if source != target:
                adjacency[source - 1, target - 1] = 1.0
                if not directed:
                    adjacency[target - 1, source - 1] = 1.0
    return adjacency


def random_sessions(seed, num_items=12, num_sessions=15, num_used_items=9):
    """Short sessions over items 1..num_used_items, so duplicates, self-pairs and unused items occur."""
    rng = np.random.default_rng(seed)
    sessions = [rng.integers(1, num_used_items + 1, size=rng.integers(1, 7)).tolist()
                for _ in range(num_sessions)]
    sessions.append([3, 3, 4, 3, 4])  # self-pair and a repeated transition, always
    return sessions, num_items


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("directed", [False, True])
def test_transition_adjacency_matches_dense(seed, directed):
    sessions, num_items = random_sessions(seed)
    adjacency = graph.transition_adjacency(sessions, num_items, directed=directed)
    assert isinstance(adjacency, scipy.sparse.csr_matrix)
    assert adjacency.dtype == np.float32 and adjacency.shape == (num_items, num_items)
    assert adjacency.has_canonical_format
    np.testing.assert_array_equal(adjacency.toarray(), dense_transitions(sessions, num_items, directed))
    assert adjacency.diagonal().sum() == 0
    if not directed:
        assert (adjacency != adjacency.T).nnz == 0


def test_sessions_and_lists_give_the_same_graph():
    sessions, num_items = random_sessions(seed=5)
    from_lists = graph.transition_adjacency(sessions, num_items)
    from_sessions = graph.transition_adjacency(Sessions.from_lists(sessions), num_items)
    assert (from_lists != from_sessions).nnz == 0


def test_pairs_never_cross_session_boundaries():
    # 2 -> 3 and 4 -> 5 only look consecutive in the flat values; the empty session is skipped.
    adjacency = graph.transition_adjacency([[1, 2], [3, 4], [], [5, 6]], num_items=6, directed=True)
    expected = np.zeros((6, 6), dtype=np.float32)
    expected[0, 1] = expected[2, 3] = expected[4, 5] = 1.0
    np.testing.assert_array_equal(adjacency.toarray(), expected)


def test_duplicated_transitions_stay_binary():
    adjacency = graph.transition_adjacency([[1, 2, 1, 2], [2, 1]], num_items=2)
    np.testing.assert_array_equal(adjacency.toarray(), [[0, 1], [1, 0]])


@pytest.mark.parametrize("sessions, num_items, bad", [
    ([[1, 0, 2]], 3, "0"), ([[1, 4]], 3, "4"), ([[1, -2]], 3, "-2")])
def test_ids_outside_the_item_range_are_rejected(sessions, num_items, bad):
    with pytest.raises(ValueError, match=f"item id {bad} is outside 1..{num_items}"):
        graph.transition_adjacency(sessions, num_items)


@pytest.mark.parametrize("num_items", [0, -3, 2.5, True])
def test_num_items_must_be_a_positive_integer(num_items):
    with pytest.raises(ValueError, match=repr(num_items)):
        graph.transition_adjacency([[1, 2]], num_items)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("directed", [False, True])
def test_normalized_adjacency_matches_dense(seed, directed):
    sessions, num_items = random_sessions(seed)
    adjacency = graph.transition_adjacency(sessions, num_items, directed=directed)
    with_self_loops = adjacency.toarray().astype(np.float64) + np.eye(num_items)
    inverse_sqrt_degree = 1.0 / np.sqrt(with_self_loops.sum(axis=1))
    expected = inverse_sqrt_degree[:, None] * with_self_loops * inverse_sqrt_degree[None, :]
    normalized = graph.normalized_adjacency(adjacency)
    assert isinstance(normalized, scipy.sparse.csr_matrix) and normalized.dtype == np.float32
    np.testing.assert_allclose(normalized.toarray(), expected, rtol=1e-6)


def test_items_without_edges_keep_only_their_diagonal():
    # Items 4 and 5 never occur; item 1 - 2 - 3 is a path: degrees of A + I are 2, 3, 2.
    normalized = graph.normalized_adjacency(graph.transition_adjacency([[1, 2, 3]], 5)).toarray()
    np.testing.assert_array_equal(normalized[3], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(normalized[4], [0, 0, 0, 0, 1])
    np.testing.assert_allclose(normalized[0], [1 / 2, 1 / np.sqrt(6), 0, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(normalized[1], [1 / np.sqrt(6), 1 / 3, 1 / np.sqrt(6), 0, 0], rtol=1e-6)


def test_normalized_adjacency_rejects_non_square():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        graph.normalized_adjacency(scipy.sparse.csr_matrix((2, 3)))


def test_to_sparse_tensor_is_canonical_and_exact():
    # Columns deliberately unsorted within rows, and a duplicate (row 1, col 0) to be summed.
    matrix = scipy.sparse.csr_matrix(
        (np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([2, 0, 0, 1, 0]), np.array([0, 2, 5, 5])),
        shape=(3, 3))
    tensor = graph.to_sparse_tensor(matrix)
    assert isinstance(tensor, tf.sparse.SparseTensor) and tensor.dtype == tf.float32
    np.testing.assert_array_equal(tf.sparse.to_dense(tensor).numpy(), matrix.toarray())
    np.testing.assert_array_equal(tensor.indices.numpy(), [[0, 0], [0, 2], [1, 0], [1, 1]])
    np.testing.assert_array_equal(tensor.values.numpy(), [2.0, 1.0, 8.0, 4.0])
    np.testing.assert_array_equal(tensor.dense_shape.numpy(), [3, 3])


@pytest.mark.parametrize("seed", [0, 1])
def test_to_sparse_tensor_of_a_normalized_graph(seed):
    sessions, num_items = random_sessions(seed)
    normalized = graph.normalized_adjacency(graph.transition_adjacency(sessions, num_items))
    tensor = graph.to_sparse_tensor(normalized)
    np.testing.assert_array_equal(tf.sparse.to_dense(tensor).numpy(), normalized.toarray())
    np.testing.assert_array_equal(tensor.indices.numpy(), tf.sparse.reorder(tensor).indices.numpy())
