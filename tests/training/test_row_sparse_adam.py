"""RowSparseAdam against Adam: rows a gradient names are updated after their skipped
steps, and after `catch_up` every row, with its moments, is where Adam (FusedAdam given the
same gradients, dense) puts it; each row's L2 term applies where it is used; a dense
gradient is Adam's with the L2 term; other variables are FusedAdam's; in the session step,
sparse updates with the full softmax train the same weights as Adam with the penalty in
the loss, and a sampled-softmax step moves only the rows it used."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.models.mtd import MTDModel
from mtd_tf.training import session_step
from mtd_tf.training.fused_adam import FusedAdam
from mtd_tf.training.row_sparse_adam import RowSparseAdam
from tests.training.test_fused_adam import apply_steps

LR = 0.01
NUM_ROWS = 12


def sparse_steps(rng, rows_per_step):
    """IndexedSlices gradients of a [12, 3] table, one per list of rows (repeats allowed)."""
    return [[tf.IndexedSlices(tf.constant(rng.normal(size=(len(rows), 3)), tf.float32),
                              tf.constant(rows), tf.constant([NUM_ROWS, 3]))]
            for rows in rows_per_step]


def slots(optimizer):
    (momentum,) = [slot for slot in optimizer.variables if "momentum" in slot.path]
    (velocity,) = [slot for slot in optimizer.variables if "velocity" in slot.path]
    return momentum.numpy(), velocity.numpy()


# Rows used per step: row 1 twice in a step, rows left for 1 to 44 steps (beyond the
# exact terms), rows never used.
PATTERN = ([[1, 4, 1], [4, 7], [1, 1, 1, 9]] + [[2]] * 40 + [[4, 9, 2], [0, 7]])


@pytest.mark.parametrize("catch_up", [True, False])
def test_rows_end_where_adam_puts_them(catch_up):
    """With `catch_up` every row matches Adam; without it, the rows used in the last step
    match it and the rows never used are untouched."""
    rng = np.random.default_rng(0)
    initial = rng.normal(size=(NUM_ROWS, 3)).astype(np.float32)
    gradients = sparse_steps(rng, PATTERN)
    table = keras.Variable(initial)
    optimizer = RowSparseAdam(learning_rate=LR, row_variables=[table])
    apply_steps(optimizer, [table], gradients)
    dense_table = keras.Variable(initial)
    adam = FusedAdam(learning_rate=LR)  # densifies the IndexedSlices: Adam proper
    apply_steps(adam, [dense_table], gradients)
    if catch_up:
        optimizer.catch_up([table])
        checked = np.arange(NUM_ROWS)
        for got, want in zip(slots(optimizer), slots(adam)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-9)
    else:
        checked = np.array([0, 7])
        never = [3, 5, 6, 8, 10, 11]
        np.testing.assert_array_equal(table.numpy()[never], initial[never])
    # Skips beyond the exact terms take the closed-form tail: within 1e-4 of Adam here,
    # where rows moved by up to 0.5.
    np.testing.assert_allclose(table.numpy()[checked], dense_table.numpy()[checked],
                               rtol=1e-4, atol=1e-4)
    assert np.abs(table.numpy() - initial).max() > 1e-2  # the rows did move


def test_each_used_row_gets_its_l2_term():
    """Every row used at every step: Adam with the L2 term's gradient 2 lambda2 E."""
    rng = np.random.default_rng(1)
    initial = rng.normal(size=(NUM_ROWS, 3)).astype(np.float32)
    every_row = list(range(NUM_ROWS))
    gradients = sparse_steps(rng, [every_row] * 3)
    table = keras.Variable(initial)
    apply_steps(RowSparseAdam(learning_rate=LR, row_variables=[table], row_l2=0.05), [table],
                gradients)
    dense = keras.Variable(initial)
    adam = FusedAdam(learning_rate=LR)
    adam.build([dense])

    @tf.function
    def step(gradient):
        adam.apply_gradients([(tf.convert_to_tensor(gradient) + 0.1 * dense, dense)])

    for (gradient,) in gradients:
        step(gradient)
    np.testing.assert_allclose(table.numpy(), dense.numpy(), rtol=1e-5, atol=1e-6)


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
            model, optimizer, tf.distribute.get_strategy(), 0.01, spec)
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
        model, optimizer, tf.distribute.get_strategy(), 0.01, spec, sampler=sampler)
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 501, size=(8, 4)).astype(np.int32)
    targets = rng.integers(1, 501, size=8).astype(np.int32)
    negatives = sampler.negatives(tf.constant(0)).numpy()
    before = model.item_embeddings.numpy()
    step((tf.constant(ids), tf.constant(targets)))
    moved = np.flatnonzero((model.item_embeddings.numpy() != before).any(axis=1)) + 1
    used = set(ids.ravel()) | set(targets) | set(negatives)
    assert set(moved) == used - {0}
