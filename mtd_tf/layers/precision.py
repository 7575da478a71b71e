"""Where the layers leave a mixed-precision policy's 16-bit compute dtype.

Under `mixed_float16` or `mixed_bfloat16` the layers compute in the policy's 16-bit dtype
(float16 keeps 11 significant bits, bfloat16 8) except in softmax normalisations, whose
exponentials and sums are taken in float32 (as Keras's layer normalisation does). Under
float32 (and float64) these casts are the identity, so the numbers are those of a layer
without them.
"""

import tensorflow as tf


def at_least_float32(dtype):
    """float32 for float16 and bfloat16; any other dtype unchanged."""
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype
