"""GraphAttention (the `ga` ablation) against a NumPy loop over each node's neighbours."""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import graph
from mtd_tf.layers.graph_attention import GraphAttention
from mtd_tf.layers.sparse_gcn import LAYER_NORM_EPSILON
from tests.layers.harness import run_layer_test

SESSIONS = [[1, 2, 3, 2], [4, 5, 1], [6, 6, 7], [2, 3]]  # item 8 has no edge
NUM_ITEMS = 8


def numpy_gat(features, dense_adjacency, layer, negative_slope=0.2):
    """One node at a time: softmax over {j != i : A[i, j] != 0} plus i itself."""
    kernel, a_target, a_source = (w.numpy().astype(np.float64) for w in (
        layer.kernel, layer.attention_target, layer.attention_source))
    gamma, beta = layer.layer_norm.gamma.numpy(), layer.layer_norm.beta.numpy()
    transformed = features.astype(np.float64) @ kernel
    output = np.zeros_like(transformed)
    for i in range(len(features)):
        neighbours = [j for j in range(len(features)) if j != i and dense_adjacency[i, j] != 0] + [i]
        scores = np.array([transformed[i] @ a_target + transformed[j] @ a_source for j in neighbours])
        scores = np.where(scores > 0, scores, negative_slope * scores)
        alpha = np.exp(scores - scores.max())
        alpha /= alpha.sum()
        aggregated = alpha @ transformed[neighbours]
        normalized = (aggregated - aggregated.mean()) / np.sqrt(aggregated.var() + LAYER_NORM_EPSILON)
        output[i] = np.tanh(normalized * gamma + beta)
    return output


def built_layer(dim, rng, **kwargs):
    layer = GraphAttention(**kwargs)
    layer.build(((None, dim), (None, None)))
    # Every weight from `rng`, so a test never depends on Keras's global random state.
    layer.kernel.assign(rng.normal(0, 0.5, (dim, dim)).astype(np.float32))
    # Larger attention vectors than the initialiser's, so the softmax is far from uniform.
    layer.attention_target.assign(rng.normal(0, 2.0, dim).astype(np.float32))
    layer.attention_source.assign(rng.normal(0, 2.0, dim).astype(np.float32))
    layer.layer_norm.gamma.assign(rng.uniform(0.5, 1.5, dim).astype(np.float32))
    layer.layer_norm.beta.assign(rng.normal(0, 0.1, dim).astype(np.float32))
    return layer


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("negative_slope", [0.2, 0.0])
def test_matches_numpy_loop(seed, negative_slope):
    rng = np.random.default_rng(seed)
    normalized = graph.normalized_adjacency(graph.transition_adjacency(SESSIONS, NUM_ITEMS))
    features = rng.normal(size=(NUM_ITEMS, 6)).astype(np.float32)
    layer = built_layer(6, rng, negative_slope=negative_slope)
    output = layer((features, graph.to_sparse_tensor(normalized))).numpy()
    np.testing.assert_allclose(
        output, numpy_gat(features, normalized.toarray(), layer, negative_slope), atol=2e-5)


def test_only_the_pattern_of_the_adjacency_matters():
    rng = np.random.default_rng(7)
    adjacency = graph.transition_adjacency(SESSIONS, NUM_ITEMS)
    features = rng.normal(size=(NUM_ITEMS, 4)).astype(np.float32)
    layer = built_layer(4, rng)
    binary = layer((features, graph.to_sparse_tensor(adjacency))).numpy()
    normalized = layer((features, graph.to_sparse_tensor(graph.normalized_adjacency(adjacency))))
    # Same edges in shuffled order, plus an explicit zero (5, 0) that is not an edge.
    coo = adjacency.tocoo()
    order = rng.permutation(coo.nnz)
    indices = np.concatenate([np.stack([coo.row, coo.col], 1)[order], [[5, 0]]]).astype(np.int64)
    values = np.concatenate([coo.data[order], [0.0]]).astype(np.float32)
    shuffled = layer((features, tf.sparse.SparseTensor(indices, values, [NUM_ITEMS, NUM_ITEMS])))
    np.testing.assert_allclose(normalized.numpy(), binary, atol=1e-6)
    np.testing.assert_allclose(shuffled.numpy(), binary, atol=1e-6)
    np.testing.assert_allclose(binary, numpy_gat(features, adjacency.toarray(), layer), atol=2e-5)


@pytest.mark.parametrize("negative_slope", [-0.1, "0.2", None, True])
def test_rejects_bad_negative_slope(negative_slope):
    with pytest.raises(ValueError, match=repr(negative_slope)):
        GraphAttention(negative_slope=negative_slope)


def test_layer_harness():
    rng = np.random.default_rng(8)
    adjacency = graph.to_sparse_tensor(graph.transition_adjacency(SESSIONS, NUM_ITEMS))
    small_adjacency = graph.to_sparse_tensor(graph.transition_adjacency([[1, 2], [3, 1]], 3))

    def reference(layer, inputs):
        features, adjacency = inputs
        return numpy_gat(np.asarray(features), tf.sparse.to_dense(adjacency).numpy(), layer,
                         layer.negative_slope)

    run_layer_test(
        GraphAttention, {"negative_slope": 0.1, "name": "gat"},
        {"inputs": (rng.normal(size=(NUM_ITEMS, 4)).astype(np.float32), adjacency)},
        resized_input_data={"inputs": (rng.normal(size=(3, 4)).astype(np.float32),
                                       small_adjacency)},
        expected_output_shape=(NUM_ITEMS, 4), expected_num_trainable_weights=5,
        reference=reference, rtol=0.0, atol=1e-5)
