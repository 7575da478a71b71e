"""MTDModel: the whole forward pass against NumPy, padding, variants, serialisation.

The NumPy reference below is written from DESIGN.md section 2 alone and reads only the model's
weights (by their paths) and its shape (variant, blocks, heads); the settings under test
(decay, product gate, max_len) are handed to it by the tests, never read back from the
model. It works on each session's real items, one session at a time, so it never sees
padding at all.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.models.mtd import MTDModel
from mtd_tf.models.mtd_config import VARIANTS
from tests.layers.harness import run_layer_test
from tests.layers.test_repeat_explore import numpy_log_probabilities
from tests.models import protocol_checks as checks
from tests.models.numpy_reference import attention_block
from tests.models.numpy_reference import model_weights
from tests.models.numpy_reference import sigmoid
from tests.models.numpy_reference import softmax
from tests.models.protocol_checks import scores_of

NUM_ITEMS = 40
DIM = 8
MAX_LEN = 7
FULL_VARIANTS = ("mtd", "lo", "ga")
# Right-padded sessions of lengths 3, 1, 7, 5 (the second one is length 1).
SESSIONS = np.array([
    [5, 6, 7, 0, 0, 0, 0],
    [9, 0, 0, 0, 0, 0, 0],
    [1, 40, 3, 3, 12, 8, 2],
    [22, 17, 5, 31, 39, 0, 0],
])
# Lengths 10 and 3: longer than MAX_LEN, which the data never sends but the model accepts.
LONG_SESSIONS = np.array([
    [3, 14, 15, 9, 26, 5, 35, 8, 9, 7],
    [5, 6, 7, 0, 0, 0, 0, 0, 0, 0],
])


# ----------------------------------------------------------------------------- reference
def numpy_session(weights, session, session_encoder="self_attention", num_blocks=1,
                  num_heads=1, decay=0.75, max_len=MAX_LEN, use_product=False):
    """q and the attention weights for one session given as its real items (oldest first)."""
    table = weights["item_embeddings"]  # [M, d], row m-1 = item m
    items = np.asarray(session)
    length = len(items)
    from_end = length - np.arange(length)  # I - i + 1 for i = 1..I: [I, I-1, ..., 1]
    x = table[items - 1]  # [I, d]
    attention = {}
    if session_encoder == "self_attention":
        x = x + weights["position_embeddings"][np.minimum(from_end, max_len)]
        for block in range(num_blocks):
            x, attention[f"self_attention_{block}"] = attention_block(
                x, weights, f"self_attention_{block}", num_heads)
    last = x[-1]  # x_I, the last real item
    query = last @ weights["aggregation/last_item_kernel"]  # W3 x_I, [d]
    keys = x @ weights["aggregation/item_kernel"]  # W4 x_i, [I, d]
    # Eq. 3 adds inside the sigmoid; the reference's product form multiplies.
    gate = sigmoid(query * keys if use_product else query + keys)  # [I, d]
    alpha = softmax(gate @ weights["aggregation/score_vector"])  # eq. 3
    attention["aggregation"] = alpha
    parts = [last, alpha @ x]
    if session_encoder != "vanilla":
        omega = softmax(-decay * from_end)  # eq. 4
        attention["decay_pooling"] = omega
        parts.append(omega @ x)
    q = np.concatenate(parts) @ weights["w_c/kernel"]
    return q, attention


def numpy_queries(model, item_ids, **settings):
    """q for every right-padded row of `item_ids`: float64 [batch, d].

    `settings` (decay, max_len, use_product) go to `numpy_session` as given, so a test
    states them itself instead of trusting the model to have passed them on.
    """
    weights = model_weights(model)
    return np.stack([
        numpy_session(weights, row[row > 0], model.session_encoder, model.num_blocks,
                      model.num_heads, **settings)[0]
        for row in np.asarray(item_ids)])


def numpy_scores(model, item_ids, **settings):
    """z = q E^T for every right-padded row of `item_ids`: float64 [batch, M]."""
    return numpy_queries(model, item_ids, **settings) @ model_weights(model)["item_embeddings"].T


# ----------------------------------------------------------------------------- fixtures
def make_model(seed, variant="mtd", num_blocks=1, num_heads=1, dropout=0.0, **settings):
    """A built model whose every weight (biases, LayerNorm scales included) is random."""
    return checks.random_model(MTDModel, seed, num_items=NUM_ITEMS, embedding_dim=DIM,
                               max_len=MAX_LEN, num_blocks=num_blocks, num_heads=num_heads,
                               dropout=dropout, session_encoder=VARIANTS[variant][0],
                               **settings)


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("variant", ["mtd", "va", "at"])
def test_forward_matches_numpy(seed, variant):
    model = make_model(seed, variant)
    scores = scores_of(model, SESSIONS, training=False)
    assert scores.shape == (len(SESSIONS), NUM_ITEMS)
    np.testing.assert_allclose(scores, numpy_scores(model, SESSIONS), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [3, 4])
def test_forward_matches_numpy_with_two_blocks_and_two_heads(seed):
    model = make_model(seed, num_blocks=2, num_heads=2)
    np.testing.assert_allclose(scores_of(model, SESSIONS), numpy_scores(model, SESSIONS),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("variant", ["mtd", "va", "at"])
def test_forward_matches_numpy_with_product_gate_and_other_decay(seed, variant):
    # The reference is told 0.5 and the product itself: a model that dropped either setting
    # on the way to its sublayers would score with the sum and 0.75 and fail here.
    model = make_model(seed, variant, decay=0.5, aggregation_product=True)
    np.testing.assert_allclose(scores_of(model, SESSIONS),
                               numpy_scores(model, SESSIONS, decay=0.5, use_product=True),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_positions_beyond_max_len_reuse_the_last_position_embedding(seed):
    # Counted from the end, the 10 items sit at 10, 9, ..., 1; the table has rows 0..7, so
    # the clamp sends them to 7, 7, 7, 7, 6, ..., 1, while decay pooling still weighs all 10.
    # Without the clamp the reference's lookup (and the model's, on CPU) runs off the table.
    assert LONG_SESSIONS.shape[1] > MAX_LEN
    model = make_model(seed)
    np.testing.assert_allclose(scores_of(model, LONG_SESSIONS),
                               numpy_scores(model, LONG_SESSIONS, max_len=7),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("variant", ["mtd", "va", "at"])
def test_extra_padding_columns_do_not_change_scores(seed, variant):
    checks.assert_extra_padding_changes_nothing(make_model(seed, variant), SESSIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_last_real_item_is_the_query(seed):
    model = make_model(seed)
    checks.assert_last_real_item_is_used(model, lambda ids: numpy_scores(model, ids))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("variant", ["mtd", "va", "at"])
def test_length_one_sessions(seed, variant):
    model = make_model(seed, variant)
    ids = [[9, 0, 0, 0], [40, 0, 0, 0]]
    np.testing.assert_allclose(scores_of(model, ids), numpy_scores(model, ids),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores_of(model, ids), scores_of(model, [[9], [40]]),
                               rtol=1e-5, atol=1e-5)
    _, weights = model.encode_session(tf.constant(ids), return_attention_scores=True)
    # One real item: it takes all the weight.
    np.testing.assert_allclose(weights["aggregation"].numpy(), [[1, 0, 0, 0]] * 2, atol=1e-6)


@pytest.mark.parametrize("variant", ["mtd", "lo", "ga", "va", "at"])
def test_variant_output_shape_and_sublayers(variant):
    model = make_model(0, variant)
    assert scores_of(model, SESSIONS).shape == (len(SESSIONS), NUM_ITEMS)
    full = variant in FULL_VARIANTS
    assert len(model.attention_blocks) == (1 if full else 0)
    assert hasattr(model, "position_embeddings") == full
    if full:
        assert tuple(model.position_embeddings.shape) == (MAX_LEN + 1, DIM)
    assert (model.decay_pooling is None) == (variant == "va")
    parts = 2 if variant == "va" else 3  # W_c maps [x_I ; x* (; p)] to d
    assert tuple(model.session_projection.kernel.shape) == (parts * DIM, DIM)
    assert tuple(model.item_embeddings.shape) == (NUM_ITEMS, DIM)
    paths = {w.path.split("/", 1)[1] for w in model.weights}
    assert any(p.startswith("self_attention_0/") for p in paths) == full


@pytest.mark.parametrize("variant", ["mtd", "va", "at"])
def test_encode_session_returns_attention_weights(variant):
    model = make_model(5, variant)
    session, weights = model.encode_session(tf.constant(SESSIONS), return_attention_scores=True)
    expected_keys = {"aggregation"} | ({"decay_pooling"} if variant != "va" else set())
    expected_keys |= {"self_attention_0"} if variant == "mtd" else set()
    assert set(weights) == expected_keys
    assert session.shape == (len(SESSIONS), DIM)
    reference = model_weights(model)
    batch, width = SESSIONS.shape
    for row, ids in enumerate(SESSIONS):
        real = ids[ids > 0]
        length = len(real)
        q, numpy_weights = numpy_session(reference, real, VARIANTS[variant][0])
        np.testing.assert_allclose(session[row].numpy(), q, rtol=1e-4, atol=1e-4)
        for name in ("aggregation", "decay_pooling"):
            if name in weights:
                got = weights[name].numpy()
                assert got.shape == (batch, width)
                np.testing.assert_allclose(got[row, :length], numpy_weights[name], atol=1e-5)
                assert np.all(got[row, length:] == 0)
        if "self_attention_0" in weights:
            got = weights["self_attention_0"].numpy()
            assert got.shape == (batch, 1, width, width)
            np.testing.assert_allclose(got[row, :, :length, :length],
                                       numpy_weights["self_attention_0"], atol=1e-5)
            assert np.all(got[row, :, length:, :] == 0) and np.all(got[row, :, :, length:] == 0)
    # Without the flag, only q.
    plain = model.encode_session(tf.constant(SESSIONS))
    np.testing.assert_allclose(plain.numpy(), session.numpy())


def test_decay_pooling_weights_are_the_documented_numbers():
    model = make_model(0, "at")
    _, weights = model.encode_session(tf.constant([[5, 6, 7, 0]]), return_attention_scores=True)
    # omega_i ∝ exp(-0.75 * (I - i + 1)) for I = 3: exp(-2.25), exp(-1.5), exp(-0.75).
    raw = np.exp([-2.25, -1.5, -0.75])
    np.testing.assert_allclose(weights["decay_pooling"].numpy(), [list(raw / raw.sum()) + [0]],
                               atol=1e-6)


@pytest.mark.parametrize("variant", ["mtd", "va", "at"])
def test_get_config_round_trip(variant):
    model = make_model(7, variant, decay=0.5, aggregation_product=True, score_scale=4.0)
    checks.assert_config_round_trip(model, {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "max_len": MAX_LEN,
        "session_encoder": VARIANTS[variant][0], "decay": 0.5, "aggregation_product": True,
        "score_scale": 4.0}, SESSIONS)


def test_keras_serialize_deserialize_and_keras_file(tmp_path):
    model = make_model(8)
    checks.assert_keras_serialization_round_trip(model, SESSIONS)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(scores_of(loaded, SESSIONS), scores_of(model, SESSIONS))


@pytest.mark.parametrize("variant", ["mtd", "va"])
def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path, variant):
    # Layers kept in a Python list (the attention blocks) must be checkpoint dependencies.
    checks.assert_checkpoint_restores_every_weight(
        make_model(9, variant, num_blocks=2), make_model(10, variant, num_blocks=2),
        SESSIONS, tmp_path)


def test_dropout_only_in_training():
    model = make_model(0, dropout=0.5)
    checks.assert_dropout_only_in_training(model, SESSIONS,
                                           lambda ids: numpy_scores(model, ids))


@pytest.mark.parametrize("kwargs", [
    dict(num_items=0), dict(session_encoder="xx"), dict(dropout=1.0), dict(embedding_dim=0),
    dict(num_blocks=-1), dict(max_len=0),
])
def test_constructor_rejects_bad_arguments(kwargs):
    arguments = dict(num_items=NUM_ITEMS, embedding_dim=DIM) | kwargs
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        MTDModel(**arguments)


@pytest.mark.parametrize("variant", ["mtd", "va"])
def test_score_scale_gives_scaled_cosines(variant):
    scale = 12.0
    model = make_model(9, variant, score_scale=scale)
    expected = numpy_scores(model, SESSIONS)  # q E^T, unnormalised
    query_norms = np.linalg.norm(numpy_queries(model, SESSIONS), axis=1)
    item_norms = np.linalg.norm(model_weights(model)["item_embeddings"], axis=1)
    expected = scale * expected / query_norms[:, None] / item_norms[None, :]
    actual = scores_of(model, SESSIONS)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(actual).max() <= scale * (1 + 1e-5)


def test_negative_score_scale_is_refused():
    with pytest.raises(ValueError, match="score_scale"):
        MTDModel(num_items=NUM_ITEMS, score_scale=-1.0)


@pytest.mark.parametrize("variant, num_trainable_weights", [
    # E, P, the block's (W_Q, W_K, W_V, two FFN kernels and biases, two LayerNorms' gamma and
    # beta: 11), the aggregation's (W3, W4, q: 3), W_c.
    ("mtd", 2 + 11 + 3 + 1),
    ("va", 1 + 3 + 1),  # E, the aggregation, W_c
    ("at", 1 + 3 + 1),  # pooling has no weights
])
def test_model_passes_the_layer_harness(variant, num_trainable_weights):
    run_layer_test(
        MTDModel, dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=MAX_LEN, dropout=0.0,
                       session_encoder=VARIANTS[variant][0]),
        {"item_ids": SESSIONS}, resized_input_data={"item_ids": SESSIONS[:2, :3]},
        expected_output_shape=(len(SESSIONS), NUM_ITEMS),
        expected_num_trainable_weights=num_trainable_weights,
        reference=lambda model, item_ids: numpy_scores(model, item_ids.numpy()),
        rtol=1e-4, atol=1e-4,
        # The model stacks up to six layers' rounding (block, aggregation, pooling, W_c,
        # scores): measured up to 0.024 (6 bfloat16 roundoffs) on scores up to 2.7.
        precision_tolerance_scale=3.0)


@pytest.mark.parametrize("from_scores", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_repeat_head_outputs_the_log_probabilities_of_its_mixture(seed, from_scores):
    model = make_model(seed, repeat_head=True, repeat_from_scores=from_scores)
    queries = numpy_queries(model, SESSIONS)
    table = model_weights(model)["item_embeddings"]
    expected = numpy_log_probabilities(model.repeat_head, SESSIONS, queries, table,
                                       queries @ table.T)
    np.testing.assert_allclose(model(SESSIONS).numpy(), expected, rtol=1e-4, atol=1e-4)
    revived = MTDModel.from_config(model.get_config())
    assert revived.get_config()["repeat_head"] is True and revived.repeat_head is not None
    assert revived.get_config()["repeat_from_scores"] is from_scores
    assert revived.repeat_head.from_scores is from_scores
    assert make_model(seed).repeat_head is None  # the paper's output stays the default


def test_the_repeat_head_model_passes_the_layer_harness():
    run_layer_test(
        MTDModel, dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=MAX_LEN, dropout=0.0,
                       repeat_head=True),
        {"item_ids": SESSIONS}, resized_input_data={"item_ids": SESSIONS[:2, :3]},
        expected_output_shape=(len(SESSIONS), NUM_ITEMS),
        expected_num_trainable_weights=2 + 11 + 3 + 1 + 5,  # the full model's, the head's
        reference=lambda model, item_ids: _head_reference(model, item_ids.numpy()),
        rtol=1e-4, atol=1e-4, precision_tolerance_scale=3.0)


def _head_reference(model, item_ids):
    queries = numpy_queries(model, item_ids)
    table = model.item_embeddings.numpy().astype(np.float64)
    return numpy_log_probabilities(model.repeat_head, item_ids, queries, table, queries @ table.T)
