"""AttentiveAggregation (eq. 3) against a NumPy reference."""

import keras
import numpy as np
import pytest

from mtd_tf.layers import AttentiveAggregation
from tests.layers.harness import LENGTHS, MAX_LEN, padding_mask, run_layer_test, session_batch
from tests.layers.harness import with_random_weights

DIM = 4


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_aggregation(x, lengths, w3, w4, g, use_product):
    """Independent eq. 3, one session at a time, on its real rows only."""
    pooled = np.zeros((x.shape[0], x.shape[2]))
    alpha = np.zeros(x.shape[:2])
    for row, length in enumerate(lengths):
        items = x[row, :length].astype(np.float64)  # [I, d]
        query = items[-1] @ w3  # W3 x_I: the last real item
        keys = items @ w4  # W4 x_i
        gate = _sigmoid(query * keys) if use_product else _sigmoid(query + keys)
        logits = gate @ g
        weights = np.exp(logits - logits.max())
        alpha[row, :length] = weights / weights.sum()
        pooled[row] = alpha[row, :length] @ items
    return pooled, alpha


def _random_layer(seed, use_product=False):
    """A built layer whose weights are random (not the initializer's), so mistakes show."""
    return with_random_weights(AttentiveAggregation(use_product=use_product), (None, None, DIM),
                               np.random.default_rng(seed), scale=1.0)


def _weights(layer):
    return layer.last_item_kernel.numpy(), layer.item_kernel.numpy(), layer.score_vector.numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("use_product", [False, True])
def test_matches_numpy_on_mixed_lengths(seed, use_product):
    layer = _random_layer(seed, use_product)
    x = np.random.default_rng(seed + 10).normal(size=(len(LENGTHS), MAX_LEN, DIM))
    x = x.astype(np.float32)
    pooled, alpha = layer(x, mask=padding_mask(LENGTHS), training=False,
                          return_attention_scores=True)
    expected_pooled, expected_alpha = _numpy_aggregation(x, LENGTHS, *_weights(layer), use_product)
    np.testing.assert_allclose(pooled.numpy(), expected_pooled, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(alpha.numpy(), expected_alpha, rtol=1e-5, atol=1e-6)


def test_length_one_session_returns_its_item():
    x = np.random.default_rng(0).normal(size=(1, MAX_LEN, DIM)).astype(np.float32)
    pooled, alpha = _random_layer(0)(x, mask=padding_mask([1]), return_attention_scores=True)
    np.testing.assert_allclose(pooled.numpy(), x[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(alpha.numpy(), [[1.0, 0.0, 0.0, 0.0, 0.0]])


def test_uses_last_real_item_not_last_column():
    # Items [5, 6, 7, 0, 0] looked up in a table whose row 0 (padding) is zero: x_I must
    # be row 2 (item 7); using column 4 (the zero vector) gives a different answer.
    table = np.random.default_rng(5).normal(size=(8, DIM)).astype(np.float32)
    table[0] = 0.0
    item_ids = np.array([[5, 6, 7, 0, 0]])
    x = table[item_ids]
    layer = _random_layer(5)
    pooled = layer(x, mask=item_ids > 0).numpy()
    w3, w4, g = _weights(layer)
    expected, _ = _numpy_aggregation(x, [3], w3, w4, g, use_product=False)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-5)

    # What a last-column implementation would compute: query W3 x_5 = 0.
    gate = _sigmoid(x[0, :3] @ w4)
    weights = np.exp(gate @ g)
    last_column_answer = (weights / weights.sum()) @ x[0, :3]
    assert np.abs(pooled[0] - last_column_answer).max() > 1e-2


def test_keras_mask_from_embedding_is_used_and_consumed():
    # Embedding(mask_zero=True) -> aggregation: the Keras mask must act as the explicit one
    # and stop here, since the time axis it describes is pooled away.
    item_ids = keras.Input(shape=(None,), dtype="int32")
    embedding = keras.layers.Embedding(8, DIM, mask_zero=True)
    layer = _random_layer(3)
    model = keras.Model(item_ids, layer(embedding(item_ids)))
    # Unit-scale vectors for items and padding (row 0) alike, so reading padding shows.
    embedding.embeddings.assign(np.random.default_rng(3).normal(size=(8, DIM)))

    ids = np.array([[5, 6, 7, 0, 0], [4, 0, 0, 0, 0], [1, 2, 3, 4, 5]], np.int32)
    x = embedding(ids)
    from_keras_mask = model(ids).numpy()
    np.testing.assert_allclose(from_keras_mask, layer(x, mask=ids > 0).numpy(),
                               rtol=1e-6, atol=1e-6)
    ignored = layer(x, mask=np.ones(ids.shape, bool)).numpy()  # what ignoring it would give
    for padded_row in (0, 1):
        assert np.abs(from_keras_mask[padded_row] - ignored[padded_row]).max() > 1e-3
    assert layer.compute_mask(x, embedding.compute_mask(ids)) is None


def test_empty_row_gives_zeros_not_nan():
    pooled, alpha = _random_layer(0)(
        np.ones((1, 3, DIM), np.float32), mask=np.zeros((1, 3), bool), return_attention_scores=True
    )
    np.testing.assert_array_equal(pooled.numpy(), np.zeros((1, DIM)))
    np.testing.assert_array_equal(alpha.numpy(), np.zeros((1, 3)))


@pytest.mark.parametrize("use_product", ["yes", 1, None])
def test_rejects_non_bool_use_product(use_product):
    with pytest.raises(ValueError, match="use_product"):
        AttentiveAggregation(use_product=use_product)


# The defaults (use_product=False) and the other gate, under a name of its own.
@pytest.mark.parametrize("init_kwargs", [{}, {"use_product": True, "name": "aggregation"}])
def test_layer_harness(init_kwargs):
    rng = np.random.default_rng(8)

    def reference(layer, x, mask):
        pooled, _ = _numpy_aggregation(np.asarray(x), np.sum(mask, axis=1), *_weights(layer),
                                       layer.use_product)
        return pooled

    run_layer_test(
        AttentiveAggregation, init_kwargs, session_batch(rng, DIM),
        resized_input_data=session_batch(rng, DIM, [2, 1], 2),
        expected_output_shape=(len(LENGTHS), DIM), expected_num_trainable_weights=3,
        reference=reference, rtol=1e-5, atol=1e-5)
