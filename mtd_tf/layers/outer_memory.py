"""CSRM's outer memory: a first-in-first-out bank of recent sessions' vectors, read by
attention over the stored sessions most similar to the current one (Wang et al., SIGIR
2019, the outer memory encoder)."""

import keras
import tensorflow as tf

from mtd_tf.layers.masking import masked_softmax
from mtd_tf.layers.precision import at_least_float32
from mtd_tf.layers.replica_batch import whole_batch

# The cosine's guard against zero norms, as `ome.py`'s `smooth_cosine_similarity`.
_COSINE_EPSILON = 1e-8


def _norm(x):
    """|x| over the last axis, with a finite gradient at x = 0 (where `tf.norm`'s is NaN, and
    a serving row without items has a zero vector)."""
    squares = tf.reduce_sum(tf.square(x), axis=-1)
    # Below 1e-30 the norm is 1e-15 instead of 0: far under the cosine's 1e-8 guard.
    return tf.sqrt(tf.maximum(squares, tf.constant(1e-30, squares.dtype)))


@keras.saving.register_keras_serializable(package="mtd_tf")
class OuterMemory(keras.layers.Layer):
    """Reads, for each session vector `q`, a mix of the stored vectors of its neighbours,
    and, in training, stores the batch's vectors.

    The bank `M` holds the vectors of the `memory_size` most recently stored sessions (a
    ring buffer: the oldest is overwritten first). For a query `q`:

        s_i = q . m_i / (|q| |m_i| + 1e-8)       for every filled slot i    (cosine)
        N = the num_neighbors filled slots of largest s_i                     (top-k)
        w_i = softmax_{i in N}(s_i),   r = sum_{i in N} w_i m_i               (read)

    then, with `training=True` only, the batch's rows (those whose `write_mask` is True)
    are written at the next slots, in batch order, after the read: a session never reads
    itself or its batch neighbours. Unfilled slots take no part in the read; with an empty
    bank `r = 0`. The bank is a non-trainable variable (no gradient flows into it; the
    query gets one through the weights `w`), saved by checkpoints and exported with the
    model; `write_count` counts every row ever written, so the next slot is
    `write_count mod memory_size` and the filled slots are the first
    `min(write_count, memory_size)`.

    The bank, the cosines and the read are float32 under a mixed-precision policy; the
    read comes back in the compute dtype.

    Args:
      memory_size: slots of the bank (CSRM's code keeps the latest 10,000 sessions,
        `ome.py`).
      num_neighbors: k, how many most similar stored sessions a read mixes (CSRM's code:
        `--memory_size` 512 of `main.py`, its `top_k` size); at most `memory_size`.
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      query: float `[batch, d]`, the sessions' vectors (CSRM: their `c_l`).
      write_mask: bool `[batch]`, which rows to store when training (None: all).
      training: True stores the batch after the read; otherwise the bank is only read.
      return_attention_scores: also return the slots read and their weights.

    Returns:
      `r` `[batch, d]`; with `return_attention_scores`, also (slots int32 `[batch, k]`,
      weights `[batch, k]`, zero for an unfilled slot), `k = min(num_neighbors,
      memory_size)`.

    Reference: Wang, Ren, Mei, Chen, Ma and de Rijke, "A Collaborative Session-based
    Recommendation Approach with Parallel Memory Modules", SIGIR 2019, Sec. 3.3; code
    wmeirui/CSRM_SIGIR2019, `ome.py`.
    """

    def __init__(self, memory_size=10000, num_neighbors=512, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("memory_size", memory_size), ("num_neighbors", num_neighbors)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if num_neighbors > memory_size:
            raise ValueError(f"num_neighbors must be at most memory_size ({memory_size}), "
                             f"got {num_neighbors!r}")
        self.memory_size = memory_size
        self.num_neighbors = num_neighbors

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(f"the last input dimension must be known, got {input_shape}")
        # "only_first_replica": a replica-context write under a multi-device strategy keeps
        # the first replica's value instead of failing; every replica writes the rows of
        # the whole batch (`replica_batch`), so that value is every replica's.
        # No autocast: the bank is read in float32 under a mixed-precision policy too.
        self.memory = self.add_weight(
            name="memory", shape=(self.memory_size, dim), initializer="zeros",
            dtype="float32", trainable=False, autocast=False,
            aggregation="only_first_replica")
        self.write_count = self.add_weight(
            name="write_count", shape=(), initializer="zeros", dtype="int64",
            trainable=False, aggregation="only_first_replica")

    def call(self, query, write_mask=None, training=None, return_attention_scores=False):
        wide = at_least_float32(query.dtype)
        query = tf.cast(query, wide)  # [B, d]
        memory = tf.cast(tf.convert_to_tensor(self.memory), wide)  # [m, d], before any write
        num_filled = tf.minimum(tf.convert_to_tensor(self.write_count), self.memory_size)
        filled = tf.range(self.memory_size, dtype=tf.int64) < num_filled  # [m]
        norms = _norm(query)[:, tf.newaxis] * _norm(memory)[tf.newaxis, :]  # [B, m]
        cosine = tf.matmul(query, memory, transpose_b=True) / (norms + _COSINE_EPSILON)
        lowest = tf.constant(cosine.dtype.min, cosine.dtype)
        candidates = tf.where(filled[tf.newaxis, :], cosine, lowest)  # [B, m]
        top_cosine, slots = tf.math.top_k(candidates, k=self.num_neighbors)  # [B, k]
        weights = masked_softmax(top_cosine, tf.gather(filled, slots))  # 0 at unfilled slots
        read = tf.einsum("bk,bkd->bd", weights, tf.gather(memory, slots))  # [B, d]
        if training:
            self._write(query, write_mask)
        read = tf.cast(read, self.compute_dtype)
        if return_attention_scores:
            return read, (slots, tf.cast(weights, self.compute_dtype))
        return read

    def _write(self, rows, write_mask):
        """Stores `rows` [B, d] (those with `write_mask`) at the next slots, oldest first."""
        rows = tf.stop_gradient(tf.cast(rows, tf.float32))
        if write_mask is not None:
            rows = tf.boolean_mask(rows, tf.cast(write_mask, tf.bool))
        rows = whole_batch(rows)  # [B, d], every replica's share
        count = tf.shape(rows, out_type=tf.int64)[0]
        # A batch longer than the bank leaves only its last memory_size rows; writing just
        # those keeps every slot index distinct, so the scatter's order cannot matter.
        kept = tf.minimum(count, self.memory_size)
        rows = rows[count - kept:]
        first = tf.convert_to_tensor(self.write_count) + count - kept
        slots = (first + tf.range(kept, dtype=tf.int64)) % self.memory_size  # [kept]
        self.memory.assign(tf.tensor_scatter_nd_update(
            tf.convert_to_tensor(self.memory), slots[:, tf.newaxis], rows))
        self.write_count.assign_add(count)

    def compute_mask(self, inputs, previous_mask):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(memory_size=self.memory_size, num_neighbors=self.num_neighbors)
        return config
