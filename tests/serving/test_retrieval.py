"""Retrieval over the catalogue a slice at a time: the same ranks and top-K lists as one
product over all items (lists up to the order of scores equal but for rounding), exact
ties, padding-only sessions and unknown targets included; with the paper's output and
with the repeat head."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import metrics
from mtd_tf.models.mtd import MTDModel
from mtd_tf.serving import export
from mtd_tf.serving.retrieval import TopKRetrieval

NUM_ITEMS, DIM = 30, 8


def tied_model(repeat_head, seed=0):
    """A random model whose items 4, 11 and 25 have one vector: their scores tie exactly.
    `repeat_head`: False, True, or "scores" for the head from the model's scores."""
    keras.utils.set_random_seed(seed)
    model = MTDModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=6, dropout=0.0,
                     repeat_head=bool(repeat_head), repeat_from_scores=repeat_head == "scores")
    model.build()
    table = model.item_embeddings.numpy()
    table[[10, 24]] = table[3]
    model.item_embeddings.assign(table)
    return model


def sessions(rng, batch=12):
    ids = rng.integers(1, NUM_ITEMS + 1, size=(batch, 5)).astype(np.int32)
    ids[np.arange(5)[None, :] >= rng.integers(1, 6, size=batch)[:, None]] = 0
    ids[2] = 0  # no item: ranked by popularity
    targets = rng.integers(1, NUM_ITEMS + 1, size=batch).astype(np.int32)
    targets[[0, 5, 9]] = [4, 11, 0]  # tied items; padding as a target (a miss)
    targets[3] = NUM_ITEMS + 1  # not an item (a miss)
    targets[7] = ids[7, 0]  # a repeat
    return tf.constant(ids), tf.constant(targets)


@pytest.mark.parametrize("repeat_head", [False, True, "scores"])
@pytest.mark.parametrize("chunk_items", [1, 7, 29])
def test_slices_give_the_ranks_and_lists_of_one_product(repeat_head, chunk_items):
    model = tied_model(repeat_head)
    popularity = np.random.default_rng(1).permutation(NUM_ITEMS).astype(np.float32)
    whole = TopKRetrieval(model, popularity, chunk_items=NUM_ITEMS)
    sliced = TopKRetrieval(model, popularity, chunk_items=chunk_items)
    assert len(whole.slices) == 1 and len(sliced.slices) == -(-NUM_ITEMS // chunk_items)
    item_ids, targets = sessions(np.random.default_rng(2))
    ranks = whole.target_ranks(item_ids, targets).numpy()
    scores = whole.scores(item_ids).numpy()  # column j: item j + 1
    # One product's ranks are the NumPy rule on its scores.
    np.testing.assert_array_equal(ranks, metrics.target_ranks(scores, targets.numpy()))
    np.testing.assert_array_equal(sliced.target_ranks(item_ids, targets).numpy(), ranks)
    assert ranks[3] == ranks[9] == metrics.UNRANKED
    for k in (1, 5, NUM_ITEMS):
        whole_items, whole_values = whole.top_k(item_ids, k)
        sliced_items, sliced_values = sliced.top_k(item_ids, k)
        np.testing.assert_allclose(sliced_values.numpy(), whole_values.numpy(), rtol=1e-6,
                                   atol=1e-6)
        # The same list, up to the order of items whose scores differ by rounding alone:
        # the head's log-probabilities of equal scores may differ in the last bit, by the
        # SIMD lane each one went through, and that varies between CPUs.
        for items in (sliced_items.numpy(), whole_items.numpy()):
            assert all(len(set(row)) == k for row in items.tolist())
            np.testing.assert_allclose(np.take_along_axis(scores, items - 1, axis=1),
                                       whole_values.numpy(), rtol=1e-6, atol=1e-6)


def test_tied_items_are_listed_lower_id_first():
    model = tied_model(False)
    retrieval = TopKRetrieval(model, np.ones(NUM_ITEMS, np.float32), chunk_items=5)
    item_ids = tf.constant([[4, 0]], tf.int32)
    top_items, _ = retrieval.top_k(item_ids, NUM_ITEMS)
    listed = top_items.numpy()[0].tolist()
    assert listed.index(4) < listed.index(11) < listed.index(25)
    assert abs(listed.index(25) - listed.index(4)) == 2  # adjacent: their scores are equal


@pytest.mark.parametrize("repeat_head", [False, True, "scores"])
def test_a_sliced_export_serves_the_lists_of_a_whole_one(tmp_path, repeat_head):
    model = tied_model(repeat_head)
    popularity = np.arange(NUM_ITEMS, 0, -1)
    rows = np.array([[3, 4, 5], [7, 0, 0], [0, 0, 0]], np.int64)
    served = []
    for chunk_items in (NUM_ITEMS, 4):
        export_dir = str(tmp_path / f"chunk{chunk_items}")
        export.export_saved_model(model, export_dir, top_k=10, item_popularity=popularity,
                                  chunk_items=chunk_items)
        served.append(export.load_export(export_dir).recommend(rows))
    np.testing.assert_array_equal(served[0][0], served[1][0])
    np.testing.assert_allclose(served[0][1], served[1][1], rtol=1e-6, atol=1e-6)


def test_published_split_ranks_are_the_same_in_slices(shared_data_dir):
    """Yoochoose's first 16,384 test pairs over its 17,376 items (the catalogue is what
    matters: 4,096 does not divide it): a random model's ranks, one product against slices
    of 4,096 items."""
    from mtd_tf.data import augment  # pylint: disable=import-outside-toplevel
    from mtd_tf.data import registry  # pylint: disable=import-outside-toplevel

    dataset = registry.load_dataset("yoochoose", shared_data_dir)
    keras.utils.set_random_seed(0)
    model = MTDModel(num_items=dataset.num_items, embedding_dim=32, dropout=0.0)
    model.build()
    popularity = np.bincount(dataset.train.values, minlength=dataset.num_items + 1)[1:]
    samples = augment.pad_prefixes(dataset.test_prefixes, dataset.test_targets, model.max_len)
    retrievals = [TopKRetrieval(model, popularity, chunk_items=chunk)
                  for chunk in (dataset.num_items, 4096)]
    rank_functions = [tf.function(retrieval.target_ranks) for retrieval in retrievals]
    for start in range(0, 16384, 2048):
        ids = tf.constant(samples.item_ids[start:start + 2048])
        targets = tf.constant(samples.targets[start:start + 2048])
        whole, sliced = (function(ids, targets).numpy() for function in rank_functions)
        np.testing.assert_array_equal(sliced, whole)


def test_the_fallback_list_is_top_k_of_popularity_ties_lower_id_first():
    model = tied_model(False)
    popularity = np.array([3, 7, 7, 1, 7, 3] + [0] * (NUM_ITEMS - 6), np.float32)
    items, values = TopKRetrieval(model, popularity).top_k(tf.constant([[0, 0]], tf.int32), 5)
    want = tf.math.top_k(popularity, k=5)
    np.testing.assert_array_equal(items.numpy()[0], want.indices.numpy() + 1)
    np.testing.assert_array_equal(values.numpy()[0], want.values.numpy())
    assert items.numpy()[0].tolist() == [2, 3, 5, 1, 6]
