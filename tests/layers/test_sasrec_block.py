"""SASRecBlock against the NumPy block of the SASRec model test, through the layer harness
(serialisation, one trace, padding noise, full mask = no mask, mixed precision, gradients)."""

import numpy as np
import pytest

from mtd_tf.layers.sasrec_block import SASRecBlock
from tests.layers.harness import LENGTHS, MAX_LEN, run_layer_test, session_batch
from tests.models.test_sasrec import numpy_block

DIM = 4


def numpy_outputs(layer, x, mask):
    """The block on each row's real items; padding rows stay 0."""
    # Keyed as the model test's reference reads them: "block/<sublayer>/<weight>".
    weights = {"block/" + w.path.split("/", 1)[1]: np.asarray(w.numpy(), np.float64)
               for w in layer.weights}
    x, mask = np.asarray(x, np.float64), np.asarray(mask)
    outputs = np.zeros_like(x)
    for row, real in enumerate(mask):
        length = int(real.sum())
        if length:
            outputs[row, :length] = numpy_block(x[row, :length], weights, "block", layer.num_heads)
    return outputs


@pytest.mark.parametrize("num_heads", [1, 2])
def test_the_block_passes_the_layer_harness(num_heads):
    rng = np.random.default_rng(num_heads)
    run_layer_test(
        SASRecBlock, dict(num_heads=num_heads, dropout=0.0), session_batch(rng, DIM),
        resized_input_data=session_batch(rng, DIM, [2, 1], 2),
        expected_output_shape=(len(LENGTHS), MAX_LEN, DIM),
        expected_num_trainable_weights=2 * 2 + 5 * 2,  # 2 LayerNorms, 5 dense layers
        reference=lambda layer, x, mask: numpy_outputs(layer, x.numpy(), mask.numpy()),
        rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(num_heads=0), dict(num_heads=True), dict(dropout=1.0)])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        SASRecBlock(**kwargs)
