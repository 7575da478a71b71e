"""Collaborative item representations (CoSAN): each item of a session gathers the recent
sessions that contain it from a FIFO bank of training sessions the layer itself holds."""

import math
import numbers

import keras
import tensorflow as tf

from mtd_tf.layers.masking import masked_softmax
from mtd_tf.layers.precision import at_least_float32
from mtd_tf.layers.replica_batch import whole_batch


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _fit_width(item_ids, width):
    """The last `width` real items of each right-padded row, right-padded to `width`.

    Args:
      item_ids: int32 `[batch, len]`, right-padded with 0 (the real items are a prefix).
      width: the output width.

    Returns:
      int32 `[batch, width]`.
    """
    real = tf.cast(item_ids > 0, tf.int32)
    lengths = tf.reduce_sum(real, axis=1)  # [B]
    # Padding `width` zero columns keeps every index below in range, for any len.
    padded = tf.pad(item_ids, [[0, 0], [0, width]])  # [B, len + width]
    start = tf.maximum(lengths - width, 0)  # [B]
    columns = tf.range(width)[tf.newaxis, :]  # [1, width]
    kept = tf.gather(padded, start[:, tf.newaxis] + columns, batch_dims=1)  # [B, width]
    return tf.where(columns < tf.minimum(lengths, width)[:, tf.newaxis], kept,
                    tf.zeros_like(kept))


def _first_occurrences(item_ids):
    """bool `[batch, len]`: True at the first position of each distinct real item."""
    length = tf.shape(item_ids)[1]
    same = item_ids[:, :, tf.newaxis] == item_ids[:, tf.newaxis, :]  # [B, L, L]
    earlier = tf.range(length)[tf.newaxis, :] < tf.range(length)[:, tf.newaxis]  # [L, L]
    repeated = tf.reduce_any(same & earlier[tf.newaxis], axis=2)  # [B, L]
    return (item_ids > 0) & ~repeated


@keras.saving.register_keras_serializable(package="mtd_tf")
class CollaborativeItems(keras.layers.Layer):
    """The collaborative part `c_i` of each item of a session, from the neighbourhood
    sessions of that item in a bank of recent training sessions.

    The bank holds the item ids of the last `memory_size` sessions written (non-trainable
    variables `memory_items` `[memory_size, max_len]`, right-padded, and the counter
    `num_written`). With `training=True` the call writes its batch into the bank after
    reading it (FIFO: slot `t mod memory_size` takes the `t`-th session ever written; a
    row with no real item is skipped; a row keeps its last `max_len` items); otherwise
    the bank is only read. Slots never written are masked, so an empty or partly filled
    bank gives `c_i = 0` where no session qualifies, never NaN. Ids outside `1..M` read
    from the bank (a bank carried over from another catalogue) count as padding.

    For a session `s` with items `v_1..v_I` and embeddings `e_i`, and bank sessions `u_j`
    (newest first), with `set(.)` the distinct items and `E` the item table:

      (C1) n_j = mean_p E[u_j,p]                 bank session embedding (current E)
      (C2) sim(s, u_j) = |set(s) & set(u_j)| / sqrt(|set(s)| |set(u_j)|)
      (C3) N_i = the `num_neighbors` bank sessions containing v_i with the largest
           sim(s, u_j); ties go to the more recent session
      (C4) beta_ij = softmax_{j in N_i}(e_i^T W_a n_j / sqrt(d)),  c_i = sum_j beta_ij n_j

    Args:
      memory_size: sessions the bank holds.
      max_len: items kept per bank session (its last ones).
      num_neighbors: neighbourhood sessions per item.
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      inputs: `(item_ids, item_vectors, item_table)`: int `[batch, len]` right-padded
        ids (0 = padding), float `[batch, len, d]` their embeddings `e_i` (zero at
        padding), and float `[M, d]` the item table (row m-1 = item m).
      training: a Python bool; True writes the batch into the bank after reading it.
      return_neighbors: also return a dict with the chosen bank rows `indices` (int32
        `[batch, len, k]`, into the newest-first order of `bank_sessions()`) and their
        weights `beta` (`[batch, len, k]`, zero for an unused or padded slot), with
        `k = min(num_neighbors, memory_size)`.

    Returns:
      `c`, float `[batch, len, d]` in the compute dtype, zero at padding and for items
      without neighbours (and the dict with `return_neighbors`).

    Reference: Luo et al., "Collaborative Self-Attention Network for Session-based
    Recommendation", IJCAI 2020; (C1)-(C4) are `mtd_tf.models.cosan.CoSANModel`'s reading
    of its collaborative item representation, where the choices are listed.
    """

    def __init__(self, memory_size=4096, max_len=50, num_neighbors=10, **kwargs):
        super().__init__(**kwargs)
        self.memory_size = _check_positive_int("memory_size", memory_size)
        self.max_len = _check_positive_int("max_len", max_len)
        self.num_neighbors = _check_positive_int("num_neighbors", num_neighbors)

    def build(self, input_shape):
        _, vectors_shape, _ = input_shape
        dim = vectors_shape[-1]
        if dim is None:
            raise ValueError(f"the item vectors' width must be known, got {input_shape}")
        # Under a distribution strategy every replica writes the whole batch
        # (`replica_batch`), so the first replica's write, the one kept, is every one's.
        self.memory_items = self.add_weight(
            name="memory_items", shape=(self.memory_size, self.max_len), dtype="int32",
            initializer="zeros", trainable=False, aggregation="only_first_replica")
        self.num_written = self.add_weight(
            name="num_written", shape=(), dtype="int64", initializer="zeros",
            trainable=False, aggregation="only_first_replica")
        self.attention_kernel = self.add_weight(  # W_a of (C4)
            name="attention_kernel", shape=(dim, dim), initializer="glorot_uniform")

    def bank_sessions(self, num_items=None):
        """The bank, newest session first: int32 `[memory_size, max_len]` ids (ids outside
        `1..num_items` zeroed when given) and bool `[memory_size]`, True = a written slot
        holding at least one item."""
        written = tf.convert_to_tensor(self.num_written)
        size = tf.constant(self.memory_size, tf.int64)
        # Slot of the t-th session ever written: t mod size; the newest is t = written-1.
        order = tf.math.floormod(written - 1 - tf.range(size, dtype=tf.int64), size)
        rows = tf.gather(tf.convert_to_tensor(self.memory_items), order)  # [K, L_m]
        if num_items is not None:
            known = (rows > 0) & (rows <= tf.cast(num_items, rows.dtype))
            rows = tf.where(known, rows, tf.zeros_like(rows))
        filled = tf.range(size, dtype=tf.int64) < tf.minimum(written, size)  # [K]
        return rows, filled & tf.reduce_any(rows > 0, axis=1)

    def write(self, item_ids):
        """Appends the sessions of `item_ids` (int `[batch, len]`, right-padded) to the
        bank in row order, skipping rows without items; of a batch larger than the bank,
        only its last `memory_size` sessions stay."""
        rows = _fit_width(tf.cast(item_ids, tf.int32), self.max_len)  # [B, L_m]
        rows = tf.boolean_mask(rows, tf.reduce_any(rows > 0, axis=1))  # [B', L_m]
        rows = whole_batch(rows)[-self.memory_size:]  # every replica's share
        count = tf.shape(rows, out_type=tf.int64)[0]
        slots = tf.math.floormod(self.num_written + tf.range(count, dtype=tf.int64),
                                 self.memory_size)  # [B']
        self.memory_items.assign(tf.tensor_scatter_nd_update(
            tf.convert_to_tensor(self.memory_items), slots[:, tf.newaxis], rows))
        self.num_written.assign_add(count)

    def call(self, inputs, training=None, return_neighbors=False):
        item_ids, item_vectors, item_table = inputs
        item_ids = tf.cast(item_ids, tf.int32)
        dtype = item_vectors.dtype
        table = tf.cast(item_table, dtype)
        bank, filled = self.bank_sessions(num_items=tf.shape(table)[0])  # [K, L_m], [K]
        bank_real = bank > 0

        # (C1): mean embedding of each bank session, from the gathered real entries only.
        entries = tf.where(bank_real)  # [nnz, 2]: (bank row, column)
        entry_rows = tf.cast(entries[:, 0], tf.int32)  # [nnz]
        entry_ids = tf.gather_nd(bank, entries)  # [nnz]
        entry_vectors = tf.gather(table, entry_ids - 1)  # [nnz, d]
        sums = tf.math.unsorted_segment_sum(entry_vectors, entry_rows, self.memory_size)
        counts = tf.reduce_sum(tf.cast(bank_real, dtype), axis=1)  # [K]
        neighbor_vectors = sums / tf.maximum(counts, 1)[:, tf.newaxis]  # [K, d]

        # Containment: does bank session j hold the item at (b, i)? Each bank entry looks
        # itself up among the batch's distinct ids (sorted), then one [distinct, K] table
        # of hits is gathered per batch position; no [M, K] table, whatever M.
        batch_size, length = tf.shape(item_ids)[0], tf.shape(item_ids)[1]
        flat_ids = tf.reshape(item_ids, [-1])  # [N]
        # With 0 always in it, the vocabulary is never empty (nor is a bank entry 0).
        vocabulary = tf.sort(tf.unique(tf.concat([[0], flat_ids], axis=0))[0])  # [U]
        last_word = tf.shape(vocabulary)[0] - 1
        word = tf.minimum(tf.searchsorted(vocabulary, entry_ids), last_word)  # [nnz]
        hit = tf.gather(vocabulary, word) == entry_ids  # [nnz]
        hit_word, hit_row = tf.boolean_mask(word, hit), tf.boolean_mask(entry_rows, hit)
        hits = tf.scatter_nd(tf.stack([hit_word, hit_row], axis=1), tf.ones_like(hit_word),
                             tf.stack([last_word + 1, self.memory_size]))  # [U, K] counts
        position_word = tf.searchsorted(vocabulary, flat_ids)  # [N], exact: all present
        contains = tf.reshape(tf.gather(hits, position_word) > 0,
                              [batch_size, length, self.memory_size])  # [B, L, K]

        # (C2) on distinct items, ranked by sim^2 = overlap^2 / (|s| |u|): one correctly
        # rounded division of exact integers, so equal similarities tie exactly and the
        # tie goes to the more recent session (lower index; top_k keeps the first).
        rank_dtype = at_least_float32(dtype)
        first = tf.cast(_first_occurrences(item_ids), rank_dtype)  # [B, L]
        overlap = tf.einsum("bl,blk->bk", first, tf.cast(contains, rank_dtype))  # [B, K]
        sorted_bank = tf.sort(bank, axis=1)  # [K, L_m], padding zeros first
        distinct_bank = tf.concat(
            [sorted_bank[:, :1] > 0,
             (sorted_bank[:, 1:] > 0) & (sorted_bank[:, 1:] != sorted_bank[:, :-1])], axis=1)
        bank_sizes = tf.reduce_sum(tf.cast(distinct_bank, rank_dtype), axis=1)  # [K]
        session_sizes = tf.reduce_sum(first, axis=1)  # [B]
        denominator = tf.maximum(session_sizes[:, tf.newaxis] * bank_sizes[tf.newaxis, :], 1)
        similarity = tf.square(overlap) / denominator  # [B, K]

        # (C3): candidates hold the item; the item itself makes overlap >= 1, so sim > 0.
        mask = item_ids > 0  # [B, L], True = real item
        candidate = contains & filled[tf.newaxis, tf.newaxis, :] & mask[:, :, tf.newaxis]
        scores = tf.where(candidate, similarity[:, tf.newaxis, :],
                          tf.constant(-1.0, rank_dtype))  # [B, L, K]
        top_scores, indices = tf.math.top_k(scores, k=min(self.num_neighbors, self.memory_size))
        chosen = top_scores > 0  # [B, L, k]
        neighbors = tf.gather(neighbor_vectors, indices)  # [B, L, k, d]

        # (C4)
        dim = item_vectors.shape[-1]
        keys = tf.matmul(item_vectors, tf.cast(self.attention_kernel, dtype))  # e_i W_a
        logits = tf.einsum("bld,blkd->blk", keys, neighbors) / tf.cast(math.sqrt(dim), dtype)
        beta = masked_softmax(logits, chosen)  # [B, L, k]
        collaborative = tf.einsum("blk,blkd->bld", beta, neighbors)  # [B, L, d]

        if training:
            self.write(item_ids)
        if return_neighbors:
            return collaborative, {"indices": indices, "beta": beta}
        return collaborative

    def get_config(self):
        config = super().get_config()
        config.update(memory_size=self.memory_size, max_len=self.max_len,
                      num_neighbors=self.num_neighbors)
        return config
