"""One harness for the layer tests (in the spirit of keras-hub's `TestCase.run_layer_test`)
and the ragged batch the session-layer tests share.

`run_layer_test` holds every layer to the same standard: Keras serialization, symbolic and
eager calls, one trace for any batch or length, one training step, the mixed-precision
policies and, for the session layers, padding. It takes a `keras.Model` subclass as well
as a layer (a model is a layer). The tests beside it add the layer's own numbers against
NumPy.
"""

import keras
import numpy as np
import tensorflow as tf

LENGTHS = [3, 1, 5, 2]  # a batch mixing lengths, padded to MAX_LEN
MAX_LEN = 5

# How far a mixed-precision output may be from the float32 one: 5 unit roundoffs u,
# relative and absolute (u = 2^-8 for bfloat16, 2^-11 for float16). A layer rounds
# several times over; on these tests' inputs (outputs up to 2.3) the largest errors were
# about 3u: 1.1e-2 and 1.1e-3.
PRECISION_TOLERANCES = {
    "mixed_bfloat16": {"rtol": 5 * 2.0**-8, "atol": 5 * 2.0**-8},
    "mixed_float16": {"rtol": 5 * 2.0**-11, "atol": 5 * 2.0**-11},
}


def padding_mask(lengths, max_len=MAX_LEN):
    """[len(lengths), max_len] bool, True = real item: each row's first `length` columns."""
    return np.arange(max_len)[np.newaxis, :] < np.asarray(lengths)[:, np.newaxis]


def session_batch(rng, dim, lengths=LENGTHS, max_len=MAX_LEN):
    """A session layer's call arguments: `x` `[len(lengths), max_len, dim]` drawn from
    `rng`, and its `padding_mask`."""
    x = rng.normal(size=(len(lengths), max_len, dim)).astype(np.float32)
    return {"x": x, "mask": padding_mask(lengths, max_len)}


def with_noisy_padding(x, mask, rng):
    """`x` with every padding position replaced by large noise: a layer that reads padding
    gives a different answer on it."""
    noise = rng.normal(scale=100.0, size=x.shape)
    return np.where(mask[..., np.newaxis], x, noise).astype(np.float32)


def with_random_weights(layer, input_shape, rng, scale):
    """`layer` built for `input_shape`, every weight drawn from N(0, scale^2) by `rng`:
    values unlike the initializer's (zero biases, unit gammas), so that a weight the
    layer ignores or misreads changes its output."""
    layer.build(input_shape)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=scale, size=weight.shape))
    return layer


def relaxed_spec(value):
    """The signature of a tensor with every axis unknown except a dense float tensor's
    last one (the feature axis, which a layer needs to build), so that batch, length and
    graph size can change without a retrace."""
    if isinstance(value, tf.SparseTensor):
        return tf.SparseTensorSpec([None] * value.shape.rank, value.dtype)
    shape = [None] * value.shape.rank
    if value.dtype.is_floating and shape:
        shape[-1] = value.shape[-1]
    return tf.TensorSpec(shape, value.dtype)


def assert_traces_once(function, argument_sets):
    """Calls `function(**arguments)` for each of `argument_sets` (tensor arguments by name,
    shapes differing between sets) through one `tf.function` whose signature is relaxed
    from the first set; asserts that it traced once and returns the outputs."""
    argument_sets = [_as_tensors(arguments) for arguments in argument_sets]
    signature = tf.nest.map_structure(relaxed_spec, argument_sets[0])
    traced = tf.function(lambda arguments: function(**arguments), input_signature=[signature])
    outputs = [traced(arguments) for arguments in argument_sets]
    assert traced.experimental_get_tracing_count() == 1
    return outputs


def run_layer_test(layer_cls, init_kwargs, input_data, *, resized_input_data,
                   expected_output_shape, expected_num_trainable_weights, reference, rtol,
                   atol, weights_not_in_call=(), precision_tolerance_scale=1.0):
    """Builds `layer_cls(**init_kwargs)`, gives it random weights and checks, in order:

    - its output shape, its number of trainable weights and its output against
      `reference` (eager);
    - serialization: every init argument comes back from `get_config()`; the layer is
      serialized under its registered name `mtd_tf>ClassName` and revived with an equal
      config, and with the weights copied gives the same output;
    - a symbolic call on `keras.Input`s (sparse ones for a `tf.sparse.SparseTensor`) has
      the eager output's dtype and a compatible shape, and a functional model built on it
      gives the eager output;
    - one `tf.function` with a relaxed signature (`relaxed_spec`) traces once for
      `input_data` and `resized_input_data`, matches `reference` on both and the eager
      output on the first;
    - with `x` and `mask` arguments (a session layer): noise at padding positions leaves
      the output unchanged, and an all-True mask gives the output of no mask;
    - under `mixed_bfloat16` and `mixed_float16` (passed as `dtype`, the global policy
      untouched): float32 variables, every nested layer under the same policy, an output
      in the compute dtype within `PRECISION_TOLERANCES` of the float32 one;
    - one training step: gradients reach every trainable weight and dense float input
      (present, finite, not all zero), and a plain SGD step changes the loss.

    Args:
      layer_cls: a `keras.layers.Layer` or `keras.Model` subclass registered with
        `keras.saving.register_keras_serializable(package="mtd_tf")`.
      init_kwargs: constructor arguments (without `dtype`).
      input_data: the call's tensor arguments by name, e.g. `{"x": x, "mask": mask}` or
        `{"inputs": (features, adjacency)}`; NumPy arrays or tensors.
      resized_input_data: the same arguments with other sizes (batch, length, nodes).
      expected_output_shape: the output's shape on `input_data`.
      expected_num_trainable_weights: how many trainable weights the built layer has.
      reference: `reference(layer, **arguments)` -> the expected output as NumPy, read
        from the layer's weights.
      rtol, atol: tolerances against `reference` and between eager and traced outputs.
      weights_not_in_call: path prefixes of trainable weights that `call` does not read
        (a model's parts that only its own loss uses), left out of the training step.
      precision_tolerance_scale: multiplies `PRECISION_TOLERANCES`, for a model that
        stacks several layers' rounding.
    """
    rng = np.random.default_rng(0)  # the weights, the padding noise, the loss's projection
    input_data, resized_input_data = _as_tensors(input_data), _as_tensors(resized_input_data)
    tolerance = {"rtol": rtol, "atol": atol}
    layer = layer_cls(**init_kwargs)
    layer(**input_data)  # builds
    # Random weights, not the initialisers' (zero biases, unit gammas), so that a weight
    # the layer ignores, or one a clone did not receive, changes the output.
    for weight in layer.trainable_weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape))
    output = layer(**input_data, training=False)
    assert tuple(output.shape) == tuple(expected_output_shape)
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    np.testing.assert_allclose(output, reference(layer, **input_data), **tolerance)

    _check_serialization(layer, init_kwargs, input_data, output)
    _check_symbolic_call(layer, input_data, output)
    traced_outputs = assert_traces_once(
        lambda **arguments: layer(**arguments, training=False),
        [input_data, resized_input_data])
    np.testing.assert_allclose(traced_outputs[0], output, **tolerance)
    for arguments, traced_output in zip([input_data, resized_input_data], traced_outputs):
        np.testing.assert_allclose(traced_output, reference(layer, **arguments), **tolerance)
    if {"x", "mask"} <= input_data.keys():
        _check_padding(layer, input_data, output, rng)
    for policy in PRECISION_TOLERANCES:
        _check_mixed_precision(layer, init_kwargs, input_data, output, policy,
                               precision_tolerance_scale)
    _check_training_step(layer, input_data, output, rng, weights_not_in_call)  # changes weights


def _as_tensors(arguments):
    return tf.nest.map_structure(
        lambda value: value if isinstance(value, tf.SparseTensor) else tf.convert_to_tensor(value),
        arguments)


def _check_serialization(layer, init_kwargs, input_data, output):
    config = layer.get_config()
    for name, value in init_kwargs.items():
        assert config[name] == value, name
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"mtd_tf>{type(layer).__name__}"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(layer)
    assert revived.get_config() == config
    revived(**input_data)  # builds, if the build config did not
    revived.set_weights(layer.get_weights())
    np.testing.assert_array_equal(revived(**input_data, training=False), output)


def _check_symbolic_call(layer, input_data, output):
    def symbolic_input(value):
        spec = relaxed_spec(value)
        return keras.Input(batch_shape=tuple(spec.shape), dtype=spec.dtype.name,
                           sparse=isinstance(spec, tf.SparseTensorSpec))

    symbolic_data = tf.nest.map_structure(symbolic_input, input_data)
    symbolic_output = layer(**symbolic_data)
    assert keras.backend.standardize_dtype(symbolic_output.dtype) == output.dtype.name
    assert tf.TensorShape(symbolic_output.shape).is_compatible_with(output.shape)
    model = keras.Model(tf.nest.flatten(symbolic_data), symbolic_output)
    np.testing.assert_array_equal(model(tf.nest.flatten(input_data)), output)


def _check_padding(layer, input_data, output, rng):
    mask = input_data["mask"].numpy()
    noisy = dict(input_data, x=with_noisy_padding(input_data["x"].numpy(), mask, rng))
    np.testing.assert_array_equal(layer(**noisy, training=False), output)
    unmasked = {name: value for name, value in input_data.items() if name != "mask"}
    full_mask = dict(input_data, mask=np.ones_like(mask))
    np.testing.assert_array_equal(layer(**full_mask, training=False),
                                  layer(**unmasked, training=False))


def _check_mixed_precision(layer, init_kwargs, input_data, output, policy, tolerance_scale):
    mixed = type(layer)(**init_kwargs, dtype=policy)
    mixed(**input_data)  # builds
    mixed.set_weights(layer.get_weights())
    assert mixed.dtype_policy.name == policy
    for weight in mixed.weights:
        assert keras.backend.standardize_dtype(weight.dtype) == "float32", weight.path
    # Private, as in keras-hub's precision test: Keras lists nested layers publicly only
    # for models. A sublayer left on the global policy computes in float32 and breaks the
    # layer's dtype contract.
    for sublayer in mixed._flatten_layers(include_self=False):  # pylint: disable=protected-access
        assert sublayer.dtype_policy.name == policy, sublayer.name
    mixed_output = mixed(**input_data, training=False)
    assert mixed_output.dtype.name == mixed.compute_dtype
    tolerance = {name: tolerance_scale * value
                 for name, value in PRECISION_TOLERANCES[policy].items()}
    np.testing.assert_allclose(tf.cast(mixed_output, tf.float32), output, **tolerance)


def _check_training_step(layer, input_data, output, rng, weights_not_in_call):
    float_inputs = [value for value in tf.nest.flatten(input_data)
                    if not isinstance(value, tf.SparseTensor) and value.dtype.is_floating]
    weights = [weight for weight in layer.trainable_weights
               if not weight.path.startswith(tuple(weights_not_in_call))]
    targets = weights + float_inputs
    labels = [weight.path for weight in weights] + [
        f"float input {index}" for index in range(len(float_inputs))]
    projection = tf.constant(rng.normal(size=output.shape), output.dtype)

    def loss(training):
        return tf.reduce_sum(layer(**input_data, training=training) * projection)

    with tf.GradientTape() as tape:
        tape.watch(float_inputs)
        training_loss = loss(training=True)
    gradients = tape.gradient(training_loss, targets)
    for label, gradient in zip(labels, gradients):
        assert gradient is not None, label
        gradient = tf.convert_to_tensor(gradient).numpy()  # an embedding's is IndexedSlices
        assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0, label
    if weights:
        loss_before = loss(training=False)
        weight_gradients = gradients[:len(weights)]
        keras.optimizers.SGD(learning_rate=0.01).apply_gradients(zip(weight_gradients, weights))
        assert loss(training=False) != loss_before
