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
        explore = softmax(z)
        gate_logits = s @ w_g + b_g
        energies = np.zeros(len(real))
        if real:
            h = np.asarray(candidates, np.float64)[np.array(real) - 1]
            energies = np.tanh(h @ w_r + s @ u_r) @ u
        if layer.from_scores and real:
            later = np.array([len(real) - 1 - i for i in range(len(real))])
            energies = (energies + float(layer.score_weight.numpy()) * (h @ s)
                        + float(layer.recency_weight.numpy()) * np.log1p(later))
            distinct = sorted(set(real))
            mass = explore[np.array(distinct) - 1].sum()
            gate_logits = gate_logits + np.log([mass, 1.0 - mass])
            explore = explore.copy()
            explore[np.array(distinct) - 1] = 0.0
            explore /= 1.0 - mass
        if real:
            for item, weight in zip(real, softmax(energies)):
                repeat[item - 1] += weight
        gate = softmax(gate_logits) if real else np.array([0.0, 1.0])
        with np.errstate(divide="ignore"):
            rows.append(np.log(gate[0] * repeat + gate[1] * explore))
    return np.array(rows)


def head(from_scores, rng=None):
    """A built head; from scores, its neutral start moved (by `rng`) so that every term
    counts."""
    layer = RepeatExploreHead(from_scores=from_scores)
    layer.build(((None, None), (None, DIM), (NUM_ITEMS, DIM), (None, NUM_ITEMS)))
    if from_scores and rng is not None:
        for weight in layer.trainable_weights:
            weight.assign(rng.normal(scale=0.5, size=weight.shape))
    return layer


def batch(rng, item_ids, consistent=False):
    """(item_ids, session, candidates, scores); `consistent`: scores = session candidates^T,
    as a model gives them (the head from scores reads its prefix items' scores that way)."""
    item_ids = np.asarray(item_ids, np.int32)
    session = rng.normal(size=(len(item_ids), DIM)).astype(np.float32)
    candidates = rng.normal(size=(NUM_ITEMS, DIM)).astype(np.float32)
    scores = (session @ candidates.T if consistent else
              rng.normal(scale=3.0, size=(len(item_ids), NUM_ITEMS)).astype(np.float32))
    return item_ids, session, candidates, scores


# Item 3 twice in the first prefix and 5 three times in the third; the second is padding
# only (a session with no known item); all right-padded.
PREFIXES = [[3, 1, 3, 0, 0], [0, 0, 0, 0, 0], [5, 5, 2, 5, 0], [7, 0, 0, 0, 0]]


@pytest.mark.parametrize("from_scores", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_log_probabilities_match_numpy(seed, from_scores):
    rng = np.random.default_rng(seed)
    inputs = batch(rng, PREFIXES, consistent=from_scores)
    layer = head(from_scores, rng)
    result = layer(inputs).numpy()
    np.testing.assert_allclose(result, numpy_log_probabilities(layer, *inputs), rtol=1e-5,
                               atol=1e-5)
    # A distribution over the M items; the prefix's items gain where the gate repeats.
    np.testing.assert_allclose(np.exp(result).sum(axis=1), 1.0, rtol=1e-5)
    # The padding-only row cannot repeat: it is the explore distribution alone.
    np.testing.assert_allclose(result[1], tf.nn.log_softmax(inputs[3][1]), rtol=1e-5, atol=1e-5)


def test_from_scores_starts_as_the_models_softmax():
    """Untrained, the head from scores ranks and scores as the model does (prefixes of
    distinct items: a repeated one would count twice)."""
    rng = np.random.default_rng(5)
    inputs = batch(rng, [[3, 1, 6, 0], [0, 0, 0, 0], [2, 0, 0, 0], [9, 4, 7, 8]],
                   consistent=True)
    result = head(True)(inputs).numpy()
    np.testing.assert_allclose(result, tf.nn.log_softmax(inputs[3]).numpy(), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("from_scores", [False, True])
def test_padding_contents_and_length_do_not_change_the_result(from_scores):
    rng = np.random.default_rng(2)
    item_ids, session, candidates, scores = batch(rng, PREFIXES, consistent=from_scores)
    layer = head(from_scores, rng)
    expected = layer((item_ids, session, candidates, scores)).numpy()
    longer = np.pad(item_ids, ((0, 0), (0, 3)))
    np.testing.assert_allclose(layer((longer, session, candidates, scores)).numpy(), expected,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("from_scores", [False, True])
def test_the_target_likelihood_is_the_column_of_the_target(from_scores):
    rng = np.random.default_rng(3)
    item_ids, session, candidates, scores = batch(rng, PREFIXES, consistent=from_scores)
    targets = np.array([3, 4, 5, 9], np.int32)  # repeats, except in rows 2 and 4
    layer = head(from_scores, rng)
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


@pytest.mark.parametrize("from_scores, num_weights", [(False, 5), (True, 7)])
def test_layer_harness(from_scores, num_weights):
    rng = np.random.default_rng(4)

    def data(prefixes):
        return {"inputs": batch(rng, prefixes, consistent=from_scores)}

    run_layer_test(
        RepeatExploreHead, {"name": "repeat_explore", "from_scores": from_scores},
        data(PREFIXES), resized_input_data=data([[2, 2, 0], [6, 1, 4]]),
        expected_output_shape=(4, NUM_ITEMS), expected_num_trainable_weights=num_weights,
        reference=lambda layer, inputs: numpy_log_probabilities(layer, *inputs),
        rtol=1e-5, atol=1e-5)
