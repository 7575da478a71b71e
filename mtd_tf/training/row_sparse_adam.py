"""Adam that updates only the rows of an item table a batch used (`--optimizer=lazy_adam`).

With a sampled softmax a step touches a few thousand rows of the [M, d] item table, yet
Adam (and an L2 term over the whole table) reads and writes all M rows, three tensors of
them: at M = 10^6 that is most of the step. Here a table whose gradient arrives as rows
(`tf.IndexedSlices`: gathers, as the sampled softmax and the lookups make) has only those
rows' moments and values updated, as TensorFlow Addons' LazyAdam does; the others keep
their moments and their values until a batch uses them. Its L2 term, 2 lambda2 E[r] for
the rows used, is added here, so the step leaves the tables out of its penalty (a penalty
over the whole table would make its gradient dense again). A table whose gradient is
dense (the full softmax uses every row) gets Adam's update with that same term: the same
arithmetic as `FusedAdam` with the penalty in the loss.

Slots and the checkpoint layout are Keras Adam's, so checkpoints move between the two.
"""

import keras
import tensorflow as tf

from mtd_tf.training.fused_adam import FusedAdam
from mtd_tf.training.fused_adam import component_beside


def _adam_rows(variable, momentum, velocity, gradient, l2, learning_rate, local_step, beta_1,
               beta_2, epsilon):
    """Adam's update of the rows `gradient.indices` (repeated rows summed first), each
    row's gradient with its L2 term 2 l2 E[r]."""
    rows, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(tf.cast(gradient.values, variable.dtype), positions,
                                          tf.shape(rows)[0])
    values += 2.0 * l2 * tf.gather(variable, rows)
    alpha = learning_rate * tf.sqrt(1.0 - tf.pow(beta_2, local_step)) / (
        1.0 - tf.pow(beta_1, local_step))
    old_momentum = tf.gather(momentum, rows)
    old_velocity = tf.gather(velocity, rows)
    new_momentum = old_momentum + (values - old_momentum) * (1.0 - beta_1)
    new_velocity = old_velocity + (tf.square(values) - old_velocity) * (1.0 - beta_2)
    momentum.scatter_update(tf.IndexedSlices(new_momentum, rows))
    velocity.scatter_update(tf.IndexedSlices(new_velocity, rows))
    variable.scatter_sub(tf.IndexedSlices(
        new_momentum * alpha / (tf.sqrt(new_velocity) + epsilon), rows))


@keras.saving.register_keras_serializable(package="mtd_tf")
class RowSparseAdam(FusedAdam):
    """`FusedAdam` whose `row_variables` (the item tables) are updated row by row.

    Args:
      row_variables: the variables updated lazily and given their L2 term here.
      row_l2: lambda2 of the L2 term of `row_variables`, 2 lambda2 E[r] on each row used.
    """

    def __init__(self, *args, row_variables=(), row_l2=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.row_keys = {self._var_key(variable) for variable in row_variables}
        self.row_l2 = float(row_l2)

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) not in self.row_keys:
            return super().update_step(gradient, variable, learning_rate)
        if not isinstance(gradient, tf.IndexedSlices):  # every row used: Adam with L2
            gradient = tf.convert_to_tensor(gradient) + 2.0 * self.row_l2 * variable
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        table = variable.value if isinstance(variable, keras.Variable) else variable
        dtype = variable.dtype

        def scalar(value):
            return tf.cast(value, dtype)

        _adam_rows(table, component_beside(self._momentums[index].value, table),
                   component_beside(self._velocities[index].value, table), gradient,
                   scalar(self.row_l2), scalar(learning_rate), scalar(self.iterations + 1),
                   scalar(self.beta_1), scalar(self.beta_2), scalar(self.epsilon))
        return None

    def get_config(self):
        # The tables are the model's; a rebuilt optimizer is given them again.
        return dict(super().get_config(), row_l2=self.row_l2)
