"""SelfAttentionBlock (eq. 1-2) against a NumPy reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.layers import PositionalDecayPooling, SelfAttentionBlock
from tests.layers.harness import LENGTHS, MAX_LEN, padding_mask, run_layer_test, session_batch
from tests.layers.harness import with_random_weights

DIM = 4
EPSILON = 1e-8  # the layer norm's epsilon (the reference's)


def _layer_norm(z, gamma, beta):
    mean = z.mean(axis=-1, keepdims=True)
    variance = z.var(axis=-1, keepdims=True)
    return gamma * (z - mean) / np.sqrt(variance + EPSILON) + beta


def _numpy_block(x, lengths, weights, num_heads, causal):
    """Independent eq. 1-2, one session at a time on its real rows; padding rows stay 0."""
    batch, max_len, dim = x.shape
    head_dim = dim // num_heads
    outputs = np.zeros((batch, max_len, dim))
    attention = np.zeros((batch, num_heads, max_len, max_len))
    for row, length in enumerate(lengths):
        items = x[row, :length].astype(np.float64)  # [I, d]
        heads = []
        for head in range(num_heads):
            columns = slice(head * head_dim, (head + 1) * head_dim)
            q = items @ weights["query"][:, columns]
            k = items @ weights["key"][:, columns]
            v = items @ weights["value"][:, columns]
            scores = q @ k.T / np.sqrt(head_dim)  # [I, I]
            if causal:
                scores = np.where(np.tril(np.ones((length, length), bool)), scores, -np.inf)
            a = np.exp(scores - scores.max(axis=1, keepdims=True))
            a /= a.sum(axis=1, keepdims=True)
            attention[row, head, :length, :length] = a
            heads.append(a @ v)
        context = np.concatenate(heads, axis=1)
        if num_heads > 1:
            context = context @ weights["attention_output"]
        hidden = _layer_norm(
            items + context, weights["attention_norm_gamma"], weights["attention_norm_beta"]
        )
        inner = np.maximum(hidden @ weights["ffn_inner_kernel"] + weights["ffn_inner_bias"], 0.0)
        feed_forward = inner @ weights["ffn_outer_kernel"] + weights["ffn_outer_bias"]
        outputs[row, :length] = _layer_norm(
            hidden + feed_forward, weights["ffn_norm_gamma"], weights["ffn_norm_beta"]
        )
    return outputs, attention


def _random_layer(seed, num_heads=1, causal=True, dropout=0.2):
    """A built layer with random weights (biases and norms too), so mistakes show."""
    return with_random_weights(
        SelfAttentionBlock(num_heads=num_heads, dropout=dropout, causal=causal),
        (None, None, DIM), np.random.default_rng(seed), scale=0.7)


def _weights(layer):
    weights = {
        "query": layer.query_dense.kernel.numpy(),
        "key": layer.key_dense.kernel.numpy(),
        "value": layer.value_dense.kernel.numpy(),
        "ffn_inner_kernel": layer.ffn_inner.kernel.numpy(),
        "ffn_inner_bias": layer.ffn_inner.bias.numpy(),
        "ffn_outer_kernel": layer.ffn_outer.kernel.numpy(),
        "ffn_outer_bias": layer.ffn_outer.bias.numpy(),
        "attention_norm_gamma": layer.attention_norm.gamma.numpy(),
        "attention_norm_beta": layer.attention_norm.beta.numpy(),
        "ffn_norm_gamma": layer.ffn_norm.gamma.numpy(),
        "ffn_norm_beta": layer.ffn_norm.beta.numpy(),
    }
    if layer.num_heads > 1:
        weights["attention_output"] = layer.output_dense.kernel.numpy()
    return weights


def _inputs(seed, lengths=LENGTHS, max_len=MAX_LEN):
    rng = np.random.default_rng(seed + 100)
    return rng.normal(size=(len(lengths), max_len, DIM)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_heads", [1, 2])
@pytest.mark.parametrize("causal", [True, False])
def test_matches_numpy_on_mixed_lengths(seed, num_heads, causal):
    layer = _random_layer(seed, num_heads, causal)
    x = _inputs(seed)
    outputs, attention = layer(x, mask=padding_mask(LENGTHS), training=False,
                               return_attention_scores=True)
    expected_outputs, expected_attention = _numpy_block(
        x, LENGTHS, _weights(layer), num_heads, causal
    )
    np.testing.assert_allclose(outputs.numpy(), expected_outputs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(attention.numpy(), expected_attention, rtol=1e-5, atol=1e-6)


def test_single_head_has_no_output_projection():
    assert not hasattr(_random_layer(0, num_heads=1), "output_dense")
    assert len(_random_layer(0, num_heads=1).weights) == 11
    assert len(_random_layer(0, num_heads=2).weights) == 12


def test_length_one_session_attends_to_itself():
    layer = _random_layer(3)
    x = _inputs(3, [1])
    outputs, attention = layer(x, mask=padding_mask([1]), return_attention_scores=True)
    expected, _ = _numpy_block(x, [1], _weights(layer), 1, True)
    np.testing.assert_allclose(outputs.numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(attention.numpy()[0, 0, 0], [1.0, 0.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("causal", [True, False])
def test_padding_rows_are_zero(seed, causal):
    mask = padding_mask(LENGTHS)
    outputs = _random_layer(seed, num_heads=2, causal=causal)(_inputs(seed), mask=mask).numpy()
    np.testing.assert_array_equal(outputs[~mask], 0.0)


def test_empty_row_gives_zeros_not_nan():
    outputs, attention = _random_layer(0)(
        _inputs(0, [0, 2], 3), mask=padding_mask([0, 2], 3), return_attention_scores=True
    )
    assert np.isfinite(outputs.numpy()).all()
    np.testing.assert_array_equal(outputs.numpy()[0], 0.0)
    np.testing.assert_array_equal(attention.numpy()[0], 0.0)


def test_causal_later_items_do_not_change_earlier_outputs():
    layer = _random_layer(5)
    mask = padding_mask([5])
    x = _inputs(5, [5])
    changed = x.copy()
    changed[0, 3:] += 10.0  # items 4 and 5 change
    before, after = layer(x, mask=mask).numpy(), layer(changed, mask=mask).numpy()
    np.testing.assert_allclose(after[0, :3], before[0, :3], rtol=1e-6, atol=1e-6)
    assert np.abs(after[0, 3:] - before[0, 3:]).max() > 1e-2

    non_causal = _random_layer(5, causal=False)
    before, after = non_causal(x, mask=mask).numpy(), non_causal(changed, mask=mask).numpy()
    assert np.abs(after[0, :3] - before[0, :3]).max() > 1e-2


def test_training_applies_dropout_and_keeps_padding_zero():
    layer = _random_layer(6, dropout=0.5)
    x = _inputs(6)
    mask = padding_mask(LENGTHS)
    inference = layer(x, mask=mask, training=False).numpy()
    training = layer(x, mask=mask, training=True).numpy()
    assert np.abs(training - inference).max() > 1e-3
    np.testing.assert_array_equal(training[~mask], 0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0}, "num_heads"),
        ({"num_heads": 1.5}, "num_heads"),
        ({"num_heads": True}, "num_heads"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": 1.0}, "dropout"),
        ({"causal": "yes"}, "causal"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SelfAttentionBlock(**kwargs)


def test_rejects_width_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"d=4 is not divisible by num_heads=3"):
        SelfAttentionBlock(num_heads=3)(_inputs(0))


# Every constructor argument away from its default in one run or the other; one head
# (no output projection) and two.
@pytest.mark.parametrize("init_kwargs", [
    {"num_heads": 2, "causal": True, "dropout": 0.1},
    {"num_heads": 1, "causal": False, "dropout": 0.3, "name": "encoder"},
])
def test_layer_harness(init_kwargs):
    rng = np.random.default_rng(8)

    def reference(layer, x, mask):
        outputs, _ = _numpy_block(np.asarray(x), np.sum(mask, axis=1), _weights(layer),
                                  layer.num_heads, layer.causal)
        return outputs

    run_layer_test(
        SelfAttentionBlock, init_kwargs, session_batch(rng, DIM),
        resized_input_data=session_batch(rng, DIM, [2, 1], 2),
        expected_output_shape=(len(LENGTHS), MAX_LEN, DIM),
        expected_num_trainable_weights=11 + (init_kwargs["num_heads"] > 1),
        reference=reference, rtol=1e-4, atol=1e-5)


def test_keras_mask_from_embedding_is_honoured():
    # Embedding(mask_zero=True) -> block -> pooling: the Keras mask must give the same
    # numbers as passing the mask explicitly.
    item_ids = keras.Input(shape=(None,), dtype="int32")
    embedding = keras.layers.Embedding(8, DIM, mask_zero=True)
    block = SelfAttentionBlock(dropout=0.0)
    pooling = PositionalDecayPooling()
    model = keras.Model(item_ids, pooling(block(embedding(item_ids))))

    ids = np.array([[5, 6, 7, 0, 0], [1, 2, 3, 4, 5]], np.int32)
    explicit = pooling(block(embedding(ids), mask=ids > 0), mask=ids > 0)
    np.testing.assert_allclose(model(ids).numpy(), explicit.numpy(), rtol=1e-6, atol=1e-6)
    all_real = np.ones(ids.shape, bool)  # what ignoring the mask would give
    ignored = pooling(block(embedding(ids), mask=all_real), mask=all_real)
    assert np.abs(model(ids).numpy()[0] - ignored.numpy()[0]).max() > 1e-3


def test_mixed_precision_runs_in_float16_without_nan():
    # Sublayers share the block's dtype policy, so the residual sums agree in dtype.
    layer = SelfAttentionBlock(num_heads=2, dtype="mixed_float16")
    outputs = layer(_inputs(9, [0, 3]), mask=padding_mask([0, 3]))
    assert outputs.dtype == tf.float16
    assert np.isfinite(outputs.numpy()).all()
