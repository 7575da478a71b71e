"""FusedAdam: Keras Adam's numbers and checkpoints, one fused update per variable."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.training.fused_adam import FusedAdam

SHAPES = [(50, 4), (3,), (2, 3, 2)]


def apply_steps(optimizer, variables, gradient_batches):
    """Builds `optimizer` for `variables` and applies each batch of gradients in turn."""
    optimizer.build(variables)

    @tf.function
    def step(gradients):
        optimizer.apply_gradients(zip(gradients, variables))

    for gradients in gradient_batches:
        step(gradients)


def run(optimizer_class, gradient_batches, initial):
    variables = [keras.Variable(value) for value in initial]
    optimizer = optimizer_class(learning_rate=0.01)
    apply_steps(optimizer, variables, gradient_batches)
    return variables, optimizer


def random_gradients(rng, steps):
    return [[tf.constant(rng.normal(size=shape).astype(np.float32)) for shape in SHAPES]
            for _ in range(steps)]


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_keras_adam_over_several_steps(seed):
    rng = np.random.default_rng(seed)
    initial = [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]
    gradients = random_gradients(rng, 6)
    expected, keras_optimizer = run(keras.optimizers.Adam, gradients, initial)
    actual, fused_optimizer = run(FusedAdam, gradients, initial)
    for got, want, start in zip(actual, expected, initial):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
        assert np.abs(got.numpy() - start).max() > 1e-3  # the variables did move
    for got, want in zip(fused_optimizer.variables, keras_optimizer.variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)
    assert int(fused_optimizer.iterations) == 6


def test_sparse_gradients_update_as_dense_zeros_elsewhere():
    rng = np.random.default_rng(2)
    initial = rng.normal(size=(6, 3)).astype(np.float32)
    rows = tf.constant([1, 4, 1])
    values = tf.constant(rng.normal(size=(3, 3)).astype(np.float32))
    sparse = [[tf.IndexedSlices(values, rows, tf.constant([6, 3]))]]
    dense = [[tf.convert_to_tensor(sparse[0][0])]]
    (fused,), _ = run(FusedAdam, sparse, [initial])
    (reference,), _ = run(keras.optimizers.Adam, dense, [initial])
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-5, atol=1e-7)


def test_checkpoints_are_interchangeable_with_keras_adam(tmp_path):
    rng = np.random.default_rng(3)
    initial = [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]
    variables, keras_optimizer = run(keras.optimizers.Adam, random_gradients(rng, 3), initial)
    path = tf.train.Checkpoint(optimizer=keras_optimizer).write(os.path.join(tmp_path, "ckpt"))
    restored_variables = [keras.Variable(np.zeros(shape, np.float32)) for shape in SHAPES]
    fused = FusedAdam(learning_rate=0.01)
    fused.build(restored_variables)
    tf.train.Checkpoint(optimizer=fused).read(path).assert_consumed()
    assert int(fused.iterations) == 3
    for got, want in zip(fused.variables, keras_optimizer.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_config_round_trip_and_no_amsgrad():
    optimizer = FusedAdam(learning_rate=0.003, beta_1=0.8)
    clone = FusedAdam.from_config(optimizer.get_config())
    assert isinstance(clone, FusedAdam)
    assert clone.get_config() == optimizer.get_config()
    with pytest.raises(ValueError, match="amsgrad"):
        FusedAdam(amsgrad=True)
