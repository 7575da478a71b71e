"""BilinearDiscriminator (eq. 7) against NumPy."""

import numpy as np
import pytest

from mtd_tf.layers.bilinear_discriminator import BilinearDiscriminator
from tests.layers.harness import run_layer_test


def numpy_logits(layer, h, summary):
    """h_m^T W_g z, one row at a time."""
    kernel = layer.kernel.numpy().astype(np.float64)
    summary = np.asarray(summary, np.float64)
    return np.array([row @ kernel @ summary for row in np.asarray(h, np.float64)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logits_match_numpy(seed):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(7, 5)).astype(np.float32)
    summary = rng.uniform(size=5).astype(np.float32)
    layer = BilinearDiscriminator()
    logits = layer((h, summary)).numpy()
    assert logits.shape == (7,)
    np.testing.assert_allclose(logits, numpy_logits(layer, h, summary), rtol=1e-5, atol=1e-6)


def test_hand_sized_example():
    layer = BilinearDiscriminator()
    layer.build(((None, 2), (2,)))
    layer.kernel.assign([[1.0, 2.0], [0.0, -1.0]])
    # W_g z with z = (1, 3): (1 + 6, -3) = (7, -3); rows (1, 0) -> 7, (2, 1) -> 14 - 3 = 11.
    logits = layer((np.array([[1.0, 0.0], [2.0, 1.0]], np.float32), np.array([1.0, 3.0], np.float32)))
    np.testing.assert_allclose(logits.numpy(), [7.0, 11.0])


def test_single_weight_without_bias():
    layer = BilinearDiscriminator()
    layer.build(((None, 4), (4,)))
    assert [tuple(w.shape) for w in layer.trainable_weights] == [(4, 4)]


def test_layer_harness():
    rng = np.random.default_rng(3)

    def graph_batch(num_nodes):
        return {"inputs": (rng.normal(size=(num_nodes, 5)).astype(np.float32),
                           rng.uniform(size=5).astype(np.float32))}

    run_layer_test(
        BilinearDiscriminator, {"name": "disc"}, graph_batch(7),
        resized_input_data=graph_batch(3), expected_output_shape=(7,),
        expected_num_trainable_weights=1,
        reference=lambda layer, inputs: numpy_logits(layer, *inputs), rtol=1e-5, atol=1e-6)
