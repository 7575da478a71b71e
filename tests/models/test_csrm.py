"""CSRMModel: the forward pass against NumPy (with an empty, a partly filled and a full
outer memory), the bank's writes from the model (training only, first in first out, inside
a traced training step), padding, serialisation and the config's checks.

The reference computes, for each session's real items only: c = [c_g ; c_l] with
`tests.layers.test_narm_encoder.numpy_narm_encoder`, the read r of c_l against the stored
rows with `tests.layers.test_outer_memory.numpy_read`, then standardisation, the scalar
fusion gate, the fused [c_g' ; c_l'] / [r' ; r'] and the bilinear scores E B c.
"""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.models.csrm import CSRMConfig
from mtd_tf.models.csrm import CSRMModel
from tests.layers.test_narm_encoder import numpy_narm_encoder
from tests.layers.test_outer_memory import numpy_read
from tests.layers.test_outer_memory import stored_rows
from tests.models import protocol_checks as checks
from tests.models.numpy_reference import model_weights
from tests.models.numpy_reference import sigmoid
from tests.models.protocol_checks import SESSIONS  # lengths 3, 1, 5, 2
from tests.models.protocol_checks import scores_of

NUM_ITEMS = 9
DIM = 8
MEMORY_SIZE, NUM_NEIGHBORS = 7, 3


def _standardize(x):
    return (x - x.mean()) / np.sqrt(x.var() + 1e-10)


def numpy_encodings(model, item_ids, attention_softmax=True, separate_encoders=True):
    """(c_g, c_l), each [batch, d], for every right-padded row."""
    weights = model_weights(model)
    table = weights["item_embeddings"]
    encoded = np.stack([
        numpy_narm_encoder(weights, "encoder", table[row[row > 0] - 1], attention_softmax,
                           separate_encoders)[0] for row in np.asarray(item_ids)])
    return encoded[:, :DIM], encoded[:, DIM:]


def numpy_scores(model, item_ids, stored, num_neighbors=NUM_NEIGHBORS, **settings):
    """z [batch, M] given the bank's stored rows `stored` [n, d] (read before any write)."""
    weights = model_weights(model)
    global_state, local = numpy_encodings(model, item_ids, **settings)
    read = numpy_read(local, stored, num_neighbors)
    scores = []
    for c_g, c_l, r in zip(global_state, local, read):
        c_g, c_l, r = _standardize(c_g), _standardize(c_l), _standardize(r)
        gate = sigmoid(c_l @ weights["local_gate"] + r @ weights["memory_gate"]
                       + c_g @ weights["global_gate"])  # one scalar per session
        fused = gate * np.concatenate([c_g, c_l]) + (1.0 - gate) * np.concatenate([r, r])
        scores.append(weights["item_embeddings"] @ (fused @ weights["bilinear/kernel"]))
    return np.stack(scores)


def make_model(seed, stored=5, **kwargs):
    """A built model with random weights and `stored` random rows written to its bank."""
    keras.utils.set_random_seed(seed)
    settings = dict(dropout=0.0, embedding_dropout=0.0, memory_size=MEMORY_SIZE,
                    num_neighbors=NUM_NEIGHBORS) | kwargs
    model = CSRMModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5, **settings)
    model.build()
    rng = np.random.default_rng(seed)
    checks.assign_random_weights(model, rng)
    model.outer_memory.memory.assign(rng.normal(size=(settings["memory_size"], DIM)))
    model.outer_memory.write_count.assign(stored)
    return model


def reference(model):
    """item ids -> the NumPy scores, read against the model's bank as it is now."""
    return lambda item_ids: numpy_scores(model, item_ids, stored_rows(model.outer_memory))


SETTINGS = [dict(), dict(attention_softmax=False), dict(separate_encoders=False)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("stored", [0, 5, 12])  # empty, partly filled, wrapped around
def test_forward_matches_numpy(seed, stored):
    model = make_model(seed, stored=stored)
    scores = scores_of(model, SESSIONS, training=False)
    assert scores.shape == (len(SESSIONS), NUM_ITEMS) and np.isfinite(scores).all()
    expected = numpy_scores(model, SESSIONS, stored_rows(model.outer_memory))
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("settings", SETTINGS[1:])
def test_forward_matches_numpy_with_narm_encoder_settings(settings):
    model = make_model(3, **settings)
    np.testing.assert_allclose(
        scores_of(model, SESSIONS),
        numpy_scores(model, SESSIONS, stored_rows(model.outer_memory), **settings),
        rtol=1e-4, atol=1e-4)


def test_training_reads_first_then_stores_the_batch_c_l_first_in_first_out():
    model = make_model(4, stored=0)
    ring = collections.deque(maxlen=MEMORY_SIZE)
    batches = [SESSIONS, np.array([[0, 0, 0, 0, 0], [2, 3, 0, 0, 0]]), SESSIONS]
    for batch in batches:
        before = stored_rows(model.outer_memory)
        expected = numpy_scores(model, batch, before)
        # With dropout off, a training call scores as inference on the bank before it.
        np.testing.assert_allclose(scores_of(model, batch, training=True), expected,
                                   rtol=1e-4, atol=1e-4)
        _, local = numpy_encodings(model, batch)
        ring.extend(local[(batch > 0).any(axis=1)])  # rows without items are not stored
        count = int(model.outer_memory.write_count.numpy())
        memory = model.outer_memory.memory.numpy()
        oldest_first = np.roll(memory, -(count % MEMORY_SIZE), axis=0) if (
            count >= MEMORY_SIZE) else memory[:count]
        np.testing.assert_allclose(oldest_first, np.stack(ring), rtol=1e-5, atol=1e-5)
    assert int(model.outer_memory.write_count.numpy()) == 4 + 1 + 4  # wrapped past 7


@pytest.mark.parametrize("training", [False, None])
def test_inference_never_writes(training):
    model = make_model(5)
    before = model.outer_memory.memory.numpy().copy()
    scores_of(model, SESSIONS, training=training)
    tf.function(lambda ids: model(ids, training=training))(tf.constant(SESSIONS))
    np.testing.assert_array_equal(model.outer_memory.memory.numpy(), before)
    assert int(model.outer_memory.write_count.numpy()) == 5


def test_a_traced_training_step_writes_and_trains_every_weight():
    model = make_model(6, stored=4)
    optimizer = keras.optimizers.SGD(learning_rate=0.01)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def step(item_ids):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.nn.log_softmax(model(item_ids, training=True))[:, 0])
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return gradients

    gradients = step(tf.constant(SESSIONS, tf.int32))
    step(tf.constant(SESSIONS[:2, :3], tf.int32))
    assert step.experimental_get_tracing_count() == 1
    assert int(model.outer_memory.write_count.numpy()) == 4 + 4 + 2
    for weight, gradient in zip(model.trainable_variables, gradients):
        gradient = tf.convert_to_tensor(gradient).numpy()
        assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0, weight.path
    assert {w.path.split("/", 1)[1] for w in model.non_trainable_weights} == {
        "outer_memory/memory", "outer_memory/write_count"}


@pytest.mark.parametrize("seed", [0, 1])
def test_extra_padding_columns_do_not_change_scores(seed):
    checks.assert_extra_padding_changes_nothing(make_model(seed), SESSIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_real_item_is_the_latest_click(seed):
    model = make_model(seed)
    checks.assert_last_real_item_is_used(model, reference(model))


@pytest.mark.parametrize("stored", [0, 5])
def test_a_row_without_items_gives_finite_scores(stored):
    model = make_model(3, stored=stored)
    checks.assert_rows_without_items_are_finite(model, SESSIONS)
    np.testing.assert_allclose(scores_of(model, [[0, 0, 0, 0], [5, 0, 0, 0]]),
                               reference(model)([[0, 0, 0, 0], [5, 0, 0, 0]]),
                               rtol=1e-4, atol=1e-4)


def test_dropout_only_in_training():
    model = make_model(0, dropout=0.5, embedding_dropout=0.25)
    checks.assert_dropout_only_in_training(model, SESSIONS, reference(model))


def test_get_config_round_trip_and_keras_serialization():
    # The weights copied include the bank and its counter.
    model = make_model(7, attention_softmax=False, dropout=0.3, score_scale=4.0)
    checks.assert_config_round_trip(model, {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "dropout": 0.3,
        "memory_size": MEMORY_SIZE, "num_neighbors": NUM_NEIGHBORS,
        "attention_softmax": False, "separate_encoders": True, "score_scale": 4.0}, SESSIONS)
    checks.assert_keras_serialization_round_trip(model, SESSIONS)


def test_tf_checkpoint_round_trip_restores_every_weight_and_the_bank(tmp_path):
    model = make_model(9)
    scores_of(model, SESSIONS, training=True)  # 4 more rows stored, wrapping around
    fresh = make_model(10, stored=0)
    checks.assert_checkpoint_restores_every_weight(model, fresh, SESSIONS, tmp_path)
    assert int(fresh.outer_memory.write_count.numpy()) == 9


def test_mixed_precision_gives_finite_scores_near_float32():
    model = make_model(11)
    mixed = CSRMModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5, dropout=0.0,
                      embedding_dropout=0.0, memory_size=MEMORY_SIZE,
                      num_neighbors=NUM_NEIGHBORS, dtype="mixed_bfloat16")
    mixed.build()
    mixed.set_weights(model.get_weights())
    assert mixed.outer_memory.memory.dtype == "float32"
    scores = mixed(tf.constant([[5, 6, 7, 0], [0, 0, 0, 0]]), training=True)
    assert scores.dtype == tf.bfloat16 and np.isfinite(tf.cast(scores, tf.float32)).all()
    np.testing.assert_allclose(tf.cast(scores, tf.float32)[0],
                               scores_of(model, [[5, 6, 7, 0]])[0], rtol=0.1, atol=0.1)


def test_defaults_are_the_documented_ones():
    config = CSRMConfig()
    assert (config.embedding_dim, config.dropout, config.embedding_dropout, config.memory_size,
            config.num_neighbors, config.attention_softmax, config.separate_encoders,
            config.reset_after) == (100, 0.5, 0.25, 10000, 512, True, True, False)
    assert CSRMConfig.name == "csrm" and CSRMConfig.model_class() is CSRMModel


@pytest.mark.parametrize("kwargs, name", [
    (dict(dropout=1.0), "dropout"), (dict(embedding_dropout=-0.1), "embedding_dropout"),
    (dict(memory_size=0), "memory_size"), (dict(num_neighbors=0), "num_neighbors"),
    (dict(memory_size=10, num_neighbors=11), "num_neighbors"), (dict(embedding_dim=0),
                                                                "embedding_dim"),
])
def test_config_and_constructor_reject_bad_values(kwargs, name):
    checks.assert_settings_rejected(CSRMConfig, kwargs, field=name)
