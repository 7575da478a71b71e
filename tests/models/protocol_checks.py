"""The checks every next-item model owes the protocol, written once; each model's test
file runs them on its own models, with its own settings and its NumPy reference.

A check takes a built model, usually from `random_model`: random weights far from the
initial ones, so that a term a model drops, or a padding position it reads, changes the
scores. The checks cover padding (extra columns, the last *real* item, rows without
items), dropout, the config's round trip, Keras serialization, the
`tf.train.Checkpoint` that training saves, and the range checks shared with the CLI.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.errors import ConfigError

# Right-padded prefixes over items 1..9 of lengths 3, 1, 5 (a repeated click) and 2: the
# batch a model's tests score unless the model needs one of its own.
SESSIONS = np.array([
    [5, 6, 7, 0, 0],
    [9, 0, 0, 0, 0],
    [1, 9, 3, 3, 2],
    [4, 8, 0, 0, 0],
])
# The prefix whose last real click is 7, and the prefixes it must not be scored as.
LAST_CLICK_SEVEN = [[5, 6, 7, 0, 0]]
UNPADDED = [[5, 6, 7]]
LAST_CLICK_DROPPED = [[5, 6, 0, 0, 0]]
LAST_CLICK_REPLACED = [[5, 6, 8, 0, 0]]


def assign_random_weights(model, rng):
    """Draws every trainable weight of `model` from `rng`: N(0, 0.5^2), LayerNorm scales
    from U(0.5, 1.5) (a scale near zero or negative would hide the normalised input)."""
    for weight in model.trainable_weights:
        if weight.path.endswith("gamma"):
            value = rng.uniform(0.5, 1.5, weight.shape)
        else:
            value = rng.normal(0.0, 0.5, weight.shape)
        weight.assign(value.astype(np.float32))


def random_model(model_class, seed, **settings):
    """`model_class(**settings)`, built under `seed`, with `assign_random_weights` drawn
    from `np.random.default_rng(seed)`."""
    keras.utils.set_random_seed(seed)
    model = model_class(**settings)
    model.build()
    assign_random_weights(model, np.random.default_rng(seed))
    return model


def scores_of(model, item_ids, **kwargs):
    """The model's output for int `item_ids` [batch, len] as a NumPy array."""
    return model(tf.constant(item_ids, tf.int32), **kwargs).numpy()


def assert_extra_padding_changes_nothing(model, sessions):
    """Four more columns of padding leave every row's scores as they were."""
    padded = np.pad(sessions, [[0, 0], [0, 4]])
    np.testing.assert_allclose(scores_of(model, padded), scores_of(model, sessions),
                               rtol=1e-5, atol=1e-5)


def assert_last_real_item_is_used(model, reference):
    """[5, 6, 7, 0, 0] scores as [5, 6, 7] and as the NumPy `reference` (item ids ->
    scores) scores [5, 6, 7], and not as [5, 6, 0, 0, 0] or [5, 6, 8, 0, 0]: a model that
    read the last column would see padding in both of the first two and not tell them
    apart, one that ignored the last click would not tell 7 from 8."""
    padded = scores_of(model, LAST_CLICK_SEVEN)
    np.testing.assert_allclose(padded, scores_of(model, UNPADDED), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(padded, reference(UNPADDED), rtol=1e-4, atol=1e-4)
    assert np.abs(padded - scores_of(model, LAST_CLICK_DROPPED)).max() > 1e-3
    assert np.abs(padded - scores_of(model, LAST_CLICK_REPLACED)).max() > 1e-3


def assert_rows_without_items_are_finite(model, sessions):
    """A row of padding only (serving may send one) gets finite scores and leaves the other
    rows' scores as they were; a batch of such rows is finite too."""
    with_empty = np.concatenate([sessions, np.zeros((1, sessions.shape[1]), sessions.dtype)])
    scores = scores_of(model, with_empty)
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores[:-1], scores_of(model, sessions), rtol=1e-5, atol=1e-5)
    assert np.isfinite(scores_of(model, np.zeros((2, 3), int))).all()


def assert_dropout_only_in_training(model, sessions, reference):
    """For a model with dropout: a call with `training` False or unset scores as the NumPy
    `reference` (item ids -> scores) and a training call does not."""
    inference = scores_of(model, sessions, training=False)
    np.testing.assert_allclose(inference, reference(sessions), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(scores_of(model, sessions), inference)  # training unset
    assert np.abs(scores_of(model, sessions, training=True) - inference).max() > 1e-3


def assert_training_flag_changes_nothing(model, sessions):
    """For a model without dropout: training and inference calls score alike."""
    np.testing.assert_array_equal(scores_of(model, sessions, training=True),
                                  scores_of(model, sessions, training=False))


def assert_config_round_trip(model, expected, sessions):
    """`get_config` holds the `expected` {argument: value}; `from_config` makes a model with
    an equal config which, given the weights, scores as `model`."""
    config = model.get_config()
    assert {key: config[key] for key in expected} == expected
    clone = type(model).from_config(config)
    clone.build()
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(scores_of(clone, sessions), scores_of(model, sessions))


def assert_keras_serialization_round_trip(model, sessions):
    """Keras serializes the model under its registered name `mtd_tf>ClassName` and revives
    it built (from its build config) with an equal config; given the weights, the revived
    model scores as `model`."""
    serialized = keras.saving.serialize_keras_object(model)
    assert serialized["registered_name"] == f"mtd_tf>{type(model).__name__}"
    clone = keras.saving.deserialize_keras_object(serialized)
    assert type(clone) is type(model) and clone.built
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(scores_of(clone, sessions), scores_of(model, sessions))


def assert_checkpoint_restores_every_weight(model, fresh, sessions, directory):
    """`tf.train.Checkpoint(model=...)`, as training saves it, restores every weight of
    `model` into `fresh` (same settings, other weights), each on its own path, with
    nothing left over; `fresh` then scores as `model`. Catches layers held in a Python
    list alone, which Keras saves but a TF checkpoint skips."""
    path = tf.train.Checkpoint(model=model).save(str(directory / "ckpt"))
    tf.train.Checkpoint(model=fresh).restore(path).assert_consumed()
    assert [w.path.split("/", 1)[1] for w in fresh.weights] == [
        w.path.split("/", 1)[1] for w in model.weights]
    for saved, restored in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
    np.testing.assert_array_equal(scores_of(fresh, sessions), scores_of(model, sessions))


def assert_settings_rejected(config_class, bad_settings, field):
    """The config and the model's constructor (which checks its arguments with the config,
    the CLI's one set of range checks) both refuse `bad_settings` with a `ConfigError`
    naming `field`."""
    with pytest.raises(ConfigError, match=field):
        config_class(**bad_settings)
    with pytest.raises(ConfigError, match=field):
        config_class.model_class()(num_items=9, **bad_settings)
