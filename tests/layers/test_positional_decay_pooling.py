"""PositionalDecayPooling (eq. 4) against hand numbers and a NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.layers import PositionalDecayPooling
from tests.layers.checks import (LENGTHS, MAX_LEN, assert_keras_serialization,
                                 padding_mask, with_noisy_padding)

DIM = 3
SIGNATURE = [tf.TensorSpec([None, None, DIM]), tf.TensorSpec([None, None], tf.bool)]


def _numpy_pooling(x, lengths, decay):
    """Independent eq. 4: omega_i proportional to exp(-decay * (I - i + 1)), i = 1..I."""
    pooled = np.zeros((x.shape[0], x.shape[2]))
    omega = np.zeros(x.shape[:2])
    for row, length in enumerate(lengths):
        i = np.arange(1, length + 1)
        weights = np.exp(-decay * (length - i + 1))
        omega[row, :length] = weights / weights.sum()
        pooled[row] = omega[row, :length] @ x[row, :length]
    return pooled, omega


def test_hand_computed_weights_for_lengths_1_2_3():
    # decay 0.75, e^0.75 = 2.1170000166, e^1.5 = 4.4816890703:
    # length 1: [1]
    # length 2: exp(-0.75 * [2, 1]) normalised = [1, e^0.75] / (1 + e^0.75)
    #           = [0.3208213008, 0.6791786992]
    # length 3: exp(-0.75 * [3, 2, 1]) normalised = [1, e^0.75, e^1.5] / (1 + e^0.75 + e^1.5)
    #           = [0.1316016471, 0.2786006892, 0.5897976637]
    expected = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.3208213008, 0.6791786992, 0.0],
            [0.1316016471, 0.2786006892, 0.5897976637],
        ]
    )
    x = np.eye(3, dtype=np.float32)[np.newaxis].repeat(3, axis=0)  # x_i = e_i: p = omega
    pooled, omega = PositionalDecayPooling(decay=0.75)(
        x, mask=padding_mask([1, 2, 3], 3), return_attention_scores=True
    )
    np.testing.assert_allclose(omega.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("decay", [0.0, 0.75, 2.0])
def test_matches_numpy_on_mixed_lengths(seed, decay):
    x = np.random.default_rng(seed).normal(size=(len(LENGTHS), MAX_LEN, DIM)).astype(np.float32)
    pooled, omega = PositionalDecayPooling(decay=decay)(
        x, mask=padding_mask(LENGTHS), training=False, return_attention_scores=True
    )
    expected_pooled, expected_omega = _numpy_pooling(x, LENGTHS, decay)
    np.testing.assert_allclose(pooled.numpy(), expected_pooled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(omega.numpy(), expected_omega, rtol=1e-5, atol=1e-7)


def test_length_one_session_returns_its_item():
    x = np.random.default_rng(0).normal(size=(1, MAX_LEN, DIM)).astype(np.float32)
    pooled = PositionalDecayPooling()(x, mask=padding_mask([1]))
    np.testing.assert_allclose(pooled.numpy(), x[:, 0], rtol=1e-6)


def test_zero_decay_is_the_mean_of_real_items():
    x = np.random.default_rng(1).normal(size=(len(LENGTHS), MAX_LEN, DIM)).astype(np.float32)
    pooled = PositionalDecayPooling(decay=0.0)(x, mask=padding_mask(LENGTHS))
    expected = [x[row, :length].mean(axis=0) for row, length in enumerate(LENGTHS)]
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_padding_positions_do_not_change_output(seed):
    rng = np.random.default_rng(seed)
    mask = padding_mask(LENGTHS)
    x = rng.normal(size=(len(LENGTHS), MAX_LEN, DIM)).astype(np.float32)
    garbage = with_noisy_padding(x, mask, rng)
    layer = PositionalDecayPooling()
    np.testing.assert_array_equal(layer(x, mask=mask).numpy(), layer(garbage, mask=mask).numpy())


def test_full_mask_equals_no_mask():
    x = np.random.default_rng(2).normal(size=(2, MAX_LEN, DIM)).astype(np.float32)
    layer = PositionalDecayPooling()
    full_mask = np.ones((2, MAX_LEN), bool)
    np.testing.assert_allclose(layer(x, mask=full_mask).numpy(), layer(x).numpy(), rtol=1e-6)
    # The pooled vector has no time axis: the mask is consumed, not passed on.
    assert layer.compute_mask(x, full_mask) is None


def test_weights_follow_the_last_real_item_not_the_last_column():
    # Items [5, 6, 7, 0, 0]: the largest weight belongs to column 2.
    item_ids = np.array([[5, 6, 7, 0, 0]])
    _, omega = PositionalDecayPooling()(
        np.ones((1, 5, DIM), np.float32), mask=item_ids > 0, return_attention_scores=True
    )
    expected = [0.1316016471, 0.2786006892, 0.5897976637, 0.0, 0.0]  # length 3 by hand, above
    np.testing.assert_allclose(omega.numpy()[0], expected, rtol=1e-6)


def test_empty_row_gives_zeros_not_nan():
    pooled = PositionalDecayPooling()(np.ones((1, 3, DIM), np.float32), mask=np.zeros((1, 3), bool))
    np.testing.assert_array_equal(pooled.numpy(), np.zeros((1, DIM)))


@pytest.mark.parametrize("decay", [-0.1, float("nan"), float("inf"), "0.75", True])
def test_rejects_bad_decay(decay):
    with pytest.raises(ValueError, match="decay"):
        PositionalDecayPooling(decay=decay)


def test_config_round_trip_and_serialization():
    layer = PositionalDecayPooling(decay=1.25, name="decay_pool")
    clone = PositionalDecayPooling.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.decay == 1.25
    x = np.random.default_rng(3).normal(size=(len(LENGTHS), MAX_LEN, DIM)).astype(np.float32)
    mask = padding_mask(LENGTHS)
    np.testing.assert_array_equal(clone(x, mask=mask).numpy(), layer(x, mask=mask).numpy())

    assert_keras_serialization(layer)


def test_traces_once_with_unknown_batch_and_length():
    layer = PositionalDecayPooling()

    @tf.function(input_signature=SIGNATURE)
    def pool(x, mask):
        return layer(x, mask=mask, training=False)

    rng = np.random.default_rng(4)
    for lengths, max_len in [(LENGTHS, MAX_LEN), ([2, 1], 2)]:
        x = rng.normal(size=(len(lengths), max_len, DIM)).astype(np.float32)
        expected, _ = _numpy_pooling(x, lengths, 0.75)
        pooled = pool(x, padding_mask(lengths, max_len)).numpy()
        np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    assert pool.experimental_get_tracing_count() == 1
