"""A GRU run over right-padded sessions: every real step's state and the last real one.

The recurrent comparison models (GRU4Rec, NARM and, through NARM's encoder, CSRM) all
read a prefix with one GRU and use its states; this layer is where padding is handled for
all of them, so none of them can read a padding step's state as the latest click's.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mtd_tf")
class SessionGRU(keras.layers.Layer):
    """One GRU layer over each session's real items, from a zero state.

    With `x_1..x_I` the inputs of a session's real items (oldest first) and `h_0 = 0`:

        z_i = sigmoid(W_z x_i + U_z h_{i-1} + b_z)                  (update gate)
        r_i = sigmoid(W_r x_i + U_r h_{i-1} + b_r)                  (reset gate)
        h~_i = tanh(W_h x_i + U_h (r_i * h_{i-1}) + b_h)            (candidate)
        h_i = z_i * h_{i-1} + (1 - z_i) * h~_i

    the GRU of Cho et al. (2014) as GRU4Rec, NARM and CSRM's released code compute it (the
    GRU4Rec and NARM papers write `h_i = (1 - z_i) h_{i-1} + z_i h~_i`, the same family
    with `z` renamed `1 - z`). With `reset_after=True` the candidate is
    `tanh(W_h x_i + b_h + r_i * (U_h h_{i-1} + b'_h))` instead (the cuDNN form, which runs
    the fused kernel on a GPU).
    Padding steps leave the state unchanged, so the last state of the run is `h_I`, the
    state after the last *real* item, whatever padding follows it. A row with no real item
    (serving sends them) returns zeros; it runs one step internally, as cuDNN rejects a
    sequence of length 0.

    Args:
      units: width h of the state.
      reset_after: the reset gate's placement (False: before `U_h`, the papers' form).
      kernel_initializer, recurrent_initializer, bias_initializer: initial values of
        `W = [W_z, W_r, W_h]` ([input_dim, 3h]), `U = [U_z, U_r, U_h]` ([h, 3h]) and the
        biases.
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      x: float `[batch, max_len, input_dim]`, right-padded.
      mask: bool `[batch, max_len]`, True = real item (a prefix of each row); None means
        every position is real.
      training: unused (no dropout inside the recurrence); passed on for uniformity.

    Returns:
      (states, last): `states` `[batch, max_len, h]`, `h_i` at real positions and zero at
      padding; `last` `[batch, h]`, `h_I` (zero for a row with no real item).

    Reference: Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
    Statistical Machine Translation", EMNLP 2014, eq. 5-8.
    """

    def __init__(self, units, reset_after=False, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        if not isinstance(reset_after, bool):
            raise ValueError(f"reset_after must be a bool, got {reset_after!r}")
        self.units = units
        self.reset_after = reset_after
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.gru = keras.layers.GRU(
            units, return_sequences=True, return_state=True, reset_after=reset_after,
            kernel_initializer=self.kernel_initializer,
            recurrent_initializer=self.recurrent_initializer,
            bias_initializer=self.bias_initializer, name="gru", dtype=self.dtype_policy)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"the last input dimension must be known, got {input_shape}")
        self.gru.build(tuple(input_shape))

    def call(self, x, mask=None, training=None):
        if mask is None:
            mask = tf.ones(tf.shape(x)[:2], tf.bool)
        mask = tf.cast(mask, tf.bool)  # [B, L]
        has_items = tf.reduce_any(mask, axis=1)  # [B]
        # cuDNN (reset_after on a GPU) fails on a row without any unmasked step, which
        # serving sends: such a row runs its first step and is zeroed below.
        first_step = tf.range(tf.shape(mask)[1]) == 0  # [L]
        run_mask = tf.logical_or(mask, tf.logical_and(tf.logical_not(has_items)[:, tf.newaxis],
                                                      first_step[tf.newaxis, :]))
        # Keras's masked recurrence carries the state through masked steps, so the final
        # state is the one after each row's last real item.
        states, last = self.gru(x, mask=run_mask, training=training)  # [B, L, h], [B, h]
        states = states * tf.cast(mask, states.dtype)[..., tf.newaxis]
        last = last * tf.cast(has_items, last.dtype)[:, tf.newaxis]
        return states, last

    def compute_mask(self, inputs, previous_mask):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units, reset_after=self.reset_after,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            recurrent_initializer=keras.initializers.serialize(self.recurrent_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer))
        return config
