"""CoSANModel and its session bank: the forward pass against NumPy, the FIFO writes,
padding, serialisation and the config's checks.

The NumPy reference below is written from the equations of `CoSANModel`'s docstring
(C1-C8). It reads the model's trainable weights by their paths, never the bank: the bank
it uses is the list of sessions the test wrote, kept FIFO by `numpy_bank`, and it works
on each session's real items, one session at a time, so it never sees padding.
"""

from fractions import Fraction

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.errors import ConfigError
from mtd_tf.models.cosan import CoSANConfig
from mtd_tf.models.cosan import CoSANModel
from mtd_tf.models.registry import MODEL_CONFIGS
from tests.models import protocol_checks as checks
from tests.models.numpy_reference import attention_block
from tests.models.numpy_reference import model_weights
from tests.models.numpy_reference import softmax
from tests.models.protocol_checks import scores_of

NUM_ITEMS = 9
DIM = 8
MAX_LEN = 5
MEMORY = 6
NEIGHBORS = 3
# Right-padded prefixes of lengths 3, 1, 5, 2 and 0 (all padding, as serving may send).
SESSIONS = np.array([
    [5, 6, 7, 0, 0],
    [9, 0, 0, 0, 0],
    [1, 2, 2, 3, 8],
    [4, 7, 0, 0, 0],
    [0, 0, 0, 0, 0],
])
# Training batches written into the bank, oldest row first: 9 sessions (one all padding,
# one longer than MAX_LEN) into 6 slots, so the bank wraps around.
TRAIN_BATCHES = [
    np.array([[1, 2, 3, 0, 0, 0, 0], [5, 6, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0],
              [7, 8, 9, 1, 2, 3, 4]]),
    np.array([[2, 3, 0], [6, 7, 5], [1, 9, 0]]),
    np.array([[4, 7, 0, 0], [2, 8, 8, 3], [5, 1, 0, 0]]),
]


# ----------------------------------------------------------------------------- reference
def numpy_bank(batches, memory_size=MEMORY, max_len=MAX_LEN):
    """The bank after writing `batches` in order, newest session first: each session's
    last max_len real items; rows without items are not written."""
    written = [row[row > 0][-max_len:] for batch in batches for row in np.asarray(batch)]
    written = [row for row in written if len(row)]
    return written[-memory_size:][::-1]


def neighbours_of(session, bank, num_neighbors=NEIGHBORS):
    """(C2)-(C3): for each item of `session`, the indices into `bank` (newest first) of
    its neighbourhood sessions, most similar first, ties to the newer."""
    items = set(session.tolist())
    chosen = []
    for item in session:
        candidates = [j for j, other in enumerate(bank) if item in set(other.tolist())]
        # sim^2 as an exact fraction: the order of sim, with exact ties.
        similarity = {j: Fraction(len(items & set(bank[j].tolist())) ** 2,
                                  len(items) * len(set(bank[j].tolist()))) for j in candidates}
        chosen.append(sorted(candidates, key=lambda j: (-similarity[j], j))[:num_neighbors])
    return chosen


def numpy_session(weights, session, bank, num_neighbors=NEIGHBORS, max_len=MAX_LEN,
                  num_blocks=1, num_heads=1):
    """q (C1-C7) of one session given as its real items (oldest first)."""
    table = weights["item_embeddings"]  # [M, d], row m-1 = item m
    num_items, dim = table.shape
    bank = [row[(row >= 1) & (row <= num_items)] for row in bank]
    bank = [row for row in bank if len(row)]
    session = np.asarray(session)
    length = len(session)
    items = table[session - 1]  # e_i, [I, d]
    bank_vectors = [table[row - 1].mean(axis=0) for row in bank]  # (C1)
    collaborative = np.zeros_like(items)
    for i, neighbours in enumerate(neighbours_of(session, bank, num_neighbors)):
        if not neighbours:
            continue
        vectors = np.stack([bank_vectors[j] for j in neighbours])  # [k, d]
        key = items[i] @ weights["collaborative_items/attention_kernel"]
        beta = softmax(vectors @ key / np.sqrt(dim))  # (C4)
        collaborative[i] = beta @ vectors
    from_end = length - np.arange(length)  # I - i + 1: [I, ..., 1]
    x = (np.concatenate([items, collaborative], axis=1) @ weights["fusion/kernel"]
         + weights["position_embeddings"][np.minimum(from_end, max_len)])  # (C5)
    for block in range(num_blocks):
        x, _ = attention_block(x, weights, f"self_attention_{block}", num_heads,
                               causal=False)  # (C6)
    return np.concatenate([x[-1], items.mean(axis=0)]) @ weights["w_o/kernel"]  # (C7)


def numpy_scores(model, item_ids, bank, **settings):
    """z = q E^T (C8) for every right-padded row of `item_ids`; zeros for an empty row."""
    weights = model_weights(model)
    queries = np.stack([
        numpy_session(weights, row[row > 0], bank, **settings) if (row > 0).any()
        else np.zeros(weights["item_embeddings"].shape[1])
        for row in np.asarray(item_ids)])
    return queries @ weights["item_embeddings"].T


# ----------------------------------------------------------------------------- fixtures
def make_model(seed, dropout=0.0, batches=(), **settings):
    """A built model with every trainable weight random and `batches` written into its
    bank by training calls."""
    model = checks.random_model(CoSANModel, seed, **(dict(
        num_items=NUM_ITEMS, embedding_dim=DIM, max_len=MAX_LEN, memory_size=MEMORY,
        num_neighbors=NEIGHBORS, dropout=dropout) | settings))
    for batch in batches:
        model.query_vectors(tf.constant(batch, tf.int32), training=True)
    return model


def reference(model, batches=TRAIN_BATCHES):
    """item ids -> the NumPy scores, read against the bank that `batches` wrote."""
    return lambda item_ids: numpy_scores(model, item_ids, numpy_bank(batches))


def bank_of(model):
    rows, filled = model.collaborative_items.bank_sessions()
    return [row[row > 0] for row, used in zip(rows.numpy(), filled.numpy()) if used]


def assert_same_bank(got, expected):
    assert len(got) == len(expected)
    for row, want in zip(got, expected):
        np.testing.assert_array_equal(row, want)


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("written", [0, 1, 3])  # empty, partly filled, wrapped around
def test_forward_matches_numpy(seed, written):
    batches = TRAIN_BATCHES[:written]
    model = make_model(seed, batches=batches)
    scores = scores_of(model, SESSIONS, training=False)
    assert scores.shape == (len(SESSIONS), NUM_ITEMS)
    np.testing.assert_allclose(scores, numpy_scores(model, SESSIONS, numpy_bank(batches)),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [3, 4])
def test_forward_matches_numpy_with_two_blocks_two_heads_and_two_neighbours(seed):
    model = make_model(seed, batches=TRAIN_BATCHES, num_blocks=2, num_heads=2,
                       num_neighbors=2)
    np.testing.assert_allclose(
        scores_of(model, SESSIONS),
        numpy_scores(model, SESSIONS, numpy_bank(TRAIN_BATCHES), num_neighbors=2,
                     num_blocks=2, num_heads=2),
        rtol=1e-4, atol=1e-4)


def test_neighbourhoods_are_the_documented_sessions():
    model = make_model(0)
    # Written oldest first, so the bank reads newest first: [1 2], [1 4], [1 3], [4 5], [1 2 3].
    model.collaborative_items.write(tf.constant([[1, 2, 3], [4, 5, 0], [1, 3, 0], [1, 4, 0],
                                                 [1, 2, 0]]))
    _, neighbours = model.encode_session(tf.constant([[1, 2, 6, 0]]), return_neighbors=True)
    indices, beta = neighbours["indices"].numpy()[0], neighbours["beta"].numpy()[0]
    # Session {1, 2, 6}: sim^2 = overlap^2 / (3 |u|) is 4/6 for [1 2], 4/9 for [1 2 3] and
    # 1/6 for [1 4] and [1 3] (a tie, which goes to the newer [1 4], index 1); [4 5] and
    # the item 6 (in no bank session) get nothing.
    assert indices[0].tolist() == [0, 4, 1]  # item 1: [1 2], [1 2 3], [1 4]
    assert indices[1][:2].tolist() == [0, 4]  # item 2: only two sessions hold it
    assert beta[1][2] == 0 and np.all(beta[2] == 0) and np.all(beta[3] == 0)  # 6, padding
    np.testing.assert_allclose(beta[:2].sum(axis=1), [1, 1], atol=1e-6)
    assert neighbours_of(np.array([1, 2, 6]), bank_of(model)) == [[0, 4, 1], [0, 4], []]


@pytest.mark.parametrize("seed", [0, 1])
def test_bank_ids_outside_the_catalogue_are_ignored(seed):
    # A bank carried over from a larger catalogue (a warm start) may hold ids > M.
    model = make_model(seed, batches=TRAIN_BATCHES[:1])
    bank = model.collaborative_items.memory_items
    stale = bank.numpy()  # slots 0-2 hold [1 2 3], [5 6], [9 1 2 3 4] (oldest first)
    stale[0] = [1, NUM_ITEMS + 4, 2, 3, 0]
    stale[1] = [NUM_ITEMS + 1, NUM_ITEMS + 2, 0, 0, 0]
    bank.assign(stale)
    expected_bank = [np.array([9, 1, 2, 3, 4]), np.array([1, 2, 3])]  # [5 6] is gone
    raw = model.collaborative_items.bank_sessions()[0].numpy()
    assert (raw > NUM_ITEMS).any()  # read as stored; the model filters them itself
    np.testing.assert_allclose(scores_of(model, SESSIONS),
                               numpy_scores(model, SESSIONS, expected_bank),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_extra_padding_columns_do_not_change_scores(seed):
    checks.assert_extra_padding_changes_nothing(make_model(seed, batches=TRAIN_BATCHES),
                                                SESSIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_last_real_item_is_the_one_used(seed):
    model = make_model(seed, batches=TRAIN_BATCHES)
    checks.assert_last_real_item_is_used(model, reference(model))


@pytest.mark.parametrize("written", [0, 3])
def test_all_padding_rows_give_finite_scores(written):
    model = make_model(0, batches=TRAIN_BATCHES[:written])
    checks.assert_rows_without_items_are_finite(model, SESSIONS)
    scores = scores_of(model, [[0, 0, 0], [3, 0, 0]])
    np.testing.assert_array_equal(scores[0], np.zeros(NUM_ITEMS))


# ----------------------------------------------------------------------------- the bank
def test_bank_writes_fifo_and_wraps_around():
    model = make_model(0)
    layer = model.collaborative_items
    assert bank_of(model) == [] and int(layer.num_written.numpy()) == 0
    model.query_vectors(tf.constant(TRAIN_BATCHES[0]), training=True)
    # Newest first; the all-padding row is skipped and the 7-item row keeps its last 5.
    assert_same_bank(bank_of(model), [[9, 1, 2, 3, 4], [5, 6], [1, 2, 3]])
    for count in (2, 3):
        model.query_vectors(tf.constant(TRAIN_BATCHES[count - 1]), training=True)
        assert_same_bank(bank_of(model), numpy_bank(TRAIN_BATCHES[:count]))
    # 3 + 3 + 3 sessions written: slot t mod 6 holds session t, so the 7th to 9th took
    # slots 0-2 back and the 4th is still in slot 3.
    assert int(layer.num_written.numpy()) == 9
    np.testing.assert_array_equal(layer.memory_items.numpy()[:4], [
        [4, 7, 0, 0, 0], [2, 8, 8, 3, 0], [5, 1, 0, 0, 0], [2, 3, 0, 0, 0]])
    assert_same_bank(bank_of(model), [[5, 1], [2, 8, 8, 3], [4, 7], [1, 9], [6, 7, 5],
                                      [2, 3]])


def test_a_batch_larger_than_the_bank_keeps_its_last_sessions():
    model = make_model(0)
    batch = np.arange(1, 9)[:, None] * np.array([[1, 0]])  # sessions [1], [2], ..., [8]
    model.collaborative_items.write(tf.constant(batch))
    assert_same_bank(bank_of(model), [[8], [7], [6], [5], [4], [3]])


def test_only_training_calls_write_the_bank():
    model = make_model(0, dropout=0.3, batches=TRAIN_BATCHES[:1])
    before = [w.numpy().copy() for w in model.non_trainable_weights]
    ids = tf.constant(SESSIONS)
    model(ids)
    model(ids, training=False)
    model.query_vectors(ids, training=False)
    tf.function(lambda x: model.query_vectors(x, training=False))(ids)
    for weight, old in zip(model.non_trainable_weights, before):
        np.testing.assert_array_equal(weight.numpy(), old)


def test_a_traced_training_step_writes_the_bank():
    model = make_model(0)
    step = tf.function(lambda x: model.query_vectors(x, training=True),
                       input_signature=[tf.TensorSpec([None, None], tf.int32)])
    for batch in TRAIN_BATCHES:
        step(tf.constant(batch, tf.int32))
    assert_same_bank(bank_of(model), numpy_bank(TRAIN_BATCHES))
    assert step.experimental_get_tracing_count() == 1


def test_training_changes_only_dropout_and_the_bank():
    model = make_model(0, batches=TRAIN_BATCHES[:2])
    evaluated = model.query_vectors(tf.constant(SESSIONS), training=False).numpy()
    # Without dropout a training call reads the bank as evaluation does, then writes.
    trained = model.query_vectors(tf.constant(SESSIONS), training=True).numpy()
    np.testing.assert_allclose(trained, evaluated, rtol=1e-5, atol=1e-5)
    assert_same_bank(bank_of(model), numpy_bank([*TRAIN_BATCHES[:2], SESSIONS]))


def test_dropout_only_acts_in_training():
    # The training call reads the same bank as the evaluation calls (it writes after).
    model = make_model(0, dropout=0.5, batches=TRAIN_BATCHES)
    checks.assert_dropout_only_in_training(model, SESSIONS, reference(model))


# ----------------------------------------------------------------------------- saving
def test_get_config_round_trip():
    # The weights copied include the bank.
    model = make_model(7, batches=TRAIN_BATCHES, num_blocks=2, num_neighbors=2,
                       score_scale=4.0)
    checks.assert_config_round_trip(model, {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "max_len": MAX_LEN, "num_blocks": 2,
        "num_heads": 1, "dropout": 0.0, "memory_size": MEMORY, "num_neighbors": 2,
        "score_scale": 4.0}, SESSIONS)


def test_keras_serialization_round_trip():
    checks.assert_keras_serialization_round_trip(make_model(1, batches=TRAIN_BATCHES),
                                                 SESSIONS)


def test_checkpoint_restores_every_weight_and_the_bank(tmp_path):
    checks.assert_checkpoint_restores_every_weight(
        make_model(2, batches=TRAIN_BATCHES, num_blocks=2), make_model(3, num_blocks=2),
        SESSIONS, tmp_path)


# ----------------------------------------------------------------------------- config
def test_registered_and_built_from_its_config():
    assert MODEL_CONFIGS["cosan"] is CoSANConfig
    config = CoSANConfig()
    assert (config.embedding_dim, config.num_blocks, config.num_heads, config.dropout,
            config.memory_size, config.num_neighbors) == (100, 1, 1, 0.2, 4096, 10)
    model = CoSANConfig(embedding_dim=DIM, max_len=MAX_LEN, memory_size=MEMORY).build(NUM_ITEMS)
    assert isinstance(model, CoSANModel) and model.built
    assert tuple(model.collaborative_items.memory_items.shape) == (MEMORY, MAX_LEN)
    assert model.trainable_weights and all(
        w.dtype.startswith("float") for w in model.trainable_weights)


@pytest.mark.parametrize("field, value", [
    ("memory_size", 0), ("num_neighbors", 0), ("dropout", 1.0), ("num_blocks", -1),
    ("num_heads", 0), ("embedding_dim", 0)])
def test_config_rejects_bad_values(field, value):
    checks.assert_settings_rejected(CoSANConfig, {field: value}, field)


def test_heads_must_divide_the_width():
    with pytest.raises(ConfigError, match="num_heads"):
        CoSANConfig(embedding_dim=100, num_heads=3)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_runs_in_the_compute_dtype(policy):
    model = CoSANModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=MAX_LEN,
                       memory_size=MEMORY, dtype=policy)
    model.build()
    model.query_vectors(tf.constant(TRAIN_BATCHES[1]), training=True)
    scores = model(tf.constant(SESSIONS))
    assert scores.dtype == policy.split("_")[1]
    assert np.isfinite(scores.numpy().astype(np.float32)).all()
    assert_same_bank(bank_of(model), numpy_bank(TRAIN_BATCHES[1:2]))
