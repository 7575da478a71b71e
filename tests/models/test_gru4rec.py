"""GRU4RecModel: the forward pass against NumPy, padding, the output table options,
serialisation and the config's checks.

The reference runs a GRU (`tests.layers.test_session_gru.numpy_gru`, Cho et al.'s
equations) over each session's real items only, so it never sees padding, and scores
`h_t . W[m] + b_m`. It reads the model's weights by their paths.
"""

import numpy as np
import pytest

from mtd_tf.models.gru4rec import GRU4RecConfig
from mtd_tf.models.gru4rec import GRU4RecModel
from tests.layers.harness import run_layer_test
from tests.layers.test_session_gru import gru_weights
from tests.layers.test_session_gru import numpy_gru
from tests.models import protocol_checks as checks
from tests.models.numpy_reference import model_weights
from tests.models.protocol_checks import SESSIONS  # lengths 3, 1, 5, 2
from tests.models.protocol_checks import scores_of

NUM_ITEMS = 9
DIM = 8


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


def make_model(seed, **settings):
    """A built model whose every weight (biases included) is random; no dropout unless
    `settings` ask for it."""
    return checks.random_model(
        GRU4RecModel, seed, **(dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5,
                                    dropout=0.0, embedding_dropout=0.0) | settings))


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
    checks.assert_extra_padding_changes_nothing(make_model(seed), SESSIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_real_item_is_the_latest_click(seed):
    model = make_model(seed)
    checks.assert_last_real_item_is_used(model, lambda ids: numpy_scores(model, ids))


def test_a_row_without_items_scores_the_bias_only():
    model = make_model(3)
    checks.assert_rows_without_items_are_finite(model, SESSIONS)
    scores = scores_of(model, [[0, 0, 0, 0], [5, 0, 0, 0]])
    np.testing.assert_allclose(scores[0], model.item_bias.numpy(), rtol=1e-6, atol=1e-6)


def test_dropout_only_in_training():
    model = make_model(0, dropout=0.5, embedding_dropout=0.5)
    checks.assert_dropout_only_in_training(model, SESSIONS,
                                           lambda ids: numpy_scores(model, ids))


def test_get_config_round_trip():
    model = make_model(7, tie_embeddings=False, dropout=0.3, embedding_dropout=0.1,
                       reset_after=True, score_scale=4.0)
    checks.assert_config_round_trip(model, {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "dropout": 0.3,
        "embedding_dropout": 0.1, "tie_embeddings": False, "output_bias": True,
        "reset_after": True, "score_scale": 4.0}, SESSIONS)


def test_keras_serialize_deserialize():
    checks.assert_keras_serialization_round_trip(make_model(8), SESSIONS)


@pytest.mark.parametrize("tie_embeddings", [True, False])
def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path, tie_embeddings):
    checks.assert_checkpoint_restores_every_weight(
        make_model(9, tie_embeddings=tie_embeddings),
        make_model(10, tie_embeddings=tie_embeddings), SESSIONS, tmp_path)


def test_defaults_are_the_documented_ones():
    config = GRU4RecConfig()
    assert (config.embedding_dim, config.dropout, config.embedding_dropout,
            config.tie_embeddings, config.output_bias, config.reset_after) == (
        100, 0.4, 0.0, True, True, False)
    assert GRU4RecConfig.name == "gru4rec" and GRU4RecConfig.model_class() is GRU4RecModel


@pytest.mark.parametrize("kwargs", [dict(dropout=1.0), dict(embedding_dropout=-0.1),
                                    dict(embedding_dim=0), dict(max_len=0)])
def test_config_and_constructor_reject_bad_values(kwargs):
    checks.assert_settings_rejected(GRU4RecConfig, kwargs, field=list(kwargs)[0])


def test_model_passes_the_layer_harness():
    run_layer_test(
        GRU4RecModel, dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5, dropout=0.0),
        {"item_ids": SESSIONS}, resized_input_data={"item_ids": SESSIONS[:2, :3]},
        expected_output_shape=(len(SESSIONS), NUM_ITEMS),
        expected_num_trainable_weights=2 + 3,  # E, b; the GRU's kernel, recurrent kernel, bias
        reference=lambda model, item_ids: numpy_scores(model, item_ids.numpy()),
        rtol=1e-4, atol=1e-4, precision_tolerance_scale=3.0)
