"""RepeatExploreHead (RepeatNet's repeat/explore mixture) against NumPy, with padding and
items repeated inside a prefix."""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.layers.repeat_explore import RepeatExploreHead
from tests.layers.harness import run_layer_test

NUM_ITEMS, DIM = 9, 4


def softmax(values):
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def numpy_log_probabilities(layer, item_ids, session, candidates, scores):
    """log(g_r P_r + g_e P_e) one session at a time, repeated items summed in a loop."""
    w_r, u_r, u, w_g, b_g = (np.asarray(w.numpy(), np.float64) for w in (
        layer.item_kernel, layer.session_kernel, layer.attention_vector, layer.gate_kernel,
        layer.gate_bias))
    rows = []
    for ids, s, z in zip(np.asarray(item_ids), np.asarray(session, np.float64),
                         np.asarray(scores, np.float64)):
        real = [int(v) for v in ids if v > 0]
        repeat = np.zeros(len(candidates))
        if real:
            h = np.asarray(candidates, np.float64)[np.array(real) - 1]
            attention = softmax(np.tanh(h @ w_r + s @ u_r) @ u)
            for item, weight in zip(real, attention):
                repeat[item - 1] += weight
        gate = softmax(s @ w_g + b_g) if real else np.array([0.0, 1.0])
        rows.append(np.log(gate[0] * repeat + gate[1] * softmax(z)))
    return np.array(rows)


def batch(rng, item_ids):
    item_ids = np.asarray(item_ids, np.int32)
    return (item_ids, rng.normal(size=(len(item_ids), DIM)).astype(np.float32),
            rng.normal(size=(NUM_ITEMS, DIM)).astype(np.float32),
            rng.normal(scale=3.0, size=(len(item_ids), NUM_ITEMS)).astype(np.float32))


# Item 3 twice in the first prefix and 5 three times in the third; the second is padding
# only (a session with no known item); all right-padded.
PREFIXES = [[3, 1, 3, 0, 0], [0, 0, 0, 0, 0], [5, 5, 2, 5, 0], [7, 0, 0, 0, 0]]


@pytest.mark.parametrize("seed", [0, 1])
def test_log_probabilities_match_numpy(seed):
    rng = np.random.default_rng(seed)
    inputs = batch(rng, PREFIXES)
    layer = RepeatExploreHead()
    result = layer(inputs).numpy()
    np.testing.assert_allclose(result, numpy_log_probabilities(layer, *inputs), rtol=1e-5,
                               atol=1e-5)
    # A distribution over the M items; the prefix's items gain where the gate repeats.
    np.testing.assert_allclose(np.exp(result).sum(axis=1), 1.0, rtol=1e-5)
    # The padding-only row cannot repeat: it is the explore distribution alone.
    np.testing.assert_allclose(result[1], tf.nn.log_softmax(inputs[3][1]), rtol=1e-5, atol=1e-5)


def test_padding_contents_and_length_do_not_change_the_result():
    rng = np.random.default_rng(2)
    item_ids, session, candidates, scores = batch(rng, PREFIXES)
    layer = RepeatExploreHead()
    expected = layer((item_ids, session, candidates, scores)).numpy()
    longer = np.pad(item_ids, ((0, 0), (0, 3)))
    np.testing.assert_allclose(layer((longer, session, candidates, scores)).numpy(), expected,
                               rtol=1e-6, atol=1e-6)


def test_the_target_likelihood_is_the_column_of_the_target():
    rng = np.random.default_rng(3)
    item_ids, session, candidates, scores = batch(rng, PREFIXES)
    targets = np.array([3, 4, 5, 9], np.int32)  # repeats, except in rows 2 and 4
    layer = RepeatExploreHead()
    full = layer((item_ids, session, candidates, scores)).numpy()
    log_explore = tf.gather(tf.nn.log_softmax(scores), targets - 1, batch_dims=1)
    likelihood = layer.target_log_likelihood(item_ids, session, candidates, log_explore,
                                             targets).numpy()
    np.testing.assert_allclose(likelihood, full[np.arange(4), targets - 1], rtol=1e-5, atol=1e-5)

    # Finite gradients everywhere, a target outside its prefix included.
    variables = [tf.Variable(session), tf.Variable(candidates)]
    with tf.GradientTape() as tape:
        loss = -tf.reduce_sum(layer.target_log_likelihood(
            item_ids, variables[0], variables[1], log_explore, targets))
    for gradient in tape.gradient(loss, variables + layer.trainable_weights):
        assert np.all(np.isfinite(tf.convert_to_tensor(gradient).numpy()))


def test_layer_harness():
    rng = np.random.default_rng(4)

    def data(prefixes):
        return {"inputs": batch(rng, prefixes)}

    run_layer_test(
        RepeatExploreHead, {"name": "repeat_explore"}, data(PREFIXES),
        resized_input_data=data([[2, 2, 0], [6, 1, 4]]),
        expected_output_shape=(4, NUM_ITEMS), expected_num_trainable_weights=5,
        reference=lambda layer, inputs: numpy_log_probabilities(layer, *inputs),
        rtol=1e-5, atol=1e-5)
