"""Sampled softmax: the loss against NumPy (log-Q correction, accidental hits, in-batch
negatives), reproducible draws that follow the damped popularity, a step that learns, and
a clear error for more negatives than items."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import sampled_softmax
from mtd_tf.models.mtd import MTDModel
from mtd_tf.training import session_step
from tests import helpers

NUM_ITEMS, DIM = 25, 6
POPULARITY = np.arange(NUM_ITEMS) % 7 * 10  # some items never clicked


def numpy_loss(sampler, session, candidates, targets, negatives):
    """-log softmax of the target's corrected logit among the corrected negatives."""
    damped = (POPULARITY + 1.0) ** sampled_softmax.SAMPLING_EXPONENT
    log_q = np.log(sampler.num_negatives * damped / damped.sum())
    shares = np.maximum(POPULARITY, 1.0) / POPULARITY.sum()
    losses = []
    for row, target in enumerate(targets):
        scores = candidates @ session[row]
        logits = [scores[target - 1] - log_q[target - 1]]
        logits += [scores[item - 1] - log_q[item - 1] for item in negatives if item != target]
        if sampler.in_batch:
            logits += [scores[other - 1] - np.log(len(targets) * shares[other - 1])
                       for other in targets if other != target]
        logits = np.array(logits)
        losses.append(np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[0])
    return np.array(losses)


@pytest.mark.parametrize("in_batch", [False, True])
def test_loss_matches_numpy(in_batch):
    rng = np.random.default_rng(0)
    sampler = sampled_softmax.PopularitySampler(POPULARITY, 8, in_batch=in_batch, seed=3)
    session = rng.normal(size=(5, DIM)).astype(np.float32)
    candidates = rng.normal(size=(NUM_ITEMS, DIM)).astype(np.float32)
    step = tf.constant(4, tf.int64)
    negatives = sampler.negatives(step).numpy()
    targets = np.array([negatives[0], 2, 2, 7, 25], np.int32)  # an accidental hit; a repeat
    loss = sampler.loss(session, lambda ids: tf.gather(candidates, ids - 1), targets,
                        step).numpy()
    np.testing.assert_allclose(loss, numpy_loss(sampler, session.astype(np.float64),
                                                candidates.astype(np.float64), targets,
                                                negatives), rtol=1e-5, atol=1e-5)


def test_draws_are_reproducible_per_step_and_follow_the_damped_popularity():
    sampler = sampled_softmax.PopularitySampler(POPULARITY, 20000, seed=1)
    first = sampler.negatives(tf.constant(7)).numpy()
    np.testing.assert_array_equal(first, sampler.negatives(tf.constant(7)).numpy())
    assert not np.array_equal(first, sampler.negatives(tf.constant(8)).numpy())
    assert first.min() >= 1 and first.max() <= NUM_ITEMS
    damped = (POPULARITY + 1.0) ** sampled_softmax.SAMPLING_EXPONENT
    shares = np.bincount(first - 1, minlength=NUM_ITEMS) / len(first)
    np.testing.assert_allclose(shares, damped / damped.sum(), atol=0.01)


def test_a_step_with_sampled_negatives_learns():
    keras.utils.set_random_seed(0)
    model = MTDModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=5, dropout=0.0)
    model.build()
    optimizer = keras.optimizers.Adam(learning_rate=1e-2)
    optimizer.build(model.trainable_variables)
    spec = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))
    sampler = sampled_softmax.PopularitySampler(POPULARITY, 10, in_batch=True)
    step = session_step.make_session_train_step(model, optimizer, tf.distribute.get_strategy(),
                                                0.0, spec, sampler=sampler)
    rng = np.random.default_rng(1)
    ids = rng.integers(1, NUM_ITEMS + 1, size=(16, 4)).astype(np.int32)
    batch = (tf.constant(ids), tf.constant((ids[:, -1] % NUM_ITEMS + 1).astype(np.int32)))
    seen = [float(step(batch)["loss/in"]) for _ in range(40)]
    assert seen[-1] < 0.5 * seen[0]


def test_more_negatives_than_items_is_one_error_line(tmp_path):
    data_dir = helpers.write_tiny_dataset(tmp_path / "data")
    result = helpers.run_python(["mtd_tf/main.py", "--dataset=tiny", f"--data_dir={data_dir}",
                                 f"--model_dir={tmp_path}/run", "--loss=sampled_softmax",
                                 "--num_negatives=100000", "--epochs=1"])
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--num_negatives=100000 is larger than the catalogue" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_run_trains_with_sampled_softmax_and_still_ranks_every_item(tmp_path):
    data_dir = helpers.write_tiny_dataset(tmp_path / "data")
    config = helpers.tiny_config(data_dir, tmp_path / "run", loss="sampled_softmax",
                                 num_negatives=30, in_batch_negatives=True)
    report = helpers.train_and_evaluate(config)
    assert report["flags"]["loss"] == "sampled_softmax" and report["flags"]["num_negatives"] == 30
    assert 0.0 < report["test"]["P@20"] <= 100.0
