"""SASRecModel: the forward pass against NumPy, padding, the window, serialisation, config.

The NumPy reference is written from the equations of SASRec's released code (kang205/SASRec
`model.py`, `modules.py`) as the model's docstring states them, reading only the model's
weights by path. It works on each session's real items alone, oldest first, so it never sees
padding; positions are counted from the end, as in the code's left-padded window.
"""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.models.sasrec import SASRecConfig
from mtd_tf.models.sasrec import SASRecModel
from tests.layers.harness import run_layer_test
from tests.models import protocol_checks as checks
from tests.models.numpy_reference import layer_norm
from tests.models.numpy_reference import model_weights
from tests.models.numpy_reference import softmax
from tests.models.protocol_checks import SESSIONS  # lengths 3, 1, 5, 2
from tests.models.protocol_checks import scores_of

NUM_ITEMS = 9
DIM = 8
MAX_LEN = 5


# ----------------------------------------------------------------------------- reference
def numpy_block(x, weights, prefix, num_heads):
    """One block on the real rows x [I, d] of a session."""
    length, dim = x.shape
    head_dim = dim // num_heads

    def dense(inputs, name):
        return inputs @ weights[f"{prefix}/{name}/kernel"] + weights[f"{prefix}/{name}/bias"]

    def norm(inputs, name):
        return layer_norm(inputs, weights[f"{prefix}/{name}/gamma"],
                          weights[f"{prefix}/{name}/beta"], 1e-8)

    queries = norm(x, "attention_norm")  # only the queries are normalised
    query, key, value = dense(queries, "query"), dense(x, "key"), dense(x, "value")
    causal = np.tril(np.ones((length, length), bool))  # key j visible to query i iff j <= i
    heads = []
    for head in range(num_heads):
        columns = slice(head * head_dim, (head + 1) * head_dim)
        logits = query[:, columns] @ key[:, columns].T / np.sqrt(head_dim)
        heads.append(softmax(np.where(causal, logits, -np.inf)) @ value[:, columns])
    hidden = norm(queries + np.concatenate(heads, axis=1), "ffn_norm")  # residual on queries
    return hidden + dense(np.maximum(dense(hidden, "ffn_inner"), 0.0), "ffn_outer")


def numpy_query(weights, session, num_blocks, num_heads, max_len):
    """q for one session given as its real items (oldest first)."""
    items = np.asarray(session)[-max_len:]  # the window of the last max_len clicks
    table = weights["item_embeddings"]  # [M, d], row m-1 = item m
    from_end = len(items) - np.arange(len(items))  # I - i + 1: [I, ..., 1]
    x = table[items - 1] * np.sqrt(table.shape[1]) + weights["position_embeddings"][from_end - 1]
    for block in range(num_blocks):
        x = numpy_block(x, weights, f"sasrec_block_{block}", num_heads)
    out = layer_norm(x, weights["final_norm/gamma"], weights["final_norm/beta"], 1e-8)
    return out[-1]  # the last real click's row


def numpy_scores(model, item_ids, num_blocks, num_heads, max_len=MAX_LEN):
    """z = q E^T for every right-padded row: float64 [batch, M]. The shape settings are
    given by the test, not read back from the model."""
    weights = model_weights(model)
    queries = np.stack([numpy_query(weights, row[row > 0], num_blocks, num_heads, max_len)
                        for row in np.asarray(item_ids)])
    return queries @ weights["item_embeddings"].T


# ----------------------------------------------------------------------------- fixtures
def make_model(seed, num_blocks=2, num_heads=1, dropout=0.0, max_len=MAX_LEN, **settings):
    """A built model whose every weight (biases, LayerNorm scales included) is random."""
    return checks.random_model(SASRecModel, seed, num_items=NUM_ITEMS, embedding_dim=DIM,
                               max_len=max_len, num_blocks=num_blocks, num_heads=num_heads,
                               dropout=dropout, **settings)


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_blocks, num_heads", [(2, 1), (1, 2), (3, 4)])
def test_forward_matches_numpy(seed, num_blocks, num_heads):
    model = make_model(seed, num_blocks=num_blocks, num_heads=num_heads)
    scores = scores_of(model, SESSIONS, training=False)
    assert scores.shape == (len(SESSIONS), NUM_ITEMS)
    np.testing.assert_allclose(scores, numpy_scores(model, SESSIONS, num_blocks, num_heads),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_clicks_before_the_window_are_dropped(seed):
    # max_len 3: of [1, 2, 3, 4, 8] only [3, 4, 8] is read, with positions 3, 2, 1.
    model = make_model(seed, max_len=3)
    np.testing.assert_allclose(scores_of(model, SESSIONS),
                               numpy_scores(model, SESSIONS, 2, 1, max_len=3),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores_of(model, [[1, 2, 3, 4, 8]]),
                               scores_of(model, [[3, 4, 8, 0, 0]]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_extra_padding_columns_do_not_change_scores(seed):
    checks.assert_extra_padding_changes_nothing(make_model(seed), SESSIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_real_item_is_the_one_used(seed):
    model = make_model(seed)
    checks.assert_last_real_item_is_used(model, lambda ids: numpy_scores(model, ids, 2, 1))


def test_an_all_padding_row_gives_finite_scores_and_leaves_the_others_alone():
    checks.assert_rows_without_items_are_finite(make_model(3), SESSIONS)


def test_attention_weights_respect_causality_and_padding():
    model = make_model(4)
    _, weights = model.encode_session(tf.constant(SESSIONS), return_attention_scores=True)
    assert set(weights) == {"sasrec_block_0", "sasrec_block_1"}
    for block_weights in weights.values():
        block_weights = block_weights.numpy()  # [batch, heads, query, key]
        assert block_weights.shape == (len(SESSIONS), 1, MAX_LEN, MAX_LEN)
        assert np.all(np.triu(block_weights, k=1) == 0)  # no key after its query
        for row, ids in enumerate(SESSIONS):
            length = int((ids > 0).sum())
            np.testing.assert_allclose(block_weights[row, 0, :length].sum(-1), 1.0, atol=1e-5)
            assert np.all(block_weights[row, :, length:, :] == 0)
            assert np.all(block_weights[row, :, :, length:] == 0)


def test_dropout_only_in_training():
    model = make_model(0, dropout=0.5)
    checks.assert_dropout_only_in_training(model, SESSIONS,
                                           lambda ids: numpy_scores(model, ids, 2, 1))


def test_get_config_round_trip():
    model = make_model(7, num_blocks=1, num_heads=2, dropout=0.3, score_scale=4.0)
    checks.assert_config_round_trip(model, {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "max_len": MAX_LEN, "num_blocks": 1,
        "num_heads": 2, "dropout": 0.3, "score_scale": 4.0, "repeat_head": False}, SESSIONS)


def test_keras_serialize_deserialize():
    checks.assert_keras_serialization_round_trip(make_model(8), SESSIONS)


def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path):
    # The blocks live in a Python list: they must be checkpoint dependencies all the same.
    checks.assert_checkpoint_restores_every_weight(make_model(9), make_model(10), SESSIONS,
                                                   tmp_path)


def test_defaults_are_the_papers():
    config = SASRecConfig()
    assert (config.num_blocks, config.num_heads, config.dropout, config.max_len,
            config.embedding_dim) == (2, 1, 0.5, 50, 100)
    model = config.build(NUM_ITEMS)
    assert tuple(model.position_embeddings.shape) == (50, 100)
    assert len(model.attention_blocks) == 2


@pytest.mark.parametrize("field, value", [
    ("dropout", 1.0), ("num_heads", 0), ("num_blocks", -1), ("max_len", 0),
    ("embedding_dim", 0), ("num_heads", 3),  # 3 does not divide d = 100
])
def test_the_config_rejects_bad_values_naming_the_field(field, value):
    checks.assert_settings_rejected(SASRecConfig, {field: value}, field)


def test_model_passes_the_layer_harness():
    run_layer_test(
        SASRecModel, dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=MAX_LEN,
                          num_blocks=1, num_heads=2, dropout=0.0),
        {"item_ids": SESSIONS}, resized_input_data={"item_ids": SESSIONS[:2, :3]},
        expected_output_shape=(len(SESSIONS), NUM_ITEMS),
        # E, P; the block's 2 LayerNorms (2 each) and 5 dense layers (2 each); final norm.
        expected_num_trainable_weights=2 + 14 + 2,
        reference=lambda model, item_ids: numpy_scores(model, item_ids.numpy(), 1, 2),
        rtol=1e-4, atol=1e-4, precision_tolerance_scale=3.0)
