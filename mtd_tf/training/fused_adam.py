"""Keras Adam with each variable's update compiled into one XLA kernel.

Keras runs Adam as about ten separate elementwise ops per variable, each a full pass over
it; for the item table `[M, d]`, the largest tensor of the session step, those passes cost
more than the encoder's attention. Fused, they are one pass. The slots, the iteration
counter and the checkpoint layout are Keras Adam's own, so checkpoints written by either
class restore into the other.
"""

import keras
import tensorflow as tf


@tf.function(jit_compile=True)
def _adam_update(variable, momentum, velocity, gradient, learning_rate, local_step,
                 beta_1, beta_2, epsilon):
    """Keras Adam's update (non-amsgrad), in place, for one variable."""
    dtype = variable.dtype
    gradient = tf.cast(gradient, dtype)
    alpha = learning_rate * tf.sqrt(1.0 - tf.pow(beta_2, local_step)) / (
        1.0 - tf.pow(beta_1, local_step))
    new_momentum = momentum + (gradient - momentum) * (1.0 - beta_1)
    new_velocity = velocity + (tf.square(gradient) - velocity) * (1.0 - beta_2)
    momentum.assign(new_momentum)
    velocity.assign(new_velocity)
    variable.assign_sub(new_momentum * alpha / (tf.sqrt(new_velocity) + epsilon))


def component_beside(slot, variable):
    """The copy of `slot` on `variable`'s device.

    Under a multi-device strategy Keras calls `update_step` once per device with that
    device's copy of the model variable, while slots are mirrored variables; a mirrored
    variable passed into a compiled function would stand for its primary copy only.
    """
    for component in tf.distribute.get_strategy().experimental_local_results(slot):
        if component.device == variable.device:
            return component
    return slot


@keras.saving.register_keras_serializable(package="mtd_tf")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` (without amsgrad) whose per-variable update is fused."""

    def __init__(self, *args, amsgrad=False, **kwargs):
        if amsgrad:
            raise ValueError("FusedAdam does not implement amsgrad")
        super().__init__(*args, amsgrad=False, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype

        def scalar(value):
            return tf.cast(value, dtype)

        _adam_update(
            variable, component_beside(self._momentums[index].value, variable),
            component_beside(self._velocities[index].value, variable),
            tf.convert_to_tensor(gradient), scalar(learning_rate),
            scalar(self.iterations + 1), scalar(self.beta_1), scalar(self.beta_2),
            scalar(self.epsilon))
