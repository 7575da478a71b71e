"""SessionGRU against a NumPy GRU, one session at a time on its real items only.

`numpy_gru` is the reference the recurrent models' tests (GRU4Rec, NARM, CSRM) share.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.layers import SessionGRU
from tests.layers.harness import LENGTHS, MAX_LEN, padding_mask, with_noisy_padding
from tests.layers.harness import with_random_weights

DIM, UNITS = 4, 3


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_gru(x, kernel, recurrent_kernel, bias, reset_after=False):
    """States h_1..h_I of one session's real inputs x [I, input_dim] from h_0 = 0.

    Cho et al.'s GRU with the gates in the kernels' column order [z | r | h]:
      z = sigmoid(x W_z + h U_z + b_z), r = sigmoid(x W_r + h U_r + b_r),
      h~ = tanh(x W_h + (r * h) U_h + b_h)     (reset_after: x W_h + b_h + r * (h U_h + b'_h))
      h' = z * h + (1 - z) * h~
    (the GRU4Rec and NARM papers' `(1 - z) h + z h~` with z standing for 1 - z).

    Returns:
      (states [I, h], last h_I [h]; zeros for I = 0).
    """
    units = recurrent_kernel.shape[0]
    kernel, recurrent_kernel, bias = (np.asarray(value, np.float64)
                                      for value in (kernel, recurrent_kernel, bias))
    input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * units))
    gate_columns = [slice(i * units, (i + 1) * units) for i in range(3)]  # z, r, h
    u_z, u_r, u_h = (recurrent_kernel[:, c] for c in gate_columns)
    b_z, b_r, b_h = (recurrent_bias[c] for c in gate_columns)
    state, states = np.zeros(units), []
    for step in np.asarray(x, np.float64):
        x_z, x_r, x_h = ((step @ kernel + input_bias)[c] for c in gate_columns)
        update = sigmoid(x_z + state @ u_z + b_z)
        reset = sigmoid(x_r + state @ u_r + b_r)
        if reset_after:
            candidate = np.tanh(x_h + reset * (state @ u_h + b_h))
        else:
            candidate = np.tanh(x_h + (reset * state) @ u_h)
        state = update * state + (1.0 - update) * candidate
        states.append(state)
    return np.reshape(states, (len(states), units)), state


def gru_weights(weights, prefix):
    """(kernel, recurrent_kernel, bias) of the SessionGRU at `prefix` in a {path: array} dict."""
    return tuple(weights[f"{prefix}/gru/gru_cell/{name}"]
                 for name in ("kernel", "recurrent_kernel", "bias"))


def _random_layer(seed, reset_after=False):
    return with_random_weights(SessionGRU(UNITS, reset_after=reset_after, name="session_gru"),
                               (None, None, DIM), np.random.default_rng(seed), scale=0.8)


def _weights(layer):
    return {w.path: w.numpy() for w in layer.weights}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("reset_after", [False, True])
def test_states_and_last_state_match_numpy(seed, reset_after):
    layer = _random_layer(seed, reset_after)
    x = np.random.default_rng(seed + 10).normal(size=(len(LENGTHS), MAX_LEN, DIM))
    x = x.astype(np.float32)
    states, last = layer(x, mask=padding_mask(LENGTHS))
    assert states.shape == (len(LENGTHS), MAX_LEN, UNITS) and last.shape == (len(LENGTHS), UNITS)
    for row, length in enumerate(LENGTHS):
        expected_states, expected_last = numpy_gru(
            x[row, :length], *gru_weights(_weights(layer), "session_gru"), reset_after)
        np.testing.assert_allclose(states[row, :length], expected_states, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(states[row, length:], 0.0)
        # The last *real* state, not the last column's.
        np.testing.assert_allclose(last[row], expected_last, rtol=1e-5, atol=1e-5)


def test_padding_values_and_extra_columns_change_nothing():
    layer = _random_layer(3)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(len(LENGTHS), MAX_LEN, DIM)).astype(np.float32)
    mask = padding_mask(LENGTHS)
    states, last = layer(x, mask=mask)
    noisy_states, noisy_last = layer(with_noisy_padding(x, mask, rng), mask=mask)
    np.testing.assert_array_equal(noisy_states, states)
    np.testing.assert_array_equal(noisy_last, last)
    wider = np.pad(x, [[0, 0], [0, 3], [0, 0]])
    wider_states, wider_last = layer(wider, mask=padding_mask(LENGTHS, MAX_LEN + 3))
    np.testing.assert_allclose(wider_last, last, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(wider_states[:, :MAX_LEN], states, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reset_after", [False, True])  # True takes cuDNN on a GPU, which
def test_a_row_without_items_gives_zeros(reset_after):  # would fail on a fully masked row
    layer = _random_layer(5, reset_after)
    x = np.random.default_rng(6).normal(size=(2, 3, DIM)).astype(np.float32)
    states, last = layer(x, mask=np.array([[False] * 3, [True, True, False]]))
    np.testing.assert_array_equal(states[0], 0.0)
    np.testing.assert_array_equal(last[0], 0.0)
    assert np.abs(last[1]).max() > 0


def test_config_round_trip_and_one_trace_for_any_length():
    layer = _random_layer(7, reset_after=True)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert revived.get_config() == layer.get_config()
    revived.build((None, None, DIM))
    revived.set_weights(layer.get_weights())
    x = np.random.default_rng(8).normal(size=(len(LENGTHS), MAX_LEN, DIM)).astype(np.float32)
    mask = padding_mask(LENGTHS)
    np.testing.assert_array_equal(revived(x, mask=mask)[1], layer(x, mask=mask)[1])
    traced = tf.function(lambda x, mask: layer(x, mask=mask)[1], input_signature=[
        tf.TensorSpec([None, None, DIM], tf.float32), tf.TensorSpec([None, None], tf.bool)])
    np.testing.assert_allclose(traced(x, mask), layer(x, mask=mask)[1], rtol=1e-6, atol=1e-6)
    traced(x[:2, :2], mask[:2, :2])
    assert traced.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("kwargs", [dict(units=0), dict(units=2.5), dict(reset_after="no")])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=[name for name in kwargs][0]):
        SessionGRU(**{"units": UNITS, **kwargs})
