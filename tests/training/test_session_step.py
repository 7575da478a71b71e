"""The session step: L_in (softmax cross-entropy over all M items) + L2, one trace, updates."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import losses
from mtd_tf import metrics
from mtd_tf.models.mtd import MTDModel
from mtd_tf.training import session_step
from tests.layers.test_repeat_explore import numpy_log_probabilities
from tests.models.test_mtd import numpy_queries
from tests.models.test_mtd import numpy_scores

NUM_ITEMS = 30
DIM = 8
SPEC = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))


def built(seed, l2, lr=1e-3, repeat_head=False, repeat_from_scores=False):
    keras.utils.set_random_seed(seed)
    model = MTDModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=10, dropout=0.0,
                     repeat_head=repeat_head, repeat_from_scores=repeat_from_scores)
    model.build()
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    optimizer.build(model.trainable_variables)
    step = session_step.make_session_train_step(
        model, optimizer, tf.distribute.get_strategy(), l2, SPEC)
    return model, optimizer, step


def random_batch(rng, batch, width):
    """Right-padded prefixes of lengths 1..width and targets in 1..M."""
    lengths = rng.integers(1, width + 1, size=batch)
    lengths[0] = width  # the batch is exactly `width` wide
    ids = rng.integers(1, NUM_ITEMS + 1, size=(batch, width))
    ids[np.arange(width)[None, :] >= lengths[:, None]] = 0
    return ids.astype(np.int32), rng.integers(1, NUM_ITEMS + 1, size=batch).astype(np.int32)


def numpy_cross_entropy(scores, targets):
    """-mean_b log softmax(scores_b)[target_b - 1], over all M columns."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -np.mean(log_softmax[np.arange(len(targets)), targets - 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_is_softmax_cross_entropy_over_all_items_plus_l2(seed):
    l2 = 0.01  # large, so that a missing or wrong penalty shows
    model, _, step = built(seed, l2)
    rng = np.random.default_rng(seed)
    ids, targets = random_batch(rng, 6, 5)
    before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
    expected_in = numpy_cross_entropy(numpy_scores(model, ids), targets)
    # ||Theta||^2 over every trainable variable, embedding table included.
    expected_penalty = l2 * sum(np.sum(v ** 2) for v in before)
    result = step((tf.constant(ids), tf.constant(targets)))
    assert set(result) == {"loss/in", "loss/total"}
    np.testing.assert_allclose(float(result["loss/in"]), expected_in, rtol=1e-5)
    np.testing.assert_allclose(float(result["loss/total"]), expected_in + expected_penalty,
                               rtol=1e-5)
    assert expected_penalty > 0.01 * expected_in  # the L2 term is not lost in rounding


def test_l2_zero_gives_equal_losses():
    model, _, step = built(0, 0.0)
    ids, targets = random_batch(np.random.default_rng(0), 4, 3)
    result = step((tf.constant(ids), tf.constant(targets)))
    assert float(result["loss/in"]) == float(result["loss/total"])


def test_step_traces_once_across_batch_shapes(monkeypatch):
    model, _, step = built(0, 1e-6)
    traces = []
    original_penalty = losses.l2_penalty

    def counting_penalty(variables):  # runs in Python only while tracing
        traces.append(1)
        return original_penalty(variables)

    monkeypatch.setattr(losses, "l2_penalty", counting_penalty)
    rng = np.random.default_rng(0)
    for batch, width in [(4, 2), (7, 5), (3, 9), (1, 1), (8, 3)]:
        ids, targets = random_batch(rng, batch, width)
        result = step((tf.constant(ids), tf.constant(targets)))
        assert np.isfinite(float(result["loss/in"]))
    assert step.experimental_get_tracing_count() == 1
    assert len(traces) == 1


@pytest.mark.parametrize("seed", [0, 1])
def test_step_applies_adam_to_the_embedding_table(seed):
    lr = 1e-3
    model, optimizer, step = built(seed, 1e-6, lr=lr)
    ids, targets = random_batch(np.random.default_rng(seed), 6, 4)
    table_before = model.item_embeddings.numpy().copy()
    with tf.GradientTape() as tape:
        scores = model(ids, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets - 1, scores))
        loss += 1e-6 * tf.add_n([tf.reduce_sum(v ** 2) for v in model.trainable_variables])
    gradient = tape.gradient(loss, model.item_embeddings).numpy()
    step((tf.constant(ids), tf.constant(targets)))
    assert int(optimizer.iterations) == 1
    delta = model.item_embeddings.numpy() - table_before
    # Every item gets a gradient (the softmax covers all M items), so every row moves.
    assert np.all(np.abs(delta).max(axis=1) > 0)
    # Keras Adam's first step: m = (1 - b1) g, v = (1 - b2) g^2, step size
    # lr sqrt(1 - b2) / (1 - b1), so delta = -lr sqrt(1 - b2) g / (sqrt(1 - b2) |g| + eps),
    # about lr against the gradient's sign.
    root = np.sqrt(1.0 - 0.999)
    expected = -lr * root * gradient / (root * np.abs(gradient) + 1e-7)
    np.testing.assert_allclose(delta, expected, rtol=1e-3, atol=1e-7)


def test_repeated_steps_lower_the_loss_on_one_batch():
    _, _, step = built(0, 1e-6, lr=1e-2)
    ids, targets = random_batch(np.random.default_rng(0), 16, 4)
    batch = (tf.constant(ids), tf.constant(targets))
    losses = [float(step(batch)["loss/in"]) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def test_rank_step_and_evaluate_match_numpy_ranks():
    model, _, _ = built(3, 1e-6)
    strategy = tf.distribute.get_strategy()
    rng = np.random.default_rng(3)
    popularity = rng.integers(0, 50, size=model.num_items).astype(np.float32)
    rank_step = session_step.make_rank_step(model, strategy, SPEC, popularity)
    batches = [random_batch(rng, 5, 4), random_batch(rng, 3, 2)]
    # A session with no known item is ranked by popularity, not by all-zero model scores.
    batches[1][0][0] = 0
    all_ranks = []
    for ids, targets in batches:
        empty = (ids == 0).all(axis=1)
        scores = np.tile(popularity, (len(ids), 1))
        scores[~empty] = numpy_scores(model, ids[~empty])
        target_scores = scores[np.arange(len(targets)), targets - 1]
        all_ranks.append(1 + (scores > target_scores[:, None]).sum(axis=1))
    ranks = np.concatenate(all_ranks)
    dataset = [(tf.constant(ids), tf.constant(targets)) for ids, targets in batches]
    result = session_step.evaluate(rank_step, strategy, dataset, len(dataset),
                                   metrics.RankingMetrics(ks=(1, 5, 10)))
    for k in (1, 5, 10):
        np.testing.assert_allclose(result[f"P@{k}"], 100 * np.mean(ranks <= k))


@pytest.mark.parametrize("from_scores", [False, True])
def test_with_the_repeat_head_the_loss_is_minus_log_p_of_the_mixture(from_scores):
    model, _, step = built(4, 0.0, lr=1e-2, repeat_head=True, repeat_from_scores=from_scores)
    rng = np.random.default_rng(4)
    ids, targets = random_batch(rng, 8, 5)
    targets[:4] = ids[:4, 0]  # half the targets repeat a prefix item
    queries = numpy_queries(model, ids)
    table = model.item_embeddings.numpy().astype(np.float64)
    log_p = numpy_log_probabilities(model.repeat_head, ids, queries, table, queries @ table.T)
    expected = -np.mean(log_p[np.arange(len(targets)), targets - 1])
    result = step((tf.constant(ids), tf.constant(targets)))
    np.testing.assert_allclose(float(result["loss/in"]), expected, rtol=1e-5)
    batch = (tf.constant(ids), tf.constant(targets))
    losses_seen = [float(step(batch)["loss/in"]) for _ in range(30)]
    assert losses_seen[-1] < 0.5 * losses_seen[0]

    # Evaluation ranks by the same log P.
    rank_step = session_step.make_rank_step(model, tf.distribute.get_strategy(), SPEC,
                                            np.ones(NUM_ITEMS, np.float32))
    queries = numpy_queries(model, ids)
    table = model.item_embeddings.numpy().astype(np.float64)
    log_p = numpy_log_probabilities(model.repeat_head, ids, queries, table, queries @ table.T)
    target_log_p = log_p[np.arange(len(targets)), targets - 1]
    expected_ranks = 1 + (log_p > target_log_p[:, None] + 1e-9).sum(axis=1)
    np.testing.assert_array_equal(rank_step(batch).numpy(), expected_ranks)
