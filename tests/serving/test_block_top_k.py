"""The block top-K against a NumPy stable sort: the same items in the same order, ties
listed lower column first, in aligned and unaligned widths, with many tied blocks and
-inf rows; and the retrieval's lists over a catalogue large enough to take that path."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.models.mtd import MTDModel
from mtd_tf.serving.block_top_k import block_top_k
from mtd_tf.serving.candidate_table import CandidateTable
from mtd_tf.serving.retrieval import TopKRetrieval


def numpy_top_k(scores, k):
    """Columns by descending score, equal scores lower column first."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def tied_scores(rng, batch, width):
    """Few distinct values, so that ties cross block boundaries and fill whole blocks, and
    stretches of 64 columns raised by 0 to 3 at random, so that block maxima differ."""
    scores = (rng.integers(0, 6, size=(batch, width))
              + np.repeat(rng.integers(0, 4, size=(batch, -(-width // 64))), 64, axis=1)[:, :width]
              ).astype(np.float32)
    scores[0] = 3.0  # a row of one value: every block ties
    scores[1, : width // 2] = -np.inf
    scores[2] = -np.inf
    return scores


@pytest.mark.parametrize("width", [64 * 50, 64 * 50 + 17, 64 * 9, 30])
@pytest.mark.parametrize("k", [1, 5, 20])
@pytest.mark.parametrize("tied", [False, True])
def test_lists_what_a_stable_sort_lists(width, k, tied):
    rng = np.random.default_rng(width + k)
    scores = (tied_scores(rng, 7, width) if tied
              else rng.normal(size=(7, width)).astype(np.float32))
    values, indices = block_top_k(tf.constant(scores), k, block=64)
    want_values, want_indices = numpy_top_k(scores, k)
    np.testing.assert_array_equal(indices.numpy(), want_indices)
    np.testing.assert_array_equal(values.numpy(), want_values)


@pytest.mark.parametrize("valid", [64 * 50 - 1, 64 * 49 + 1, 64 * 50 - 40])
@pytest.mark.parametrize("tied", [False, True])
def test_padding_columns_are_never_listed_whatever_they_score(valid, tied):
    """Padding completing the last block, scoring above every real column: the padded
    block ranks first, yet the list is that of the real columns alone."""
    rng = np.random.default_rng(valid)
    width = 64 * 50
    scores = (tied_scores(rng, 7, width) if tied
              else rng.normal(size=(7, width)).astype(np.float32))
    scores[:, valid:] = 100.0
    for k in (1, 20):
        values, indices = block_top_k(tf.constant(scores), k, block=64, valid=valid)
        want_values, want_indices = numpy_top_k(scores[:, :valid], k)
        np.testing.assert_array_equal(indices.numpy(), want_indices)
        np.testing.assert_array_equal(values.numpy(), want_values)


def test_refuses_padding_that_does_not_complete_a_block():
    with pytest.raises(ValueError, match="padding must complete the last block"):
        block_top_k(tf.zeros([2, 64 * 50 + 3]), 5, block=64, valid=64 * 50)


def test_the_same_as_tf_top_k_inside_a_function_with_an_unknown_batch():
    scores = np.random.default_rng(3).normal(size=(9, 5000)).astype(np.float32)
    ranked = tf.function(lambda rows: block_top_k(rows, 20),
                         input_signature=[tf.TensorSpec([None, 5000], tf.float32)])
    values, indices = ranked(tf.constant(scores))
    want_values, want_indices = tf.math.top_k(scores, 20)
    np.testing.assert_array_equal(indices.numpy(), want_indices.numpy())
    np.testing.assert_array_equal(values.numpy(), want_values.numpy())


def test_refuses_a_width_unknown_at_trace_time():
    ranked = tf.function(lambda rows: block_top_k(rows, 5),
                         input_signature=[tf.TensorSpec([None, None], tf.float32)])
    with pytest.raises(ValueError, match="width"):
        ranked(tf.zeros([2, 300]))


@pytest.mark.parametrize("chunk_items", [12100, 6000])
def test_retrieval_lists_of_a_large_catalogue_are_those_of_one_sort(chunk_items):
    """12,100 items (94 whole blocks of 128 and a tail; slices of 6,000 have 46: more than
    2K, so the blocks are ranked, not the rows), items 40..49 and 5,000..5,009 sharing one
    vector: their scores tie across blocks and slices."""
    num_items = 12100
    keras.utils.set_random_seed(0)
    model = MTDModel(num_items=num_items, embedding_dim=8, max_len=6, dropout=0.0)
    model.build()
    table = model.item_embeddings.numpy()
    table[np.r_[39:49, 4999:5009]] = table[2]
    model.item_embeddings.assign(table)
    retrieval = TopKRetrieval(model, np.ones(num_items, np.float32), chunk_items=chunk_items)
    ids = np.random.default_rng(1).integers(1, num_items + 1, size=(8, 4)).astype(np.int32)
    ids[0] = [3, 0, 0, 0]
    items, values = retrieval.top_k(tf.constant(ids), 20)
    scores = retrieval.scores(tf.constant(ids)).numpy()
    want_values, want_columns = numpy_top_k(scores, 20)
    np.testing.assert_array_equal(items.numpy(), want_columns + 1)
    np.testing.assert_allclose(values.numpy(), want_values, rtol=1e-6, atol=1e-6)


def test_a_tie_between_a_higher_block_and_a_lower_one_lists_the_lower_column_first():
    """Block 10 holds the best score and a 5; block 3's best is an equal 5: the top 2 are
    block 10's 9, then block 3's 5 (the lower column), though block 10 ranks first."""
    scores = np.zeros((1, 64 * 50), np.float32)
    scores[0, [10 * 64 + 7, 10 * 64 + 3]] = [9.0, 5.0]
    scores[0, 3 * 64 + 60] = 5.0
    values, indices = block_top_k(tf.constant(scores), 2, block=64)
    assert indices.numpy().tolist() == [[10 * 64 + 7, 3 * 64 + 60]]
    assert values.numpy().tolist() == [[9.0, 5.0]]


@pytest.mark.parametrize("slice_items", [6100, 1000, 130, 1])
def test_a_candidate_table_lists_what_one_sort_of_its_products_lists(slice_items):
    """6,100 vectors, a tenth of them copies of one vector (ties across slices and blocks),
    in slices of whole blocks with the last padded: the stable sort of q V^T."""
    rng = np.random.default_rng(slice_items)
    vectors = rng.normal(size=(6100, 8)).astype(np.float32)
    vectors[rng.choice(6100, 610, replace=False)] = vectors[5]
    table = CandidateTable(vectors, slice_items, block=64)
    assert all(variable.shape[0] % 64 == 0 for variable in table.slices)
    query = rng.normal(size=(6, 8)).astype(np.float32)
    query[0] = vectors[5]  # the tied vector scores highest for this row
    values, indices = table.top_k(tf.constant(query), 20)
    want_values, want_indices = numpy_top_k(query @ vectors.T, 20)
    np.testing.assert_array_equal(indices.numpy(), want_indices)
    np.testing.assert_allclose(values.numpy(), want_values, rtol=1e-5, atol=1e-5)

