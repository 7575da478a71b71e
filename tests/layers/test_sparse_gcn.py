"""SparseGCN (eq. 6) against NumPy with the dense normalised adjacency."""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import graph
from mtd_tf.layers.sparse_gcn import LAYER_NORM_EPSILON, SparseGCN
from tests.layers.harness import run_layer_test

SESSIONS = [[1, 2, 3, 2], [4, 5, 1], [6, 6, 7], [2, 3]]  # item 8 has no edge
NUM_ITEMS = 8


def numpy_layer_norm(x, gamma, beta):
    mean = x.mean(axis=-1, keepdims=True)
    variance = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + LAYER_NORM_EPSILON) * gamma + beta


def numpy_gcn(features, dense_adjacency, kernels, gammas, betas):
    """Eq. 6 with dense matrices: H_{l+1} = tanh(LayerNorm(A H_l W_l))."""
    hidden = features.astype(np.float64)
    for kernel, gamma, beta in zip(kernels, gammas, betas):
        hidden = np.tanh(numpy_layer_norm(dense_adjacency @ hidden @ kernel, gamma, beta))
    return hidden


def normalized_graph(sessions=SESSIONS, num_items=NUM_ITEMS):
    normalized = graph.normalized_adjacency(graph.transition_adjacency(sessions, num_items))
    return normalized.toarray(), graph.to_sparse_tensor(normalized)


def layer_weights(layer):
    """(kernels, gammas, betas) of every convolution, as NumPy."""
    return ([kernel.numpy() for kernel in layer.kernels],
            [norm.gamma.numpy() for norm in layer.layer_norms],
            [norm.beta.numpy() for norm in layer.layer_norms])


def randomize_layer_norms(layer, rng):
    """Non-trivial gamma and beta, so a test notices if they are ignored."""
    for norm in layer.layer_norms:
        norm.gamma.assign(rng.uniform(0.5, 1.5, norm.gamma.shape).astype(np.float32))
        norm.beta.assign(rng.normal(0.0, 0.1, norm.beta.shape).astype(np.float32))


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy(num_layers, seed):
    rng = np.random.default_rng(seed)
    dense, sparse = normalized_graph()
    features = rng.normal(0.0, 0.05, (NUM_ITEMS, 6)).astype(np.float32)
    layer = SparseGCN(num_layers=num_layers)
    layer.build(((None, 6), (None, None)))
    randomize_layer_norms(layer, rng)
    expected = numpy_gcn(features, dense, *layer_weights(layer))
    np.testing.assert_allclose(layer((features, sparse)).numpy(), expected, atol=2e-5)


def test_isolated_item_is_not_mixed_with_others():
    _, sparse = normalized_graph()
    features = np.random.default_rng(3).normal(size=(NUM_ITEMS, 4)).astype(np.float32)
    layer = SparseGCN()
    output = layer((features, sparse)).numpy()
    kernel = layer.kernels[0].numpy()
    # Row 7 (item 8) of A_norm is e_7, so its output is tanh(LN(h_8 W)).
    expected = np.tanh(numpy_layer_norm(features[7:8] @ kernel, 1.0, 0.0))
    np.testing.assert_allclose(output[7:8], expected, atol=1e-5)


def test_weights_and_shapes():
    layer = SparseGCN(num_layers=2)
    _, sparse = normalized_graph()
    output = layer((tf.zeros([NUM_ITEMS, 5]), sparse))
    assert output.shape == (NUM_ITEMS, 5)
    # Per layer: W_l [d, d] without bias, LayerNorm gamma and beta.
    assert sorted(tuple(w.shape) for w in layer.trainable_weights) == [(5,)] * 4 + [(5, 5)] * 2


@pytest.mark.parametrize("num_layers", [0, -1, 1.5, True, "2"])
def test_rejects_bad_num_layers(num_layers):
    with pytest.raises(ValueError, match=repr(num_layers)):
        SparseGCN(num_layers=num_layers)


def test_layer_harness():
    rng = np.random.default_rng(4)
    _, sparse = normalized_graph()
    _, small_sparse = normalized_graph([[1, 2], [3, 1]], 3)

    def reference(layer, inputs):
        features, adjacency = inputs
        return numpy_gcn(np.asarray(features), tf.sparse.to_dense(adjacency).numpy(),
                         *layer_weights(layer))

    run_layer_test(
        SparseGCN, {"num_layers": 3, "name": "gcn"},
        {"inputs": (rng.normal(size=(NUM_ITEMS, 4)).astype(np.float32), sparse)},
        resized_input_data={"inputs": (rng.normal(size=(3, 4)).astype(np.float32), small_sparse)},
        expected_output_shape=(NUM_ITEMS, 4),
        expected_num_trainable_weights=3 * 3,  # per convolution: W_l, gamma, beta
        reference=reference, rtol=0.0, atol=1e-5)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_plain_checkpoint_round_trips_every_variable(tmp_path, num_layers):
    # Keras 3 does not make weights or layers held only in Python lists TensorFlow
    # checkpoint dependencies: without an attribute each, they would be silently skipped.
    def built_layer():
        layer = SparseGCN(num_layers=num_layers)
        layer.build(((None, 4), (None, None)))
        return layer

    layer = built_layer()
    rng = np.random.default_rng(num_layers)
    for variable in layer.variables:  # non-default values everywhere, gammas and betas too
        variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    path = tf.train.Checkpoint(layer=layer).write(str(tmp_path / "ckpt"))

    restored = built_layer()
    tf.train.Checkpoint(layer=restored).read(path).assert_consumed()
    assert len(restored.variables) == len(layer.variables) == 3 * num_layers
    for saved, loaded in zip(layer.variables, restored.variables):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
