"""RowSparseAdam against a NumPy lazy Adam: the rows a gradient names move (repeated rows
summed, each with its L2 term), every other row and its moments stay; a dense gradient is
Adam's with the L2 term; other variables are FusedAdam's; in the session step, lazy
updates with the full softmax train the same weights as Adam with the penalty in the loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.models.mtd import MTDModel
from mtd_tf.training import session_step
from mtd_tf.training.fused_adam import FusedAdam
from mtd_tf.training.row_sparse_adam import RowSparseAdam
from tests.training.test_fused_adam import apply_steps

LR, BETA_1, BETA_2, EPSILON = 0.01, 0.9, 0.999, 1e-7


def numpy_lazy_adam(table, steps, l2):
    """Lazy Adam of `table` over steps of (rows, values), in float64."""
    table = table.astype(np.float64)
    momentum, velocity = np.zeros_like(table), np.zeros_like(table)
    for step, (rows, values) in enumerate(steps, start=1):
        used = np.unique(rows)
        gradient = np.zeros_like(table)
        np.add.at(gradient, rows, values)
        gradient[used] += 2 * l2 * table[used]
        momentum[used] = BETA_1 * momentum[used] + (1 - BETA_1) * gradient[used]
        velocity[used] = BETA_2 * velocity[used] + (1 - BETA_2) * gradient[used] ** 2
        alpha = LR * np.sqrt(1 - BETA_2 ** step) / (1 - BETA_1 ** step)
        table[used] -= alpha * momentum[used] / (np.sqrt(velocity[used]) + EPSILON)
    return table, momentum, velocity


@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_rows_used_move_as_lazy_adam_and_the_others_stay(l2):
    rng = np.random.default_rng(0)
    initial = rng.normal(size=(12, 3)).astype(np.float32)
    steps = [(np.array([1, 4, 1]), rng.normal(size=(3, 3))),  # row 1 twice: summed
             (np.array([4, 7]), rng.normal(size=(2, 3))),
             (np.array([1, 1, 1, 9]), rng.normal(size=(4, 3)))]
    table = keras.Variable(initial)
    optimizer = RowSparseAdam(learning_rate=LR, row_variables=[table], row_l2=l2)
    apply_steps(optimizer, [table], [[tf.IndexedSlices(tf.constant(values, tf.float32),
                                                 tf.constant(rows), tf.constant([12, 3]))]
                               for rows, values in steps])
    want, want_momentum, want_velocity = numpy_lazy_adam(initial, steps, l2)
    np.testing.assert_allclose(table.numpy(), want, rtol=1e-5, atol=1e-6)
    (momentum,) = [slot for slot in optimizer.variables if "momentum" in slot.path]
    (velocity,) = [slot for slot in optimizer.variables if "velocity" in slot.path]
    np.testing.assert_allclose(momentum.numpy(), want_momentum, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(velocity.numpy(), want_velocity, rtol=1e-4, atol=1e-9)
    untouched = [0, 2, 3, 5, 6, 8, 10, 11]
    np.testing.assert_array_equal(table.numpy()[untouched], initial[untouched])
    assert not momentum.numpy()[untouched].any()


def test_a_dense_gradient_is_adams_with_the_l2_term_and_other_variables_are_fused_adams():
    rng = np.random.default_rng(1)
    initial = [rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
    gradients = [[tf.constant(rng.normal(size=value.shape).astype(np.float32))
                  for value in initial] for _ in range(3)]
    lazy = [keras.Variable(value) for value in initial]
    apply_steps(RowSparseAdam(learning_rate=LR, row_variables=lazy[:1], row_l2=0.05), lazy,
                gradients)
    dense = [keras.Variable(value) for value in initial]
    optimizer = FusedAdam(learning_rate=LR)
    optimizer.build(dense)

    @tf.function
    def step(gradients):  # the L2 term of the table in the gradient, as a penalty gives it
        optimizer.apply_gradients(zip([gradients[0] + 0.1 * dense[0], gradients[1]], dense))

    for batch in gradients:
        step(batch)
    for got, want in zip(lazy, dense):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_config_round_trip_keeps_the_l2():
    optimizer = RowSparseAdam(learning_rate=0.003, row_l2=1e-5)
    clone = RowSparseAdam.from_config(optimizer.get_config())
    assert clone.get_config() == optimizer.get_config() and clone.row_l2 == 1e-5


def test_full_softmax_session_steps_train_what_adam_with_the_penalty_trains():
    """With the full softmax every row is used: the lazy optimizer (penalty of the table
    added by it) and FusedAdam (penalty in the loss) give the same weights."""
    spec = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))
    rng = np.random.default_rng(2)
    batches = [(tf.constant(rng.integers(1, 31, size=(8, 4)).astype(np.int32)),
                tf.constant(rng.integers(1, 31, size=8).astype(np.int32))) for _ in range(3)]
    trained = []
    for lazy in (False, True):
        keras.utils.set_random_seed(0)
        model = MTDModel(num_items=30, embedding_dim=8, max_len=6, dropout=0.0)
        model.build()
        optimizer = (RowSparseAdam(learning_rate=LR, row_variables=model.item_tables(),
                                   row_l2=0.01) if lazy else FusedAdam(learning_rate=LR))
        optimizer.build(model.trainable_variables)
        step = session_step.make_session_train_step(
            model, optimizer, tf.distribute.get_strategy(), 0.01, spec,
            unpenalised=model.item_tables() if lazy else ())
        for batch in batches:
            step(batch)
        trained.append([variable.numpy() for variable in model.trainable_variables])
    for got, want in zip(*trained):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_sampled_softmax_step_moves_only_the_rows_it_used():
    """A batch's prefix items, targets and drawn negatives are the rows that move; the
    other rows of a 500-item table keep their values, so the step's cost need not grow
    with the catalogue."""
    from mtd_tf import sampled_softmax  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(0)
    model = MTDModel(num_items=500, embedding_dim=8, max_len=6, dropout=0.0)
    model.build()
    optimizer = RowSparseAdam(learning_rate=LR, row_variables=model.item_tables(), row_l2=0.01)
    optimizer.build(model.trainable_variables)
    sampler = sampled_softmax.PopularitySampler(np.arange(500) + 1, 16)
    spec = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))
    step = session_step.make_session_train_step(
        model, optimizer, tf.distribute.get_strategy(), 0.01, spec, sampler=sampler,
        unpenalised=model.item_tables())
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 501, size=(8, 4)).astype(np.int32)
    targets = rng.integers(1, 501, size=8).astype(np.int32)
    negatives = sampler.negatives(tf.constant(0)).numpy()
    before = model.item_embeddings.numpy()
    step((tf.constant(ids), tf.constant(targets)))
    moved = np.flatnonzero((model.item_embeddings.numpy() != before).any(axis=1)) + 1
    used = set(ids.ravel()) | set(targets) | set(negatives)
    assert set(moved) == used - {0}
