"""Mask helpers: positions from the end, the last real item, masked softmax."""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.layers.masking import gather_last, last_real_index, masked_softmax, positions_from_end
from tests.layers.harness import assert_traces_once

# Rows of length 3, 1, 5 and 0 in a batch padded to 5.
MASK = np.array(
    [
        [1, 1, 1, 0, 0],
        [1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0],
    ],
    dtype=bool,
)


def test_positions_from_end_counts_back_from_last_real_item():
    expected = [
        [3, 2, 1, 0, 0],
        [1, 0, 0, 0, 0],
        [5, 4, 3, 2, 1],
        [0, 0, 0, 0, 0],
    ]
    positions = positions_from_end(tf.constant(MASK))
    assert positions.dtype == tf.int32
    np.testing.assert_array_equal(positions.numpy(), expected)


def test_positions_from_end_accepts_integer_mask():
    np.testing.assert_array_equal(
        positions_from_end(tf.constant(MASK.astype(np.int32))).numpy(),
        positions_from_end(tf.constant(MASK)).numpy(),
    )


def test_last_real_index_is_length_minus_one_and_zero_for_empty_row():
    index = last_real_index(tf.constant(MASK))
    assert index.dtype == tf.int32
    np.testing.assert_array_equal(index.numpy(), [2, 0, 4, 0])


def test_gather_last_picks_last_real_row_not_last_column():
    x = np.arange(4 * 5 * 2, dtype=np.float32).reshape(4, 5, 2)
    expected = x[[0, 1, 2, 3], [2, 0, 4, 0]]
    np.testing.assert_array_equal(gather_last(tf.constant(x), tf.constant(MASK)).numpy(), expected)


def test_masked_softmax_by_hand():
    # softmax([1, 2]) = [1, e] / (1 + e) = [0.26894142, 0.73105858]; the masked 3 gets 0.
    weights = masked_softmax(tf.constant([[1.0, 2.0, 3.0]]), tf.constant([[True, True, False]]))
    np.testing.assert_allclose(weights.numpy(), [[0.26894142, 0.73105858, 0.0]], rtol=1e-6)


def test_masked_softmax_fully_masked_row_is_zero_not_nan():
    logits = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    weights = masked_softmax(logits, tf.constant([[False, False], [True, False]]))
    np.testing.assert_array_equal(weights.numpy(), [[0.0, 0.0], [1.0, 0.0]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_softmax_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(4, 5)).astype(np.float32)
    expected = np.zeros_like(logits, dtype=np.float64)
    for row, real in enumerate(MASK):
        if real.any():
            shifted = np.exp(logits[row, real] - logits[row, real].max())
            expected[row, real] = shifted / shifted.sum()
    weights = masked_softmax(tf.constant(logits), tf.constant(MASK))
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype, unit_roundoff", [(tf.bfloat16, 2.0**-8), (tf.float16, 2.0**-11)])
def test_masked_softmax_of_16_bit_logits_rounds_only_the_weights(dtype, unit_roundoff):
    # Quarters in [-4, 4) are exact in both 16-bit types, so the logits are not rounded;
    # normalised in float32, each weight is the float32 one rounded once.
    logits = np.random.default_rng(3).integers(-16, 16, size=MASK.shape) / 4.0
    exact = masked_softmax(tf.constant(logits, tf.float32), tf.constant(MASK)).numpy()
    weights = masked_softmax(tf.constant(logits, dtype), tf.constant(MASK))
    assert weights.dtype == dtype
    np.testing.assert_allclose(tf.cast(weights, tf.float32).numpy(), exact, rtol=unit_roundoff)
    np.testing.assert_array_equal(weights.numpy()[~MASK], 0.0)  # the empty row too, not NaN


def test_helpers_trace_once_with_unknown_batch_and_length():
    def helpers(x, mask):
        return positions_from_end(mask), last_real_index(mask), gather_last(x, mask)

    # MASK[:2, :3] keeps rows of length 3 and 1, so their last real columns are 2 and 0.
    cases = [(4, 5, [2, 0, 4, 0]), (2, 3, [2, 0])]
    argument_sets = [
        {"x": np.arange(batch * length * 2, dtype=np.float32).reshape(batch, length, 2),
         "mask": MASK[:batch, :length]}
        for batch, length, _ in cases]
    outputs = assert_traces_once(helpers, argument_sets)
    for (positions, index, last), arguments, (batch, _, expected_index) in zip(
            outputs, argument_sets, cases):
        np.testing.assert_array_equal(positions.numpy(),
                                      positions_from_end(arguments["mask"]).numpy())
        np.testing.assert_array_equal(index.numpy(), expected_index)
        np.testing.assert_array_equal(last.numpy(),
                                      arguments["x"][np.arange(batch), expected_index])
