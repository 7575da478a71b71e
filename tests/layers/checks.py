"""Inputs and checks the layer tests share, written once so that the layers are held to
the same standard: the same ragged batch, the same padding noise, the same Keras
serialization round trip."""

import keras
import numpy as np

LENGTHS = [3, 1, 5, 2]  # a batch mixing lengths, padded to MAX_LEN
MAX_LEN = 5


def padding_mask(lengths, max_len=MAX_LEN):
    """[len(lengths), max_len] bool, True = real item: each row's first `length` columns."""
    return np.arange(max_len)[np.newaxis, :] < np.asarray(lengths)[:, np.newaxis]


def with_noisy_padding(x, mask, rng):
    """`x` with every padding position replaced by large noise: a layer that reads padding
    gives a different answer on it."""
    noise = rng.normal(scale=100.0, size=x.shape)
    return np.where(mask[..., np.newaxis], x, noise).astype(np.float32)


def assert_keras_serialization(layer):
    """Serializes `layer` under its registered `mtd_tf>` name and revives an equal one."""
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"mtd_tf>{type(layer).__name__}"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(revived, type(layer))
    assert revived.get_config() == layer.get_config()
