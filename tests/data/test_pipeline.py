"""Batching: each sample once per epoch, order keyed by (seed, epoch), little padding."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.data import pipeline
from mtd_tf.data.augment import Samples, pad_prefixes
from mtd_tf.data.sessions import Sessions


def skewed_samples(num_samples, seed=0, max_len=20):
    """Mostly short rows and a long tail, like real sessions; targets are the row numbers."""
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.geometric(0.3, size=num_samples), max_len).astype(np.int32)
    item_ids = np.where(np.arange(max_len) < lengths[:, None],
                        rng.integers(1, 100, size=(num_samples, max_len)), 0).astype(np.int32)
    return Samples(item_ids, lengths, np.arange(1, num_samples + 1, dtype=np.int32))


def epoch_batches(samples, batch_size, shuffle, seed=0, epoch=0):
    return [(ids.numpy(), targets.numpy()) for ids, targets in
            pipeline.make_dataset(samples, batch_size, shuffle, seed, epoch)]


def rows_of(batches, max_len):
    """Multiset of (padded row, target), each row padded back to max_len."""
    return collections.Counter(
        (tuple(np.pad(row, (0, max_len - len(row)))), int(target))
        for ids, targets in batches for row, target in zip(ids, targets))


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("num_samples, batch_size", [(1000, 32), (1024, 32), (5, 8), (0, 4)])
def test_every_sample_exactly_once(shuffle, num_samples, batch_size):
    samples = skewed_samples(num_samples)
    batches = epoch_batches(samples, batch_size, shuffle, seed=3, epoch=1)
    assert len(batches) == pipeline.num_batches(samples, batch_size)
    assert all(len(targets) == batch_size for _, targets in batches[:-1])
    assert rows_of(batches, 20) == rows_of([(samples.item_ids, samples.targets)], 20)


def test_batches_are_trimmed_to_their_longest_row():
    samples = skewed_samples(700)
    for ids, targets in epoch_batches(samples, 64, shuffle=True):
        longest = samples.lengths[targets - 1].max()
        assert ids.shape == (len(targets), longest)
        assert ids.dtype == targets.dtype == np.int32
        assert (ids[:, -1] != 0).any()  # the last kept column holds a real item


def test_unshuffled_keeps_the_given_order():
    samples = skewed_samples(100)
    batches = epoch_batches(samples, 16, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([t for _, t in batches]), samples.targets)


def test_empty_prefixes_keep_one_column():
    samples = pad_prefixes(Sessions.from_lists([[], []]), [1, 2], max_len=5)
    [(ids, _)] = epoch_batches(samples, 4, shuffle=False)
    np.testing.assert_array_equal(ids, [[0], [0]])


def test_order_is_a_function_of_seed_and_epoch():
    samples = skewed_samples(1000)

    def targets(seed, epoch):
        return [t.tolist() for _, t in epoch_batches(samples, 32, True, seed, epoch)]

    assert targets(0, 2) == targets(0, 2)
    assert targets(0, 2) != targets(0, 3)
    assert targets(0, 2) != targets(1, 2)


def padding_fraction(batch_order, lengths, batch_size):
    """Share of the trimmed batches' cells that are padding."""
    ordered = lengths[batch_order]
    cells = sum(len(chunk) * chunk.max()
                for chunk in np.split(ordered, range(batch_size, len(ordered), batch_size)))
    return 1.0 - lengths.sum() / cells


def test_bucketing_cuts_padding():
    # Geometric(0.3) lengths capped at 20: mean ~3.3, so an unsorted batch of 64 nearly
    # always holds a row of 12+ and is mostly padding; sorted chunks are nearly exact.
    lengths = skewed_samples(20_000).lengths
    in_order = padding_fraction(pipeline.batch_order(lengths, 64, shuffle=False), lengths, 64)
    bucketed = padding_fraction(pipeline.batch_order(lengths, 64, shuffle=True), lengths, 64)
    assert in_order > 0.6  # measured 0.76
    assert bucketed < 0.1  # measured 0.04


def test_shuffled_batches_mix_the_whole_epoch():
    # Bucketing must not turn the epoch into "short rows first": batch mean lengths in the
    # first and second half of the epoch are alike.
    samples = skewed_samples(20_000, seed=1)
    order = pipeline.batch_order(samples.lengths, 64, shuffle=True, seed=5)
    batch_means = samples.lengths[order[:len(order) // 64 * 64]].reshape(-1, 64).mean(axis=1)
    half = len(batch_means) // 2
    assert abs(batch_means[:half].mean() - batch_means[half:].mean()) < 0.5


def test_works_under_a_distribution_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    samples = skewed_samples(100)
    dataset = strategy.experimental_distribute_dataset(
        pipeline.make_dataset(samples, 32, shuffle=True))
    seen = [int(t) for _, targets in dataset for t in targets.numpy()]
    assert sorted(seen) == samples.targets.tolist()


def test_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        pipeline.num_batches(skewed_samples(3), 0)


def test_autotuning_model_is_off():
    # Its thread sleeps up to 60 s between optimisations and deleting the iterator at the
    # end of a pass waited for it: 16-50 s of idle CPU per yoochoose pass.
    dataset = pipeline.make_dataset(skewed_samples(100), 32, shuffle=True)
    assert dataset.options().autotune.enabled is False
