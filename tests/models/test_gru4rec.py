"""GRU4RecModel: the forward pass against NumPy, padding, the output table options,
serialisation and the config's checks.

The reference runs a GRU (`tests.layers.test_session_gru.numpy_gru`, Cho et al.'s
equations) over each session's real items only, so it never sees padding, and scores
`h_t . W[m] + b_m`. It reads the model's weights by their paths.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.errors import ConfigError
from mtd_tf.models.gru4rec import GRU4RecConfig
from mtd_tf.models.gru4rec import GRU4RecModel
from tests.layers.harness import run_layer_test
from tests.layers.test_session_gru import gru_weights
from tests.layers.test_session_gru import numpy_gru

NUM_ITEMS = 9
DIM = 8
# Right-padded sessions of lengths 3, 1, 5, 2.
SESSIONS = np.array([
    [5, 6, 7, 0, 0],
    [9, 0, 0, 0, 0],
    [1, 9, 3, 3, 2],
    [4, 8, 0, 0, 0],
])


def model_weights(model):
    """{path without the model's name: float64 array} for every weight of `model`."""
    return {w.path.split("/", 1)[1]: np.asarray(w.numpy(), np.float64) for w in model.weights}


def numpy_scores(model, item_ids, tie_embeddings=True, output_bias=True, reset_after=False):
    """z [batch, M] for every right-padded row; the options are stated by the test."""
    weights = model_weights(model)
    table = weights["item_embeddings"]  # [M, d], row m-1 = item m
    output = table if tie_embeddings else weights["output_embeddings"]
    bias = weights["item_bias"] if output_bias else np.zeros(NUM_ITEMS)
    scores = []
    for row in np.asarray(item_ids):
        items = row[row > 0]
        _, last = numpy_gru(table[items - 1], *gru_weights(weights, "gru"), reset_after)  # h_t
        scores.append(last @ output.T + bias)
    return np.stack(scores)


def make_model(seed, **kwargs):
    """A built model whose every weight (biases included) is random."""
    keras.utils.set_random_seed(seed)
    settings = dict(dropout=0.0, embedding_dropout=0.0) | kwargs
    model = GRU4RecModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5, **settings)
    model.build()
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.5, weight.shape).astype(np.float32))
    return model


def scores_of(model, item_ids, **kwargs):
    return model(tf.constant(item_ids, tf.int32), **kwargs).numpy()


OPTIONS = [dict(), dict(tie_embeddings=False), dict(output_bias=False),
           dict(tie_embeddings=False, output_bias=False, reset_after=True)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("options", OPTIONS)
def test_forward_matches_numpy(seed, options):
    model = make_model(seed, **options)
    scores = scores_of(model, SESSIONS, training=False)
    assert scores.shape == (len(SESSIONS), NUM_ITEMS)
    np.testing.assert_allclose(scores, numpy_scores(model, SESSIONS, **options),
                               rtol=1e-4, atol=1e-4)


def test_output_tables_and_widths():
    tied = make_model(0)
    assert tied.output_dim == DIM + 1  # [h_t ; 1] against [E ; b]
    assert [w.path for w in tied.item_tables()] == [tied.item_embeddings.path,
                                                    tied.item_bias.path]
    np.testing.assert_array_equal(tied.candidate_vectors()[:, :DIM], tied.item_embeddings)
    np.testing.assert_array_equal(tied.candidate_vectors()[:, DIM], tied.item_bias)
    untied = make_model(0, tie_embeddings=False, output_bias=False)
    assert untied.output_dim == DIM
    assert len(untied.item_tables()) == 2
    np.testing.assert_array_equal(untied.candidate_vectors(), untied.output_embeddings)
    assert {w.path.split("/", 1)[1] for w in untied.trainable_weights} == {
        "item_embeddings", "output_embeddings", "gru/gru/gru_cell/kernel",
        "gru/gru/gru_cell/recurrent_kernel", "gru/gru/gru_cell/bias"}


@pytest.mark.parametrize("seed", [0, 1])
def test_extra_padding_columns_do_not_change_scores(seed):
    model = make_model(seed)
    padded = np.pad(SESSIONS, [[0, 0], [0, 4]])
    np.testing.assert_allclose(scores_of(model, padded), scores_of(model, SESSIONS),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_real_item_is_the_latest_click(seed):
    model = make_model(seed)
    padded = scores_of(model, [[5, 6, 7, 0, 0]])
    np.testing.assert_allclose(padded, scores_of(model, [[5, 6, 7]]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(padded, numpy_scores(model, [[5, 6, 7]]), rtol=1e-4, atol=1e-4)
    assert np.abs(padded - scores_of(model, [[5, 6, 0, 0, 0]])).max() > 1e-3
    assert np.abs(padded - scores_of(model, [[5, 6, 8, 0, 0]])).max() > 1e-3


def test_a_row_without_items_scores_the_bias_only():
    model = make_model(3)
    scores = scores_of(model, [[0, 0, 0, 0], [5, 0, 0, 0]])
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores[0], model.item_bias.numpy(), rtol=1e-6, atol=1e-6)


def test_dropout_only_in_training():
    model = make_model(0, dropout=0.5, embedding_dropout=0.5)
    inference = scores_of(model, SESSIONS, training=False)
    np.testing.assert_allclose(inference, numpy_scores(model, SESSIONS), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(scores_of(model, SESSIONS), inference)  # training=None
    assert np.abs(scores_of(model, SESSIONS, training=True) - inference).max() > 1e-3


def test_get_config_round_trip():
    model = make_model(7, tie_embeddings=False, dropout=0.3, embedding_dropout=0.1,
                       reset_after=True, score_scale=4.0)
    config = model.get_config()
    assert {k: config[k] for k in ("num_items", "embedding_dim", "dropout",
                                   "embedding_dropout", "tie_embeddings", "output_bias",
                                   "reset_after", "score_scale")} == {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "dropout": 0.3,
        "embedding_dropout": 0.1, "tie_embeddings": False, "output_bias": True,
        "reset_after": True, "score_scale": 4.0}
    clone = GRU4RecModel.from_config(config)
    clone.build()
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(scores_of(clone, SESSIONS), scores_of(model, SESSIONS))


def test_keras_serialize_deserialize():
    model = make_model(8)
    serialized = keras.saving.serialize_keras_object(model)
    assert serialized["registered_name"] == "mtd_tf>GRU4RecModel"
    clone = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(clone, GRU4RecModel) and clone.built
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(scores_of(clone, SESSIONS), scores_of(model, SESSIONS))


@pytest.mark.parametrize("tie_embeddings", [True, False])
def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path, tie_embeddings):
    model = make_model(9, tie_embeddings=tie_embeddings)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    fresh = make_model(10, tie_embeddings=tie_embeddings)
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    for saved, restored in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
    np.testing.assert_array_equal(scores_of(fresh, SESSIONS), scores_of(model, SESSIONS))


def test_defaults_are_the_documented_ones():
    config = GRU4RecConfig()
    assert (config.embedding_dim, config.dropout, config.embedding_dropout,
            config.tie_embeddings, config.output_bias, config.reset_after) == (
        100, 0.4, 0.0, True, True, False)
    assert GRU4RecConfig.name == "gru4rec" and GRU4RecConfig.model_class() is GRU4RecModel


@pytest.mark.parametrize("kwargs", [dict(dropout=1.0), dict(embedding_dropout=-0.1),
                                    dict(embedding_dim=0), dict(max_len=0)])
def test_config_and_constructor_reject_bad_values(kwargs):
    name = list(kwargs)[0]
    with pytest.raises(ConfigError, match=name):
        GRU4RecConfig(**kwargs)
    with pytest.raises(ValueError, match=name):
        GRU4RecModel(num_items=NUM_ITEMS, **kwargs)


def test_model_passes_the_layer_harness():
    run_layer_test(
        GRU4RecModel, dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5, dropout=0.0),
        {"item_ids": SESSIONS}, resized_input_data={"item_ids": SESSIONS[:2, :3]},
        expected_output_shape=(len(SESSIONS), NUM_ITEMS),
        expected_num_trainable_weights=2 + 3,  # E, b; the GRU's kernel, recurrent kernel, bias
        reference=lambda model, item_ids: numpy_scores(model, item_ids.numpy()),
        rtol=1e-4, atol=1e-4, precision_tolerance_scale=3.0)
