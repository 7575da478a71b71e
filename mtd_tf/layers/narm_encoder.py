"""NARM's hybrid session encoder: a GRU's last state (global) beside an attention pooling of
its states queried by that last state (local), c = [c_g ; c_l] (Li et al., CIKM 2017).

NARM scores items from `c`; CSRM uses the same encoder as its inner memory encoder.
"""

import math

import keras
import tensorflow as tf

from mtd_tf.layers.masking import masked_softmax
from mtd_tf.layers.session_gru import SessionGRU


def scaled_normal(mode="fan_in"):
    """N(0, 2 / fan) for a kernel, fan its `mode` side: the NARM and CSRM codes'
    `init_weights` (`sqrt(2 / shape[0])` times a standard normal) on this layout, where a
    kernel is [fan_in, fan_out] (the codes' decoder `B` is the transpose of the `bilinear`
    kernel, hence "fan_out" there)."""
    return keras.initializers.VarianceScaling(2.0, mode=mode, distribution="untruncated_normal")


@keras.saving.register_keras_serializable(package="mtd_tf")
class NARMEncoder(keras.layers.Layer):
    """Encodes a right-padded session into `c = [c_g ; c_l]`, `[batch, 2h]`.

    With `h_1..h_t` the states of a `SessionGRU` over the session's real items (`h_t` the
    state after its last *real* item, not after the padded batch's last column):

        c_g = h_t                                            (global encoder, eq. 5)
        e_tj = v^T sigmoid(A1 h_t + A2 h_j),  j = 1..t       (eq. 8)
        alpha_tj = e_tj                (paper, eq. 7: not normalised; attention_softmax=False)
        alpha_tj = softmax_j(e_tj)     (the released code; attention_softmax=True)
        c_l = sum_j alpha_tj h_j                             (local encoder, eq. 6)
        c = [c_g ; c_l]                                      (eq. 9)

    `A1`, `A2` are `h x h` without bias and `v` an `h` vector. Padding positions get no
    weight; a row with no real item gives `c = 0`.

    The released code (lijingsdu/sessionRec_NARM, `NARM.py`) normalises the attention with
    a softmax over the real positions (`softmax(sim * mask) * mask`, renormalised), which the
    paper's eq. 6-8 do not; CSRM's code (wmeirui/CSRM_SIGIR2019, `csrm.py`) does the same.
    NARM's code runs one GRU for both encoders; CSRM's code runs two, a global one for
    `c_g` and a local one whose states and last state feed the attention
    (`separate_encoders=True`).

    Initial values as `NARM.py`: input kernels, `A1`, `A2` from N(0, 2/fan_in), `v` from
    N(0, 2) (its `[1, h]` matrix has fan-in 1), recurrent kernels orthogonal, biases zero.

    Args:
      units: h, the GRU width.
      attention_softmax: normalise the attention with a softmax over real positions.
      separate_encoders: separate GRUs for the global and the local encoder.
      reset_after: the GRUs' reset-gate placement (`SessionGRU`).
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      x: float `[batch, max_len, input_dim]`, right-padded item vectors.
      mask: bool `[batch, max_len]`, True = real item (a prefix of each row); None means
        every position is real.
      training: passed to the GRUs.
      return_attention_scores: also return `alpha`.

    Returns:
      `c` `[batch, 2h]` (`c[:, :h] = c_g`, `c[:, h:] = c_l`); with
      `return_attention_scores`, also `alpha` `[batch, max_len]` (zero at padding).

    Reference: Li, Ren, Chen, Ren, Lian and Ma, "Neural Attentive Session-based
    Recommendation", CIKM 2017, Sec. 3.3.
    """

    def __init__(self, units, attention_softmax=True, separate_encoders=False,
                 reset_after=False, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("attention_softmax", attention_softmax),
                            ("separate_encoders", separate_encoders)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a bool, got {value!r}")
        self.units = units
        self.attention_softmax = attention_softmax
        self.separate_encoders = separate_encoders
        self.reset_after = reset_after

        def session_gru(name):
            return SessionGRU(units, reset_after=reset_after,
                              kernel_initializer=scaled_normal(),
                              recurrent_initializer="orthogonal", bias_initializer="zeros",
                              name=name, dtype=self.dtype_policy)

        self.global_gru = session_gru("global_gru")
        self.local_gru = session_gru("local_gru") if separate_encoders else None

    def build(self, input_shape):
        self.global_gru.build(input_shape)
        if self.local_gru is not None:
            self.local_gru.build(input_shape)
        h = self.units
        self.last_state_kernel = self.add_weight(
            name="last_state_kernel", shape=(h, h), initializer=scaled_normal())  # A1
        self.state_kernel = self.add_weight(
            name="state_kernel", shape=(h, h), initializer=scaled_normal())  # A2
        self.score_vector = self.add_weight(
            name="score_vector", shape=(h,),
            initializer=keras.initializers.RandomNormal(stddev=math.sqrt(2.0)))  # v

    def call(self, x, mask=None, training=None, return_attention_scores=False):
        if mask is None:
            mask = tf.ones(tf.shape(x)[:2], tf.bool)
        mask = tf.cast(mask, tf.bool)  # [B, L]
        states, last = self.global_gru(x, mask=mask, training=training)  # [B, L, h], [B, h]
        if self.local_gru is not None:
            states, local_last = self.local_gru(x, mask=mask, training=training)
        else:
            local_last = last
        query = tf.matmul(local_last, self.last_state_kernel)  # A1 h_t, [B, h]
        keys = tf.einsum("blh,hk->blk", states, self.state_kernel)  # A2 h_j, [B, L, h]
        logits = tf.einsum("blk,k->bl", tf.sigmoid(query[:, tf.newaxis, :] + keys),
                           self.score_vector)  # e_tj, [B, L]
        if self.attention_softmax:
            alpha = masked_softmax(logits, mask)
        else:
            alpha = logits * tf.cast(mask, logits.dtype)
        local = tf.einsum("bl,blh->bh", alpha, states)  # c_l, [B, h]
        encoded = tf.concat([last, local], axis=-1)  # [B, 2h]
        if return_attention_scores:
            return encoded, alpha
        return encoded

    def compute_mask(self, inputs, previous_mask):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, attention_softmax=self.attention_softmax,
                      separate_encoders=self.separate_encoders, reset_after=self.reset_after)
        return config
