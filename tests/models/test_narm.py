"""NARMModel: the forward pass against NumPy, padding, serialisation and the config's checks.

The reference (`tests.layers.test_narm_encoder.numpy_narm_encoder`, NARM eq. 5-9 over each
session's real items only) gives c = [c_g ; c_l]; the scores are the bilinear decoder's
z_m = E[m]^T B c (eq. 10), with the `bilinear` kernel holding B^T.
"""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.models.narm import NARMConfig
from mtd_tf.models.narm import NARMModel
from tests.layers.harness import run_layer_test
from tests.layers.test_narm_encoder import numpy_narm_encoder
from tests.models import protocol_checks as checks
from tests.models.numpy_reference import model_weights
from tests.models.protocol_checks import SESSIONS  # lengths 3, 1, 5, 2
from tests.models.protocol_checks import scores_of

NUM_ITEMS = 9
DIM = 8


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


def make_model(seed, **settings):
    """A built model whose every weight is random; no dropout unless `settings` ask for
    it."""
    return checks.random_model(
        NARMModel, seed, **(dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5,
                                 dropout=0.0, embedding_dropout=0.0) | settings))


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
    checks.assert_extra_padding_changes_nothing(make_model(seed, separate_encoders=True),
                                                SESSIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_real_item_is_the_latest_click(seed):
    model = make_model(seed)
    checks.assert_last_real_item_is_used(model, lambda ids: numpy_scores(model, ids))


def test_a_row_without_items_gives_finite_zero_scores():
    model = make_model(3)
    checks.assert_rows_without_items_are_finite(model, SESSIONS)
    scores = scores_of(model, [[0, 0, 0, 0], [5, 0, 0, 0]])
    np.testing.assert_array_equal(scores[0], 0.0)  # c = 0, so q = B c = 0


def test_dropout_only_in_training():
    model = make_model(0, dropout=0.5, embedding_dropout=0.25)
    checks.assert_dropout_only_in_training(model, SESSIONS,
                                           lambda ids: numpy_scores(model, ids))


def test_get_config_round_trip():
    model = make_model(7, attention_softmax=False, separate_encoders=True, dropout=0.3,
                       score_scale=4.0)
    checks.assert_config_round_trip(model, {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "dropout": 0.3,
        "embedding_dropout": 0.0, "attention_softmax": False, "separate_encoders": True,
        "reset_after": False, "score_scale": 4.0}, SESSIONS)


def test_keras_serialize_deserialize():
    checks.assert_keras_serialization_round_trip(make_model(8), SESSIONS)


def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path):
    checks.assert_checkpoint_restores_every_weight(
        make_model(9, separate_encoders=True), make_model(10, separate_encoders=True),
        SESSIONS, tmp_path)


def test_defaults_are_the_documented_ones():
    config = NARMConfig()
    assert (config.embedding_dim, config.dropout, config.embedding_dropout,
            config.attention_softmax, config.separate_encoders, config.reset_after) == (
        100, 0.5, 0.25, True, False, False)
    assert NARMConfig.name == "narm" and NARMConfig.model_class() is NARMModel


@pytest.mark.parametrize("kwargs", [dict(dropout=1.0), dict(embedding_dropout=-0.1),
                                    dict(embedding_dim=0), dict(max_len=0)])
def test_config_and_constructor_reject_bad_values(kwargs):
    checks.assert_settings_rejected(NARMConfig, kwargs, field=list(kwargs)[0])


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
