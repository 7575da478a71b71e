"""SRGNNModel: the whole forward pass against NumPy, padding, serialisation, the config.

The NumPy reference builds each session's graph itself from its real clicks (nodes in
order of first appearance, where the model sorts them by id: the scores must not depend on
the order), runs the gated graph update of eq. 1-5 (`numpy_gated_graph`) and the readout of
eq. 6-8, reading only the model's weights by their paths.
"""

import numpy as np
import pytest

from mtd_tf.models.registry import MODEL_CONFIGS
from mtd_tf.models.srgnn import SRGNNConfig, SRGNNModel
from tests.layers.harness import run_layer_test
from tests.layers.test_gated_graph import numpy_gated_graph
from tests.models import protocol_checks as checks
from tests.models.numpy_reference import model_weights
from tests.models.numpy_reference import sigmoid
from tests.models.protocol_checks import scores_of

NUM_ITEMS = 9
DIM = 8
MAX_LEN = 5
# Lengths 3, 5 (repeats, a repeated edge 2 -> 4), 1, 4 (self-loop 6 -> 6), right-padded.
SESSIONS = np.array([
    [5, 6, 7, 0, 0],
    [2, 4, 2, 4, 9],
    [3, 0, 0, 0, 0],
    [8, 6, 6, 1, 0],
])


# ----------------------------------------------------------------------------- reference
def numpy_session(weights, clicks, step=1, nonhybrid=False, reset_after=True):
    """s_h (or s_g) of one session given as its real clicks, oldest first."""
    nodes = list(dict.fromkeys(clicks))  # distinct items, first appearance first
    node_of = {item: k for k, item in enumerate(nodes)}
    edges = np.zeros((len(nodes), len(nodes)))
    for before, after in zip(clicks[:-1], clicks[1:]):
        edges[node_of[before], node_of[after]] = 1  # repeated transitions count once
    adjacency_in = edges.T / np.maximum(edges.sum(axis=0), 1)[:, None]  # by in-degree
    adjacency_out = edges / np.maximum(edges.sum(axis=1), 1)[:, None]  # by out-degree
    hidden = weights["item_embeddings"][np.array(nodes) - 1]  # row m-1 = item m
    graph_weights = {name.split("/", 1)[1]: value for name, value in weights.items()
                     if name.startswith("gated_graph/")}
    hidden = numpy_gated_graph(graph_weights, hidden, adjacency_in, adjacency_out,
                               num_steps=step, reset_after=reset_after)
    v = hidden[[node_of[item] for item in clicks]]  # [I, d], one row per click
    last = v[-1]  # s_l
    gate = sigmoid(last @ weights["attention_last_kernel"]
                    + v @ weights["attention_item_kernel"] + weights["attention_bias"])
    alpha = gate @ weights["attention_vector"]  # eq. 6, no softmax
    global_preference = alpha @ v  # s_g
    if nonhybrid:
        return global_preference
    return (np.concatenate([last, global_preference]) @ weights["hybrid_kernel"]
            + weights["hybrid_bias"])  # eq. 7


def numpy_scores(model, item_ids, **settings):
    """z = s_h E^T for every right-padded row: float64 [batch, M]."""
    weights = model_weights(model)
    queries = np.stack([numpy_session(weights, list(row[row > 0]), **settings)
                        for row in np.asarray(item_ids)])
    return queries @ weights["item_embeddings"].T


# ----------------------------------------------------------------------------- fixtures
def make_model(seed, **settings):
    """A built model whose every weight is random."""
    return checks.random_model(SRGNNModel, seed, num_items=NUM_ITEMS, embedding_dim=DIM,
                               max_len=MAX_LEN, **settings)


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("settings", [
    {}, {"reset_after": False}, {"nonhybrid": True}, {"step": 2}])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_matches_numpy(seed, settings):
    model = make_model(seed, **settings)
    scores = scores_of(model, SESSIONS, training=False)
    assert scores.shape == (len(SESSIONS), NUM_ITEMS)
    np.testing.assert_allclose(scores, numpy_scores(model, SESSIONS, **settings),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_extra_padding_columns_do_not_change_scores(seed):
    checks.assert_extra_padding_changes_nothing(make_model(seed), SESSIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_last_real_item_is_the_one_used(seed):
    model = make_model(seed)
    checks.assert_last_real_item_is_used(model, lambda ids: numpy_scores(model, ids))


def test_repeated_clicks_count_once_per_position():
    # [5, 6, 5] and [5, 6, 5, 6, 5] have the same graph (edges 5 -> 6, 6 -> 5) and the same
    # last click; only the positions summed into s_g differ.
    model = make_model(3)
    short, long = scores_of(model, [[5, 6, 5, 0, 0]]), scores_of(model, [[5, 6, 5, 6, 5]])
    np.testing.assert_allclose(long, numpy_scores(model, [[5, 6, 5, 6, 5]]), rtol=1e-4,
                               atol=1e-4)
    assert np.abs(short - long).max() > 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_all_padding_row_is_finite_and_leaves_the_others_alone(seed):
    checks.assert_rows_without_items_are_finite(make_model(seed), SESSIONS)


def test_no_dropout_training_flag_changes_nothing():
    checks.assert_training_flag_changes_nothing(make_model(0), SESSIONS)


def test_get_config_round_trip():
    model = make_model(7, step=2, nonhybrid=True, reset_after=False, score_scale=4.0)
    checks.assert_config_round_trip(model, {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "max_len": MAX_LEN, "step": 2,
        "nonhybrid": True, "reset_after": False, "score_scale": 4.0}, SESSIONS)


def test_keras_serialize_deserialize():
    checks.assert_keras_serialization_round_trip(make_model(8), SESSIONS)


def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path):
    fresh = make_model(10, step=2)
    checks.assert_checkpoint_restores_every_weight(make_model(9, step=2), fresh, SESSIONS,
                                                   tmp_path)
    assert len(fresh.weights) == 17  # E, W1, W2, c, q, W3, b3 and the gated graph's 10


def test_initial_weights_are_uniform_in_the_codes_range():
    model = SRGNNConfig().build(50)  # d = 100: every weight in [-0.1, 0.1]
    assert model.embedding_dim == 100 and model.step == 1 and not model.nonhybrid
    for weight in model.weights:
        values = weight.numpy()
        assert np.abs(values).max() <= 0.1 and values.std() > 0.04, weight.path


@pytest.mark.parametrize("kwargs", [
    dict(step=0), dict(step=1.5), dict(embedding_dim=0), dict(max_len=0), dict(score_scale=-1.0),
])
def test_config_rejects_bad_values(kwargs):
    checks.assert_settings_rejected(SRGNNConfig, kwargs, field=list(kwargs)[0])


def test_registered_under_its_name():
    assert MODEL_CONFIGS["srgnn"] is SRGNNConfig
    assert SRGNNConfig.model_class() is SRGNNModel
    assert isinstance(SRGNNConfig(embedding_dim=DIM).build(NUM_ITEMS), SRGNNModel)


@pytest.mark.parametrize("settings, num_trainable_weights", [
    ({}, 17), ({"nonhybrid": True, "reset_after": False}, 15)])
def test_model_passes_the_layer_harness(settings, num_trainable_weights):
    run_layer_test(
        SRGNNModel, dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=MAX_LEN, **settings),
        {"item_ids": SESSIONS}, resized_input_data={"item_ids": SESSIONS[:2, :3]},
        expected_output_shape=(len(SESSIONS), NUM_ITEMS),
        expected_num_trainable_weights=num_trainable_weights,
        reference=lambda model, item_ids: numpy_scores(model, item_ids.numpy(), **settings),
        rtol=1e-4, atol=1e-4, precision_tolerance_scale=3.0)
