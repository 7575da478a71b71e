"""Batches of `Samples` as a `tf.data.Dataset`, bucketed by length and trimmed per batch.

The batch order is computed in NumPy from (seed, epoch) alone, so a run resumed at epoch
`e` sees exactly the batches an uninterrupted run would have seen. Shuffled epochs are
bucketed: samples are shuffled, cut into chunks of `BUCKET_CHUNK_BATCHES` batches, each
chunk is sorted by length and split into batches, and the batches are shuffled. Each
batch is then trimmed to its longest row, so attention costs O(L^2) with L close to the
batch's real lengths instead of `max_len` (most sessions are short).
"""

import numpy as np
import tensorflow as tf

# Padding is mostly the last batch of each chunk (its few longest rows); measured padding
# fraction at batch 512 for 25 / 50 / 100 / 200 batches per chunk: diginetica 26 / 15 / 8 / 4 %,
# yoochoose1_64 18 / 9 / 5 / 3 %, retailrocket 10 / 6 / 3 / 2 %. 100 keeps it under 10 % while
# an epoch still has 8 to 15 chunks to draw batches from.
BUCKET_CHUNK_BATCHES = 100
# Batches prepared ahead of the training step (one is in use, one waiting).
PREFETCH_BATCHES = 2


def num_batches(samples, batch_size):
    """Batches per epoch: ceil(N / batch_size); the last one may be smaller."""
    _check_batch_size(batch_size)
    return -(-len(samples) // batch_size)


def make_dataset(samples, batch_size, shuffle, seed=0, epoch=0):
    """One epoch of `samples`, each exactly once, as (item_ids, targets) batches.

    Args:
      samples: `augment.Samples`.
      batch_size: rows per batch (the last batch may be smaller).
      shuffle: True for training (bucketed, order a pure function of (seed, epoch));
        False keeps the given order (validation, test).
      seed, epoch: the shuffle's key.

    Returns:
      A plain `tf.data.Dataset` (distribute it with the strategy) of
      (item_ids int32 [B, L], targets int32 [B]); L = the batch's longest row, at least 1
      so that a batch of empty test prefixes still has a column.
    """
    order = batch_order(samples.lengths, batch_size, shuffle, seed, epoch)  # [N]
    num_samples, max_len = samples.item_ids.shape
    row_splits = np.append(np.arange(0, num_samples, batch_size), num_samples)  # [num_batches + 1]
    # Each batch's width L: zero-padding the lengths to whole batches leaves the maxima as
    # they are. At least 1 column, so a batch of empty test prefixes still has one.
    padded_lengths = np.zeros((len(row_splits) - 1) * batch_size, dtype=np.int64)
    padded_lengths[:num_samples] = samples.lengths[order]
    widths = np.maximum(padded_lengths.reshape(-1, batch_size).max(axis=1), 1)  # [num_batches]
    # Only the kept cells are gathered (about N * mean length, not N * max_len), as one
    # flat array, row after row and batch after batch.
    row_widths = np.repeat(widths, np.diff(row_splits))  # [N]
    cell_row = np.repeat(np.arange(num_samples), row_widths)  # [num_cells]
    cell_column = np.arange(len(cell_row)) - (np.cumsum(row_widths) - row_widths)[cell_row]
    cells = samples.item_ids.reshape(-1)[order[cell_row] * max_len + cell_column]  # [num_cells]
    cell_splits = np.append(0, np.cumsum(widths * np.diff(row_splits)))  # [num_batches + 1]
    # One dataset element per batch (ragged slices), so tf.data does ~N / B steps, not N.
    dataset = tf.data.Dataset.from_tensor_slices((
        tf.RaggedTensor.from_row_splits(cells, cell_splits),
        tf.RaggedTensor.from_row_splits(samples.targets[order], row_splits),
        widths))
    # A reshape per batch needs no parallel map, and tf.data's autotuning model is off: its
    # thread sleeps up to 60 s between optimisations, and destroying the iterator at the
    # end of a pass waited for it to wake, idling 16-50 s at the end of each yoochoose pass.
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.map(_to_batch).prefetch(PREFETCH_BATCHES).with_options(options)


def batch_order(lengths, batch_size, shuffle, seed=0, epoch=0):
    """Sample indices, int64 [N]; consecutive runs of `batch_size` form the batches.

    Args:
      lengths: int [N], each sample's real length (the bucketing key).
      batch_size, shuffle, seed, epoch: as in `make_dataset`.
    """
    _check_batch_size(batch_size)
    num_samples = len(lengths)
    if not shuffle:
        return np.arange(num_samples)
    rng = np.random.default_rng([seed, epoch])
    shuffled = rng.permutation(num_samples)  # [N]
    # A stable sort by (chunk, length): equal lengths keep their shuffled order, and chunks
    # hold whole batches, so no batch straddles two chunks. The key usually fits 16 bits,
    # where NumPy's stable sort is a radix sort (3x faster than lexsort here).
    chunk = np.arange(num_samples) // (batch_size * BUCKET_CHUNK_BATCHES)  # [N]
    key = chunk * (int(lengths.max(initial=0)) + 1) + lengths[shuffled]  # [N]
    bucketed = shuffled[np.argsort(key.astype(np.min_scalar_type(key.max(initial=0))),
                                   kind="stable")]  # [N]
    # The full batches are shuffled; the remainder (the longest rows of the last chunk)
    # stays last so every other batch has exactly batch_size rows.
    num_full = num_samples // batch_size
    full = bucketed[:num_full * batch_size].reshape(num_full, batch_size)
    remainder = bucketed[num_full * batch_size:]
    return np.concatenate([full[rng.permutation(num_full)].ravel(), remainder])


def _to_batch(cells, targets, width):
    """Flat cells [B * L] -> (item_ids [B, L], targets [B])."""
    return tf.reshape(cells, [-1, width]), targets


def _check_batch_size(batch_size):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
