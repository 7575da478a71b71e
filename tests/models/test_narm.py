"""NARMModel: the forward pass against NumPy, padding, serialisation and the config's checks.

The reference (`tests.layers.test_narm_encoder.numpy_narm_encoder`, NARM eq. 5-9 over each
session's real items only) gives c = [c_g ; c_l]; the scores are the bilinear decoder's
z_m = E[m]^T B c (eq. 10), with the `bilinear` kernel holding B^T.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.errors import ConfigError
from mtd_tf.models.narm import NARMConfig
from mtd_tf.models.narm import NARMModel
from tests.layers.harness import run_layer_test
from tests.layers.test_narm_encoder import numpy_narm_encoder

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


def numpy_scores(model, item_ids, **settings):
    """z [batch, M] for every right-padded row; `settings` go to the encoder reference."""
    weights = model_weights(model)
    table = weights["item_embeddings"]  # [M, d], row m-1 = item m
    scores = []
    for row in np.asarray(item_ids):
        items = row[row > 0]
        encoded, _ = numpy_narm_encoder(weights, "encoder", table[items - 1], **settings)
        scores.append(table @ (encoded @ weights["bilinear/kernel"]))  # E B c
    return np.stack(scores)


def make_model(seed, **kwargs):
    """A built model whose every weight is random."""
    keras.utils.set_random_seed(seed)
    settings = dict(dropout=0.0, embedding_dropout=0.0) | kwargs
    model = NARMModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5, **settings)
    model.build()
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.5, weight.shape).astype(np.float32))
    return model


def scores_of(model, item_ids, **kwargs):
    return model(tf.constant(item_ids, tf.int32), **kwargs).numpy()


SETTINGS = [dict(), dict(attention_softmax=False), dict(separate_encoders=True),
            dict(reset_after=True)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("settings", SETTINGS)
def test_forward_matches_numpy(seed, settings):
    model = make_model(seed, **settings)
    scores = scores_of(model, SESSIONS, training=False)
    assert scores.shape == (len(SESSIONS), NUM_ITEMS)
    np.testing.assert_allclose(scores, numpy_scores(model, SESSIONS, **settings),
                               rtol=1e-4, atol=1e-4)


def test_attention_weights_are_returned_and_zero_at_padding():
    model = make_model(4)
    query, alpha = model.encode_session(tf.constant(SESSIONS), return_attention_scores=True)
    assert query.shape == (len(SESSIONS), DIM) and alpha.shape == SESSIONS.shape
    np.testing.assert_allclose(alpha.numpy().sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(alpha.numpy()[SESSIONS == 0], 0.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_extra_padding_columns_do_not_change_scores(seed):
    model = make_model(seed, separate_encoders=True)
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


def test_a_row_without_items_gives_finite_zero_scores():
    model = make_model(3)
    scores = scores_of(model, [[0, 0, 0, 0], [5, 0, 0, 0]])
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores[0], 0.0)  # c = 0, so q = B c = 0


def test_dropout_only_in_training():
    model = make_model(0, dropout=0.5, embedding_dropout=0.25)
    inference = scores_of(model, SESSIONS, training=False)
    np.testing.assert_allclose(inference, numpy_scores(model, SESSIONS), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(scores_of(model, SESSIONS), inference)  # training=None
    assert np.abs(scores_of(model, SESSIONS, training=True) - inference).max() > 1e-3


def test_get_config_round_trip():
    model = make_model(7, attention_softmax=False, separate_encoders=True, dropout=0.3,
                       score_scale=4.0)
    config = model.get_config()
    assert {k: config[k] for k in ("num_items", "embedding_dim", "dropout",
                                   "embedding_dropout", "attention_softmax",
                                   "separate_encoders", "reset_after", "score_scale")} == {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "dropout": 0.3,
        "embedding_dropout": 0.0, "attention_softmax": False, "separate_encoders": True,
        "reset_after": False, "score_scale": 4.0}
    clone = NARMModel.from_config(config)
    clone.build()
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(scores_of(clone, SESSIONS), scores_of(model, SESSIONS))


def test_keras_serialize_deserialize():
    model = make_model(8)
    serialized = keras.saving.serialize_keras_object(model)
    assert serialized["registered_name"] == "mtd_tf>NARMModel"
    clone = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(clone, NARMModel) and clone.built
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(scores_of(clone, SESSIONS), scores_of(model, SESSIONS))


def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path):
    model = make_model(9, separate_encoders=True)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    fresh = make_model(10, separate_encoders=True)
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    for saved, restored in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
    np.testing.assert_array_equal(scores_of(fresh, SESSIONS), scores_of(model, SESSIONS))


def test_defaults_are_the_documented_ones():
    config = NARMConfig()
    assert (config.embedding_dim, config.dropout, config.embedding_dropout,
            config.attention_softmax, config.separate_encoders, config.reset_after) == (
        100, 0.5, 0.25, True, False, False)
    assert NARMConfig.name == "narm" and NARMConfig.model_class() is NARMModel


@pytest.mark.parametrize("kwargs", [dict(dropout=1.0), dict(embedding_dropout=-0.1),
                                    dict(embedding_dim=0), dict(max_len=0)])
def test_config_and_constructor_reject_bad_values(kwargs):
    name = list(kwargs)[0]
    with pytest.raises(ConfigError, match=name):
        NARMConfig(**kwargs)
    with pytest.raises(ValueError, match=name):
        NARMModel(num_items=NUM_ITEMS, **kwargs)


def test_model_passes_the_layer_harness():
    run_layer_test(
        NARMModel, dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5, dropout=0.0,
                        embedding_dropout=0.0),
        {"item_ids": SESSIONS}, resized_input_data={"item_ids": SESSIONS[:2, :3]},
        expected_output_shape=(len(SESSIONS), NUM_ITEMS),
        # E; the GRU's three; A1, A2, v; B.
        expected_num_trainable_weights=1 + 3 + 3 + 1,
        reference=lambda model, item_ids: numpy_scores(model, item_ids.numpy()),
        rtol=1e-4, atol=1e-4, precision_tolerance_scale=3.0)
