"""L_in's hand-written gradient and the L2 term, against NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import losses


def numpy_loss_and_gradients(session, table, targets, weights):
    """sum_b w_b CE_b and its gradients in q and E, from the softmax's closed form."""
    scores = session @ table.T  # [B, M]
    shifted = scores - scores.max(axis=1, keepdims=True)
    softmax = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    rows = np.arange(len(targets))
    per_example = -np.log(softmax[rows, targets - 1])
    score_gradient = softmax.copy()
    score_gradient[rows, targets - 1] -= 1.0
    score_gradient *= weights[:, None]
    return (per_example, float(weights @ per_example), score_gradient @ table,
            score_gradient.T @ session)


def tf_loss_and_gradients(session, table, targets, weights, matmul_dtype):
    session, table = tf.constant(session), tf.constant(table)
    with tf.GradientTape() as tape:
        tape.watch([session, table])
        per_example = losses.full_softmax_cross_entropy(
            session, table, tf.constant(targets), matmul_dtype=matmul_dtype)
        loss = tf.reduce_sum(tf.constant(weights) * per_example)
    grad_session, grad_table = tape.gradient(loss, [session, table])
    return per_example.numpy(), float(loss), grad_session.numpy(), grad_table.numpy()


def random_problem(seed, batch=7, num_items=40, dim=6):
    rng = np.random.default_rng(seed)
    session = rng.normal(size=(batch, dim)).astype(np.float32)
    table = rng.normal(size=(num_items, dim)).astype(np.float32)
    targets = rng.integers(1, num_items + 1, size=batch).astype(np.int32)
    targets[0] = num_items  # the last column is reachable
    weights = rng.uniform(0.1, 2.0, size=batch).astype(np.float32)  # not one shared scale
    return session, table, targets, weights


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_loss_and_gradients_match_numpy(seed):
    problem = random_problem(seed)
    expected = numpy_loss_and_gradients(*(np.float64(x) if x.dtype != np.int32 else x
                                          for x in problem))
    actual = tf_loss_and_gradients(*problem, matmul_dtype=tf.float32)
    for got, want in zip(actual, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_bfloat16_matmuls_stay_close_to_float32():
    problem = random_problem(3, batch=16, num_items=200, dim=32)
    exact = tf_loss_and_gradients(*problem, matmul_dtype=tf.float32)
    mixed = tf_loss_and_gradients(*problem, matmul_dtype=tf.bfloat16)
    for got, want in zip(mixed, exact):
        # bfloat16 keeps 8 significant bits: relative errors of about 2^-8 per product.
        np.testing.assert_allclose(got, want, rtol=0.05, atol=0.05 * np.abs(want).max())
    assert mixed[2].dtype == mixed[3].dtype == np.float32  # gradients come back float32
    assert not np.array_equal(mixed[2], exact[2])  # the bfloat16 path really ran


def test_large_scores_do_not_overflow():
    session, table, targets, weights = random_problem(4)
    per_example, loss, grad_session, grad_table = tf_loss_and_gradients(
        session * 100.0, table * 100.0, targets, weights, tf.float32)
    for value in (per_example, loss, grad_session, grad_table):
        assert np.all(np.isfinite(value))


def test_l2_penalty_is_the_sum_of_squares():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=shape).astype(np.float32) for shape in [(3, 4), (5,), (2, 2, 2)]]
    expected = sum(float(np.sum(np.float64(a) ** 2)) for a in arrays)
    actual = float(losses.l2_penalty([tf.Variable(a) for a in arrays]))
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
