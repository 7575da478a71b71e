"""Adam that updates only the rows of an item table a batch used (`--optimizer=sparse_adam`),
and catches the others up when they are next used.

With a sampled softmax a step touches a few thousand rows of the [M, d] item table, yet
Adam (and an L2 term over the whole table) reads and writes all M rows, three tensors of
them: at M = 10^6 that is most of the step. A row without gradient in a step still moves
under Adam, by its decaying momentum, and its moments decay; those steps depend only on
the row's moments and on how many steps passed. So each row keeps the step it was last
updated at, and when a batch next uses it (or `catch_up` is called, before evaluation),
the skipped steps are applied at once: momentum and velocity decayed by beta^s, and the
row moved by sum_i alpha_i beta1^i m / (beta2^(i/2) sqrt(v) + eps), summed exactly over
the first `EXACT_TERMS` skipped steps (the bias corrections alpha_i of their own steps)
and in closed form beyond (the terms fall as (beta1 / sqrt(beta2))^i: 3% of the sum is
left after 32 steps). Then the step's gradient updates the row as Adam does. The only
departures from Adam: eps is taken outside the skipped terms' square roots, and the L2
term of a row (2 lambda2 E[r], added here so that the step leaves the tables out of its
penalty, which would make their gradient dense) applies at the steps that use the row.

A table whose gradient arrives dense (the full softmax uses every row) gets Adam's update
with the L2 term. The slots are Keras Adam's plus one "last step" per row.
"""

import keras
import tensorflow as tf

from mtd_tf.training.fused_adam import FusedAdam
from mtd_tf.training.fused_adam import component_beside

# Skipped steps summed term by term before the closed form takes over.
EXACT_TERMS = 32


def _skipped_movement(momentum, velocity, last, skipped, learning_rate, beta_1, beta_2,
                      epsilon):
    """How far Adam moves rows with moments (momentum, velocity) [rows, d], last updated at
    step `last` [rows], over `skipped` [rows] steps without gradient: [rows, d]."""
    dtype = momentum.dtype

    def alpha_at(step):  # Adam's step size, bias corrections included, at a global step
        return learning_rate * tf.sqrt(1.0 - tf.pow(beta_2, step)) / (1.0 - tf.pow(beta_1, step))

    terms = tf.range(1, EXACT_TERMS + 1, dtype=dtype)[None, :]  # [1, T]
    ratio = beta_1 / tf.sqrt(beta_2)
    weights = (alpha_at(last[:, None] + terms) * tf.pow(ratio, terms)
               * tf.cast(terms <= skipped[:, None], dtype))
    # Beyond the exact terms: a geometric tail at the step size of its first step.
    beyond = tf.maximum(skipped - EXACT_TERMS, 0.0)
    tail = (alpha_at(last + EXACT_TERMS + 1.0) * tf.pow(ratio, EXACT_TERMS + 1.0)
            * (1.0 - tf.pow(ratio, beyond)) / (1.0 - ratio))
    total = tf.reduce_sum(weights, axis=1) + tail  # [rows]
    return total[:, None] * momentum / (tf.sqrt(velocity) + epsilon)


def _adam_rows(variable, momentum, velocity, last_step, gradient, l2, learning_rate,
               local_step, beta_1, beta_2, epsilon):
    """Adam's update of the rows `gradient.indices` at step `local_step`, after their
    skipped steps; repeated rows are summed first, each with its L2 term 2 l2 E[r]."""
    rows, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(tf.cast(gradient.values, variable.dtype), positions,
                                          tf.shape(rows)[0])
    values += 2.0 * l2 * tf.gather(variable, rows)
    last = tf.gather(last_step, rows)
    skipped = local_step - 1.0 - last
    old_momentum, old_velocity = tf.gather(momentum, rows), tf.gather(velocity, rows)
    caught_up = _skipped_movement(old_momentum, old_velocity, last, skipped, learning_rate,
                                  beta_1, beta_2, epsilon)
    old_momentum *= tf.pow(beta_1, skipped)[:, None]
    old_velocity *= tf.pow(beta_2, skipped)[:, None]
    alpha = learning_rate * tf.sqrt(1.0 - tf.pow(beta_2, local_step)) / (
        1.0 - tf.pow(beta_1, local_step))
    new_momentum = old_momentum + (values - old_momentum) * (1.0 - beta_1)
    new_velocity = old_velocity + (tf.square(values) - old_velocity) * (1.0 - beta_2)
    momentum.scatter_update(tf.IndexedSlices(new_momentum, rows))
    velocity.scatter_update(tf.IndexedSlices(new_velocity, rows))
    last_step.scatter_update(tf.IndexedSlices(tf.fill(tf.shape(rows), local_step), rows))
    variable.scatter_sub(tf.IndexedSlices(
        caught_up + new_momentum * alpha / (tf.sqrt(new_velocity) + epsilon), rows))


def _catch_up_all(variable, momentum, velocity, last_step, steps_done, learning_rate, beta_1,
                  beta_2, epsilon):
    """Applies every row's skipped steps up to `steps_done`."""
    last = tf.convert_to_tensor(last_step)
    skipped = steps_done - last
    variable.assign_sub(_skipped_movement(tf.convert_to_tensor(momentum),
                                          tf.convert_to_tensor(velocity), last, skipped,
                                          learning_rate, beta_1, beta_2, epsilon))
    momentum.assign(momentum * tf.pow(beta_1, skipped)[:, None])
    velocity.assign(velocity * tf.pow(beta_2, skipped)[:, None])
    last_step.assign(tf.fill(tf.shape(last), steps_done))


def _plain(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


@keras.saving.register_keras_serializable(package="mtd_tf")
class RowSparseAdam(FusedAdam):
    """`FusedAdam` whose `row_variables` (the item tables) are updated row by row.

    Args:
      row_variables: the variables updated by rows and given their L2 term here.
      row_l2: lambda2 of the L2 term of `row_variables`, 2 lambda2 E[r] on each row used.
    """

    def __init__(self, *args, row_variables=(), row_l2=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.row_keys = {self._var_key(variable) for variable in row_variables}
        self.row_l2 = float(row_l2)
        self._last_steps = {}

    def build(self, variables):
        super().build(variables)
        for variable in variables:
            if self.adds_l2(variable):
                self._last_steps[self._var_key(variable)] = self.add_variable(
                    shape=(variable.shape[0],), dtype=variable.dtype, initializer="zeros",
                    name=f"{variable.name}_last_step")

    def _scalars(self, dtype, learning_rate):
        return [tf.cast(value, dtype) for value in (learning_rate, self.iterations + 1,
                                                    self.beta_1, self.beta_2, self.epsilon)]

    def _slots(self, variable, table):
        index = self._get_variable_index(variable)
        return [component_beside(slot.value, table) for slot in (
            self._momentums[index], self._velocities[index],
            self._last_steps[self._var_key(variable)])]

    def adds_l2(self, variable):
        """Whether this optimizer adds `variable`'s L2 term (the step's penalty leaves it out)."""
        return self._var_key(variable) in self.row_keys

    def update_step(self, gradient, variable, learning_rate):
        if not self.adds_l2(variable):
            return super().update_step(gradient, variable, learning_rate)
        table = _plain(variable)
        momentum, velocity, last_step = self._slots(variable, table)
        learning_rate, local_step, beta_1, beta_2, epsilon = self._scalars(
            variable.dtype, learning_rate)
        if not isinstance(gradient, tf.IndexedSlices):  # every row used: Adam with L2
            _catch_up_all(table, momentum, velocity, last_step, local_step - 1.0,
                          learning_rate, beta_1, beta_2, epsilon)
            last_step.assign(tf.fill(tf.shape(last_step), local_step))
            gradient = tf.convert_to_tensor(gradient) + 2.0 * self.row_l2 * variable
            return super().update_step(gradient, variable, learning_rate)
        _adam_rows(table, momentum, velocity, last_step, gradient,
                   tf.cast(self.row_l2, variable.dtype), learning_rate, local_step, beta_1,
                   beta_2, epsilon)
        return None

    def catch_up(self, row_variables, strategy=None):
        """Brings every row of `row_variables` to the current step, as Adam would have it:
        call before the tables are read whole (evaluation, export). `strategy`: the one the
        variables were made under (default: the current one)."""
        strategy = strategy or tf.distribute.get_strategy()
        with strategy.scope():
            for variable in row_variables:
                def apply(table, variable=variable):
                    momentum, velocity, last_step = self._slots(variable, table)
                    learning_rate, local_step, beta_1, beta_2, epsilon = self._scalars(
                        variable.dtype, self.learning_rate)
                    _catch_up_all(table, momentum, velocity, last_step, local_step - 1.0,
                                  learning_rate, beta_1, beta_2, epsilon)
                strategy.extended.update(_plain(variable), apply, group=False)

    def get_config(self):
        # The tables are the model's; a rebuilt optimizer is given them again.
        return dict(super().get_config(), row_l2=self.row_l2)


def session_optimizer(name, model, learning_rate, l2):
    """The session step's optimizer by its `--optimizer` name: "adam" (`FusedAdam`) or
    "sparse_adam" (`RowSparseAdam` over the model's item tables, with their L2 term)."""
    if name == "sparse_adam":
        return RowSparseAdam(learning_rate=learning_rate, row_variables=model.item_tables(),
                             row_l2=l2)
    return FusedAdam(learning_rate=learning_rate)
