"""STAMPModel: the forward pass against NumPy (the code's form and the paper's), padding,
serialisation, config.

The NumPy reference is written from STAMP's equations as the model's docstring states
them (paper and uestcnlp/STAMP `model/STAMP_rsc.py`), reading only the model's weights by
path. It works on each session's real items alone, so it never sees padding.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.models.stamp import STAMPConfig
from mtd_tf.models.stamp import STAMPModel
from tests.layers.harness import run_layer_test
from tests.models import protocol_checks as checks
from tests.models.numpy_reference import model_weights
from tests.models.numpy_reference import sigmoid
from tests.models.protocol_checks import SESSIONS  # lengths 3, 1, 5, 2
from tests.models.protocol_checks import scores_of

NUM_ITEMS = 9
DIM = 8
MAX_LEN = 5
FORMS = [  # (embedding_max_norm, paper_equations)
    (1.0, False),  # the code's, the default
    (1.5, False),  # STAMP_cikm.py's clipping
    (0.0, True),  # the paper's equations, no clipping
]


# ----------------------------------------------------------------------------- reference
def numpy_session(weights, session, max_norm, paper):
    """(q, a) for one session given as its real items (oldest first)."""
    x = weights["item_embeddings"][np.asarray(session) - 1]  # [t, d]
    if max_norm:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x * np.minimum(1.0, max_norm / norms)  # longer than max_norm: cut to max_norm

    def linear(inputs, name):
        bias = weights.get(f"{name}/bias", 0.0)
        assert paper or f"{name}/bias" not in weights  # the code's form has no biases
        return inputs @ weights[f"{name}/kernel"] + bias

    mean, last = x.mean(axis=0), x[-1]  # m_s, x_t
    gate = sigmoid(linear(x, "attention_item") + linear(last, "attention_last")
                   + linear(mean, "attention_mean"))  # [t, d]
    attention = gate @ weights["attention_vector"]  # a_i, raw: no softmax
    attended = attention @ x + (0.0 if paper else mean)  # m_a (+ m_s in the code)
    query = np.tanh(linear(attended, "mlp_cell_a")) * np.tanh(linear(last, "mlp_cell_b"))
    return query, attention


def numpy_scores(model, item_ids, max_norm, paper):
    """z = (h_s * h_t) E^T for every right-padded row: float64 [batch, M]. The form is
    given by the test, not read back from the model."""
    weights = model_weights(model)
    queries = np.stack([numpy_session(weights, row[row > 0], max_norm, paper)[0]
                        for row in np.asarray(item_ids)])
    return queries @ weights["item_embeddings"].T


# ----------------------------------------------------------------------------- fixtures
def make_model(seed, embedding_max_norm=1.0, paper_equations=False, **settings):
    """A built model whose every weight is random (N(0, 0.5^2): item vectors of norm about
    1.4 in d = 8, so clipping at 1 and 1.5 both act on some)."""
    return checks.random_model(STAMPModel, seed, num_items=NUM_ITEMS, embedding_dim=DIM,
                               max_len=MAX_LEN, embedding_max_norm=embedding_max_norm,
                               paper_equations=paper_equations, **settings)


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_norm, paper", FORMS)
def test_forward_matches_numpy(seed, max_norm, paper):
    model = make_model(seed, max_norm, paper)
    scores = scores_of(model, SESSIONS, training=False)
    assert scores.shape == (len(SESSIONS), NUM_ITEMS)
    np.testing.assert_allclose(scores, numpy_scores(model, SESSIONS, max_norm, paper),
                               rtol=1e-4, atol=1e-4)


def test_the_clipping_and_the_code_s_mean_term_both_matter():
    # With these weights, a reference without the clipping, or without the code's + m_s,
    # does not match the model: neither part of the code's form is dead.
    model = make_model(0)
    scores = scores_of(model, SESSIONS)
    assert np.abs(scores - numpy_scores(model, SESSIONS, 0.0, False)).max() > 1e-3
    assert np.abs(scores - numpy_scores(model, SESSIONS, 1.0, True)).max() > 1e-3


def test_attention_is_not_normalised_and_zero_at_padding():
    model = make_model(3)
    _, attention = model.encode_session(tf.constant(SESSIONS), return_attention_scores=True)
    attention = attention.numpy()
    assert attention.shape == SESSIONS.shape
    weights = model_weights(model)
    for row, ids in enumerate(SESSIONS):
        real = ids[ids > 0]
        expected = numpy_session(weights, real, 1.0, False)[1]
        np.testing.assert_allclose(attention[row, :len(real)], expected, rtol=1e-4, atol=1e-5)
        assert np.all(attention[row, len(real):] == 0)
    # Raw coefficients: rows do not sum to one (with these weights, far from it).
    assert np.abs(attention.sum(axis=1) - 1.0).max() > 0.1


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("max_norm, paper", FORMS)
def test_extra_padding_columns_do_not_change_scores(seed, max_norm, paper):
    checks.assert_extra_padding_changes_nothing(make_model(seed, max_norm, paper), SESSIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_real_item_is_the_one_used(seed):
    model = make_model(seed)
    checks.assert_last_real_item_is_used(model,
                                         lambda ids: numpy_scores(model, ids, 1.0, False))


@pytest.mark.parametrize("max_norm, paper", FORMS)
def test_an_all_padding_row_gives_finite_scores_and_leaves_the_others_alone(max_norm, paper):
    checks.assert_rows_without_items_are_finite(make_model(4, max_norm, paper), SESSIONS)


def test_training_changes_nothing_stamp_has_no_dropout():
    checks.assert_training_flag_changes_nothing(make_model(5), SESSIONS)


@pytest.mark.parametrize("max_norm, paper", FORMS)
def test_get_config_round_trip(max_norm, paper):
    model = make_model(7, max_norm, paper, score_scale=4.0)
    checks.assert_config_round_trip(model, {
        "num_items": NUM_ITEMS, "embedding_dim": DIM, "max_len": MAX_LEN,
        "embedding_max_norm": max_norm, "paper_equations": paper, "score_scale": 4.0,
        "repeat_head": False}, SESSIONS)


def test_keras_serialize_deserialize():
    checks.assert_keras_serialization_round_trip(make_model(8), SESSIONS)


@pytest.mark.parametrize("paper", [False, True])
def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path, paper):
    checks.assert_checkpoint_restores_every_weight(
        make_model(9, paper_equations=paper), make_model(10, paper_equations=paper),
        SESSIONS, tmp_path)


def test_defaults_and_initialisation():
    config = STAMPConfig()
    assert (config.embedding_dim, config.embedding_max_norm, config.paper_equations) == (
        100, 1.0, False)
    keras.utils.set_random_seed(0)
    model = STAMPConfig(embedding_dim=100).build(2000)
    # N(0, 0.05^2) weights (code "stddev") and item table (a documented deviation from the
    # code's 0.002); no biases.
    assert np.std(model.item_embeddings.numpy()) == pytest.approx(0.05, rel=0.05)
    for weight in model.weights:
        assert not weight.path.endswith("bias"), weight.path
        if weight.path.endswith(("kernel", "attention_vector")):
            assert np.std(weight.numpy()) == pytest.approx(0.05, rel=0.2), weight.path


@pytest.mark.parametrize("field, value", [
    ("embedding_max_norm", -1.0), ("embedding_max_norm", float("inf")), ("embedding_dim", 0),
    ("max_len", 0), ("score_scale", -1.0),
])
def test_the_config_rejects_bad_values_naming_the_field(field, value):
    checks.assert_settings_rejected(STAMPConfig, {field: value}, field)


@pytest.mark.parametrize("paper, num_trainable_weights", [
    (False, 1 + 1 + 5),  # E, w0, the kernels W1, W2, W3, W_s, W_t
    (True, 1 + 1 + 5 + 3),  # and b_a, b_s, b_t
])
def test_model_passes_the_layer_harness(paper, num_trainable_weights):
    run_layer_test(
        STAMPModel, dict(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=MAX_LEN,
                         embedding_max_norm=1.0, paper_equations=paper),
        {"item_ids": SESSIONS}, resized_input_data={"item_ids": SESSIONS[:2, :3]},
        expected_output_shape=(len(SESSIONS), NUM_ITEMS),
        expected_num_trainable_weights=num_trainable_weights,
        reference=lambda model, item_ids: numpy_scores(model, item_ids.numpy(), 1.0, paper),
        rtol=1e-4, atol=1e-4, precision_tolerance_scale=3.0)
