"""SASRecModel: the forward pass against NumPy, padding, the window, serialisation, config.

The NumPy reference is written from the equations of SASRec's released code (kang205/SASRec
`model.py`, `modules.py`) as the model's docstring states them, reading only the model's
weights by path. It works on each session's real items alone, oldest first, so it never sees
padding; positions are counted from the end, as in the code's left-padded window.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.errors import ConfigError
from mtd_tf.models.sasrec import SASRecConfig
from mtd_tf.models.sasrec import SASRecModel
from tests.layers.harness import run_layer_test
from tests.models.test_mtd import _layer_norm as layer_norm
from tests.models.test_mtd import _softmax as softmax
from tests.models.test_mtd import model_weights

NUM_ITEMS = 9
DIM = 8
MAX_LEN = 5
# Right-padded sessions of lengths 3, 1, 5, 4.
SESSIONS = np.array([
    [5, 6, 7, 0, 0],
    [9, 0, 0, 0, 0],
    [1, 2, 3, 4, 8],
    [3, 3, 9, 2, 0],
])


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
def make_model(seed, num_blocks=2, num_heads=1, dropout=0.0, max_len=MAX_LEN, **kwargs):
    """A built model whose every weight (biases, LayerNorm scales included) is random."""
    keras.utils.set_random_seed(seed)
    model = SASRecModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=max_len,
                        num_blocks=num_blocks, num_heads=num_heads, dropout=dropout, **kwargs)
    model.build()
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        scale = (0.5, 1.5) if weight.path.endswith("gamma") else None
        value = rng.uniform(*scale, weight.shape) if scale else rng.normal(0.0, 0.5, weight.shape)
        weight.assign(value.astype(np.float32))
    return model


def scores_of(model, item_ids, **kwargs):
    return model(tf.constant(item_ids, tf.int32), **kwargs).numpy()


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
    model = make_model(seed)
    padded = np.pad(SESSIONS, [[0, 0], [0, 4]])  # 4 more columns of 0
    np.testing.assert_allclose(scores_of(model, padded), scores_of(model, SESSIONS),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_real_item_is_the_one_used(seed):
    model = make_model(seed)
    three = scores_of(model, [[5, 6, 7, 0, 0]])
    # A model that read the last column would see padding in both rows and not tell them apart.
    assert np.abs(three - scores_of(model, [[5, 6, 0, 0, 0]])).max() > 1e-3
    np.testing.assert_allclose(three, scores_of(model, [[5, 6, 7]]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(three, numpy_scores(model, [[5, 6, 7]], 2, 1),
                               rtol=1e-4, atol=1e-4)


def test_an_all_padding_row_gives_finite_scores_and_leaves_the_others_alone():
    model = make_model(3)
    with_empty = scores_of(model, np.concatenate([SESSIONS, [[0, 0, 0, 0, 0]]]))
    assert np.isfinite(with_empty).all()
    np.testing.assert_allclose(with_empty[:-1], scores_of(model, SESSIONS), rtol=1e-5, atol=1e-5)


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
    inference = scores_of(model, SESSIONS, training=False)
    np.testing.assert_allclose(inference, numpy_scores(model, SESSIONS, 2, 1),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(scores_of(model, SESSIONS), inference)  # default: off
    assert np.abs(scores_of(model, SESSIONS, training=True) - inference).max() > 1e-3


def test_get_config_round_trip():
    model = make_model(7, num_blocks=1, num_heads=2, dropout=0.3, score_scale=4.0)
    config = model.get_config()
    assert {key: config[key] for key in (
        "num_items", "embedding_dim", "max_len", "num_blocks", "num_heads", "dropout",
        "score_scale", "repeat_head")} == {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "max_len": MAX_LEN, "num_blocks": 1,
        "num_heads": 2, "dropout": 0.3, "score_scale": 4.0, "repeat_head": False}
    clone = SASRecModel.from_config(config)
    clone.build()
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(scores_of(clone, SESSIONS), scores_of(model, SESSIONS))


def test_keras_serialize_deserialize():
    model = make_model(8)
    serialized = keras.saving.serialize_keras_object(model)
    assert serialized["registered_name"] == "mtd_tf>SASRecModel"
    clone = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(clone, SASRecModel) and clone.built
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(scores_of(clone, SESSIONS), scores_of(model, SESSIONS))


def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path):
    # The blocks live in a Python list: they must be checkpoint dependencies all the same.
    model = make_model(9)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = make_model(10)
    tf.train.Checkpoint(model=fresh).restore(path).assert_consumed()
    assert len(fresh.weights) == len(model.weights)
    for saved, restored in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
    np.testing.assert_array_equal(scores_of(fresh, SESSIONS), scores_of(model, SESSIONS))


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
    with pytest.raises(ConfigError, match=field):
        SASRecConfig(**{field: value})
    with pytest.raises(ValueError, match=field):
        SASRecModel(num_items=NUM_ITEMS, **{field: value})


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
