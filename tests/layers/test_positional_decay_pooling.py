"""PositionalDecayPooling (eq. 4) against hand numbers and a NumPy reference."""

import numpy as np
import pytest

from mtd_tf.layers import PositionalDecayPooling
from tests.layers.harness import LENGTHS, MAX_LEN, padding_mask, run_layer_test, session_batch

DIM = 3


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


def test_mask_is_consumed():
    # The pooled vector has no time axis: the mask is not passed on.
    x = np.random.default_rng(2).normal(size=(2, MAX_LEN, DIM)).astype(np.float32)
    assert PositionalDecayPooling().compute_mask(x, np.ones((2, MAX_LEN), bool)) is None


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


def test_layer_harness():
    rng = np.random.default_rng(4)

    def reference(layer, x, mask):
        pooled, _ = _numpy_pooling(np.asarray(x), np.sum(mask, axis=1), layer.decay)
        return pooled

    run_layer_test(
        PositionalDecayPooling, {"decay": 1.25, "name": "decay_pool"}, session_batch(rng, DIM),
        resized_input_data=session_batch(rng, DIM, [2, 1], 2),
        expected_output_shape=(len(LENGTHS), DIM), expected_num_trainable_weights=0,
        reference=reference, rtol=1e-5, atol=1e-6)
