"""NARMEncoder (NARM eq. 5-9) against a NumPy reference, and the layer harness.

`numpy_narm_encoder` is the reference the NARM and CSRM model tests share.
"""

import numpy as np
import pytest

from mtd_tf.layers import NARMEncoder
from tests.layers.harness import LENGTHS, MAX_LEN, padding_mask, run_layer_test, session_batch
from tests.layers.harness import with_random_weights
from tests.layers.test_session_gru import gru_weights, numpy_gru, sigmoid

DIM, UNITS = 4, 3


def numpy_narm_encoder(weights, prefix, x, attention_softmax=True, separate_encoders=False,
                       reset_after=False):
    """c = [c_g ; c_l] and alpha for one session's real inputs x [I, input_dim].

    c_g = h_t (eq. 5); e_j = v^T sigmoid(A1 h_t + A2 h_j) (eq. 8, the stored kernels
    multiplying from the right); alpha = softmax(e) (the released code) or e (eq. 7);
    c_l = sum_j alpha_j h_j (eq. 6), with the local GRU's states when the encoders are
    separate. `weights` maps paths to arrays; `prefix` is the encoder's path.
    """
    states, last = numpy_gru(x, *gru_weights(weights, f"{prefix}/global_gru"), reset_after)
    if separate_encoders:
        local_states, local_last = numpy_gru(x, *gru_weights(weights, f"{prefix}/local_gru"),
                                             reset_after)
    else:
        local_states, local_last = states, last
    if len(x) == 0:
        return np.zeros(2 * len(last)), np.zeros(0)
    scores = sigmoid(local_last @ weights[f"{prefix}/last_state_kernel"]
                     + local_states @ weights[f"{prefix}/state_kernel"]) @ weights[
                         f"{prefix}/score_vector"]  # e_j, [I]
    if attention_softmax:
        alpha = np.exp(scores - scores.max())
        alpha /= alpha.sum()
    else:
        alpha = scores
    return np.concatenate([last, alpha @ local_states]), alpha


def _reference(layer, x, mask, **settings):
    weights = {w.path: np.asarray(w.numpy(), np.float64) for w in layer.weights}
    x, mask = np.asarray(x), np.asarray(mask)
    return np.stack([numpy_narm_encoder(weights, layer.name, x[row][mask[row]], **settings)[0]
                     for row in range(len(x))])


def _random_layer(seed, **kwargs):
    return with_random_weights(NARMEncoder(UNITS, name="encoder", **kwargs), (None, None, DIM),
                               np.random.default_rng(seed), scale=0.8)


SETTINGS = [dict(), dict(attention_softmax=False), dict(separate_encoders=True),
            dict(separate_encoders=True, attention_softmax=False, reset_after=True)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("settings", SETTINGS)
def test_matches_numpy_on_mixed_lengths(seed, settings):
    layer = _random_layer(seed, **settings)
    batch = session_batch(np.random.default_rng(seed + 10), DIM)
    encoded, alpha = layer(batch["x"], mask=batch["mask"], return_attention_scores=True)
    assert encoded.shape == (len(LENGTHS), 2 * UNITS)
    np.testing.assert_allclose(encoded, _reference(layer, **batch, **settings),
                               rtol=1e-5, atol=1e-5)
    weights = {w.path: w.numpy() for w in layer.weights}
    for row, length in enumerate(LENGTHS):
        _, expected_alpha = numpy_narm_encoder(weights, "encoder", batch["x"][row, :length],
                                               **settings)
        np.testing.assert_allclose(alpha[row, :length], expected_alpha, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(alpha[row, length:], 0.0)


def test_one_item_takes_all_the_softmax_weight_and_no_item_gives_zeros():
    layer = _random_layer(3)
    x = np.random.default_rng(4).normal(size=(2, 3, DIM)).astype(np.float32)
    encoded, alpha = layer(x, mask=padding_mask([1, 0], 3), return_attention_scores=True)
    np.testing.assert_allclose(alpha, [[1, 0, 0], [0, 0, 0]], atol=1e-6)
    # c_l = h_1 = c_g for a one-item session.
    np.testing.assert_allclose(encoded[0, :UNITS], encoded[0, UNITS:], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(encoded[1], 0.0)


@pytest.mark.parametrize("settings, num_weights", [
    (dict(), 3 + 3),  # one GRU (kernel, recurrent kernel, bias), A1, A2, v
    (dict(separate_encoders=True, attention_softmax=False), 3 + 3 + 3),
])
def test_passes_the_layer_harness(settings, num_weights):
    rng = np.random.default_rng(0)
    run_layer_test(
        NARMEncoder, dict(units=UNITS, **settings), session_batch(rng, DIM),
        resized_input_data=session_batch(rng, DIM, lengths=[2, 1], max_len=MAX_LEN - 2),
        expected_output_shape=(len(LENGTHS), 2 * UNITS),
        expected_num_trainable_weights=num_weights,
        reference=lambda layer, x, mask: _reference(layer, x.numpy(), mask.numpy(), **settings),
        rtol=1e-5, atol=1e-5, precision_tolerance_scale=3.0)


@pytest.mark.parametrize("kwargs", [dict(attention_softmax=1), dict(separate_encoders="yes"),
                                    dict(units=0)])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        NARMEncoder(**{"units": UNITS, **kwargs})
