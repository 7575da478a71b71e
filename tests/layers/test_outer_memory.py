"""OuterMemory (CSRM's outer memory encoder): the read against NumPy, the bank's FIFO writes
against a NumPy ring of the latest sessions, and what must never happen (writes outside
training, NaN from an empty bank or a zero query).

`numpy_read` is the reference the CSRM model tests share.
"""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.layers import OuterMemory

DIM = 3


def numpy_read(query, stored, num_neighbors):
    """r for each query row against the stored vectors `stored` [n, d] (the filled slots, in
    any order): softmax over the cosines of the `num_neighbors` most similar, mixing them."""
    query, stored = np.asarray(query, np.float64), np.asarray(stored, np.float64)
    if len(stored) == 0:
        return np.zeros_like(query)
    cosine = query @ stored.T / (np.linalg.norm(query, axis=1, keepdims=True)
                                 * np.linalg.norm(stored, axis=1) + 1e-8)  # [B, n]
    reads = []
    for row in cosine:
        nearest = np.argsort(-row)[:num_neighbors]
        weights = np.exp(row[nearest] - row[nearest].max())
        reads.append((weights / weights.sum()) @ stored[nearest])
    return np.stack(reads)


def stored_rows(layer):
    """The filled slots of the bank, [min(write_count, memory_size), d]."""
    count = min(int(layer.write_count.numpy()), layer.memory_size)
    return layer.memory.numpy()[:count]


def _layer(memory_size=5, num_neighbors=2):
    layer = OuterMemory(memory_size=memory_size, num_neighbors=num_neighbors)
    layer.build((None, DIM))
    return layer


def test_writes_are_first_in_first_out_and_wrap_around():
    layer = _layer(memory_size=5)
    rng = np.random.default_rng(0)
    ring = collections.deque(maxlen=5)  # the latest 5 stored rows
    # Batches of 2, 3 (fills the bank exactly), 4 (wraps), 7 (longer than the bank), 1.
    for size in (2, 3, 4, 7, 1):
        rows = rng.normal(size=(size, DIM)).astype(np.float32)
        layer(rows, training=True)
        ring.extend(rows)
        count = int(layer.write_count.numpy())
        # Slot (n mod 5) holds the n-th row ever written: rebuild the ring's order from it.
        oldest_first = np.roll(layer.memory.numpy(), -(count % 5), axis=0) if count >= 5 else (
            layer.memory.numpy()[:count])
        np.testing.assert_array_equal(oldest_first, np.stack(ring))
    assert int(layer.write_count.numpy()) == 2 + 3 + 4 + 7 + 1


def test_only_rows_of_the_write_mask_are_stored_in_order():
    layer = _layer(memory_size=4)
    rows = np.arange(5 * DIM, dtype=np.float32).reshape(5, DIM)
    layer(rows, write_mask=np.array([True, False, True, True, False]), training=True)
    assert int(layer.write_count.numpy()) == 3
    np.testing.assert_array_equal(layer.memory.numpy()[:3], rows[[0, 2, 3]])
    np.testing.assert_array_equal(layer.memory.numpy()[3], 0.0)


@pytest.mark.parametrize("training", [False, None])
def test_reads_outside_training_never_write(training):
    layer = _layer()
    layer(np.ones((2, DIM), np.float32), training=True)
    before = layer.memory.numpy().copy()
    traced = tf.function(lambda q: layer(q, training=training))
    for call in (lambda q: layer(q, training=training), traced):
        call(np.random.default_rng(1).normal(size=(3, DIM)).astype(np.float32))
    np.testing.assert_array_equal(layer.memory.numpy(), before)
    assert int(layer.write_count.numpy()) == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_read_matches_numpy_before_the_batch_is_written(seed):
    rng = np.random.default_rng(seed)
    layer = _layer(memory_size=6, num_neighbors=3)
    layer(rng.normal(size=(4, DIM)).astype(np.float32), training=True)  # 4 of 6 slots
    stored = stored_rows(layer)
    query = rng.normal(size=(5, DIM)).astype(np.float32)
    read, (slots, weights) = layer(query, training=True, return_attention_scores=True)
    # The read saw the 4 earlier rows only; the batch was stored after it.
    np.testing.assert_allclose(read, numpy_read(query, stored, 3), rtol=1e-5, atol=1e-6)
    assert np.all(slots.numpy() < 4) and np.allclose(weights.numpy().sum(axis=1), 1.0)
    assert int(layer.write_count.numpy()) == 9


def test_fewer_stored_rows_than_neighbours_and_an_empty_bank():
    layer = _layer(memory_size=5, num_neighbors=4)
    query = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]], np.float32)  # a zero query too
    with tf.GradientTape() as tape:
        query_tensor = tf.constant(query)
        tape.watch(query_tensor)
        read = layer(query_tensor)
    np.testing.assert_array_equal(read, 0.0)  # nothing stored: nothing read
    assert np.isfinite(tape.gradient(tf.reduce_sum(read), query_tensor,
                                         unconnected_gradients="zero").numpy()).all()
    layer(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]], np.float32), training=True)
    with tf.GradientTape() as tape:
        query_tensor = tf.constant(query)
        tape.watch(query_tensor)
        read, (_, weights) = layer(query_tensor, return_attention_scores=True)
    # Two stored rows, four neighbours asked: the two unfilled slots get no weight.
    np.testing.assert_allclose(read, numpy_read(query, stored_rows(layer), 4), rtol=1e-5,
                               atol=1e-6)
    assert np.all((weights.numpy() > 0).sum(axis=1) == 2)
    assert np.isfinite(tape.gradient(tf.reduce_sum(read), query_tensor,
                                         unconnected_gradients="zero").numpy()).all()


def test_writes_inside_a_traced_training_step():
    layer = _layer(memory_size=4)
    step = tf.function(lambda q: layer(q, training=True),
                       input_signature=[tf.TensorSpec([None, DIM], tf.float32)])
    rows = np.arange(6 * DIM, dtype=np.float32).reshape(6, DIM)
    step(rows[:3])
    step(rows[3:])
    assert step.experimental_get_tracing_count() == 1
    # Rows 0..5 through 4 slots: slots 0, 1 hold rows 4, 5 and slots 2, 3 rows 2, 3.
    np.testing.assert_array_equal(layer.memory.numpy(), rows[[4, 5, 2, 3]])


def test_checkpoint_and_config_round_trip_keep_the_bank(tmp_path):
    layer = _layer(memory_size=4, num_neighbors=3)
    layer(np.random.default_rng(2).normal(size=(3, DIM)).astype(np.float32), training=True)
    path = tf.train.Checkpoint(layer=layer).write(str(tmp_path / "ckpt"))
    fresh = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert fresh.get_config() == layer.get_config()
    assert fresh.built  # the build config came along
    assert not fresh.trainable_weights and len(fresh.non_trainable_weights) == 2
    tf.train.Checkpoint(layer=fresh).read(path).assert_consumed()
    np.testing.assert_array_equal(fresh.memory.numpy(), layer.memory.numpy())
    assert int(fresh.write_count.numpy()) == 3


def test_mixed_precision_reads_a_float32_bank():
    layer = OuterMemory(memory_size=4, num_neighbors=2, dtype="mixed_bfloat16")
    layer.build((None, DIM))
    rows = np.random.default_rng(3).normal(size=(3, DIM)).astype(np.float32)
    layer(tf.constant(rows, tf.bfloat16), training=True)
    assert layer.memory.dtype == "float32"
    read = layer(tf.constant(rows, tf.bfloat16))
    assert read.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(read, tf.float32), numpy_read(
        tf.cast(tf.cast(rows, tf.bfloat16), tf.float32).numpy(), stored_rows(layer), 2),
        rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("kwargs", [dict(memory_size=0), dict(num_neighbors=0),
                                    dict(num_neighbors=6)])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        OuterMemory(**{"memory_size": 5, "num_neighbors": 2, **kwargs})
