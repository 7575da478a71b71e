"""GatedGraph (SR-GNN eq. 1-5) against NumPy, one graph at a time, and the layer harness."""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.layers.gated_graph import GatedGraph
from tests.layers.harness import run_layer_test
from tests.layers.harness import with_random_weights

DIM = 6


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_gated_graph(weights, hidden, adjacency_in, adjacency_out, num_steps=1,
                      reset_after=True):
    """The node update of the authors' `GNN.GNNCell` (eq. 1-5) on one graph.

    Args:
      weights: {name: array} by the layer's weight names (`in_kernel`, ...), float64.
      hidden: [N, d] node states; adjacency_in, adjacency_out: [N, N].
    """
    d = hidden.shape[1]
    w = weights
    for _ in range(num_steps):
        incoming = adjacency_in @ (hidden @ w["in_kernel"] + w["in_bias"]) + w["in_message_bias"]
        outgoing = (adjacency_out @ (hidden @ w["out_kernel"] + w["out_bias"])
                    + w["out_message_bias"])
        messages = np.concatenate([incoming, outgoing], axis=1)  # a, [N, 2d]
        gi = messages @ w["message_kernel"] + w["message_bias"]  # [N, 3d]: r | z | n
        gh = hidden @ w["hidden_kernel"] + w["hidden_bias"]
        reset = _sigmoid(gi[:, :d] + gh[:, :d])
        update = _sigmoid(gi[:, d:2 * d] + gh[:, d:2 * d])
        if reset_after:  # torch.nn.GRUCell
            candidate = np.tanh(gi[:, 2 * d:] + reset * gh[:, 2 * d:])
        else:  # eq. 4
            candidate = np.tanh(gi[:, 2 * d:] + (reset * hidden) @ w["hidden_kernel"][:, 2 * d:]
                                + w["hidden_bias"][2 * d:])
        hidden = (1 - update) * candidate + update * hidden
    return hidden


def layer_weights(layer):
    return {w.path.rsplit("/", 1)[1]: np.asarray(w.numpy(), np.float64) for w in layer.weights}


def random_graphs(rng, batch=3, num_nodes=4):
    """Node states and row-normalised random 0/1 graphs; the last node of row 0 is padding
    (no edges)."""
    hidden = rng.normal(size=(batch, num_nodes, DIM)).astype(np.float32)
    edges = (rng.random((batch, num_nodes, num_nodes)) < 0.5).astype(np.float64)
    edges[0, -1, :] = edges[0, :, -1] = 0
    adjacency_in = np.swapaxes(edges, 1, 2) / np.maximum(edges.sum(1), 1)[:, :, None]
    adjacency_out = edges / np.maximum(edges.sum(2), 1)[:, :, None]
    return hidden, adjacency_in.astype(np.float32), adjacency_out.astype(np.float32)


def randomized_layer(rng, **kwargs):
    return with_random_weights(GatedGraph(**kwargs),
                               ((None, None, DIM), (None, None, None), (None, None, None)),
                               rng, scale=0.5)


def numpy_batch(layer, hidden, adjacency_in, adjacency_out, **kwargs):
    weights = layer_weights(layer)
    return np.stack([numpy_gated_graph(weights, h.astype(np.float64), a, b, **kwargs)
                     for h, a, b in zip(hidden, adjacency_in, adjacency_out)])


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("num_steps", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy(seed, num_steps, reset_after):
    rng = np.random.default_rng(seed)
    layer = randomized_layer(rng, num_steps=num_steps, reset_after=reset_after)
    inputs = random_graphs(rng)
    expected = numpy_batch(layer, *inputs, num_steps=num_steps, reset_after=reset_after)
    np.testing.assert_allclose(layer(inputs).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_reset_placement_matters():
    rng = np.random.default_rng(3)
    after = randomized_layer(rng, reset_after=True)
    before = GatedGraph(reset_after=False)
    before.build(((None, None, DIM), (None, None, None), (None, None, None)))
    before.set_weights(after.get_weights())
    inputs = random_graphs(rng)
    assert np.abs(after(inputs).numpy() - before(inputs).numpy()).max() > 1e-3


def test_a_node_without_edges_does_not_reach_the_others():
    rng = np.random.default_rng(4)
    layer = randomized_layer(rng, num_steps=2)
    hidden, adjacency_in, adjacency_out = random_graphs(rng)
    noisy = hidden.copy()
    noisy[0, -1] = rng.normal(scale=100.0, size=DIM)  # the edgeless node of row 0
    clean = layer((hidden, adjacency_in, adjacency_out)).numpy()
    changed = layer((noisy, adjacency_in, adjacency_out)).numpy()
    np.testing.assert_array_equal(changed[0, :-1], clean[0, :-1])
    np.testing.assert_array_equal(changed[1:], clean[1:])


def test_initial_weights_are_uniform_in_the_codes_range():
    layer = GatedGraph()
    layer.build(((None, None, 100), (None, None, None), (None, None, None)))
    assert len(layer.weights) == 10
    for weight in layer.weights:
        values = weight.numpy()
        assert np.abs(values).max() <= 0.1 and values.std() > 0.04, weight.path  # 1/sqrt(100)


@pytest.mark.parametrize("kwargs", [dict(num_steps=0), dict(num_steps=1.5),
                                    dict(reset_after="yes")])
def test_constructor_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        GatedGraph(**kwargs)


@pytest.mark.parametrize("reset_after", [True, False])
def test_layer_harness(reset_after):
    rng = np.random.default_rng(5)
    inputs = random_graphs(rng)
    # The harness fixes a float input's last axis, here the adjacency's N: only the batch
    # changes (the model's harness test varies N).
    resized = random_graphs(rng, batch=2)
    run_layer_test(
        GatedGraph, dict(num_steps=2, reset_after=reset_after, name="ggnn"),
        {"inputs": inputs}, resized_input_data={"inputs": resized},
        expected_output_shape=inputs[0].shape, expected_num_trainable_weights=10,
        reference=lambda layer, inputs: numpy_batch(
            layer, *(tf.convert_to_tensor(x).numpy() for x in inputs), num_steps=2,
            reset_after=reset_after),
        rtol=1e-5, atol=1e-5)
