"""The exported `serving_default` under whatever clients send: properties, not examples.

One tiny model is exported once for the module; hypothesis then throws int64 batches at the
loaded signature: negatives, zeros, ids far beyond the catalogue, rows longer than
`max_len`, mixed lengths, empty rows, zero columns.
"""

import hypothesis
from hypothesis.extra import numpy as hnp
import hypothesis.strategies as st
import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.models.mtd import MTDModel
from mtd_tf.serving import export

NUM_ITEMS = 30
MAX_LEN = 6
TOP_K = 8
INT64 = np.iinfo(np.int64)
# Distinct counts, so that the popularity fallback has one right order.
POPULARITY = np.random.default_rng(1).permutation(NUM_ITEMS) * 3 + 1

SETTINGS = hypothesis.settings(max_examples=50, deadline=None)

known_ids = st.integers(min_value=1, max_value=NUM_ITEMS)
unknown_ids = (st.integers(min_value=INT64.min, max_value=0)
               | st.integers(min_value=NUM_ITEMS + 1, max_value=INT64.max)
               | st.sampled_from([0, -1, NUM_ITEMS + 1, 2 ** 31, 2 ** 32 + 1,
                                 INT64.min, INT64.max]))
any_ids = known_ids | unknown_ids
batches = hnp.arrays(np.int64, shape=st.tuples(st.integers(0, 6), st.integers(0, 3 * MAX_LEN)),
                     elements=any_ids)


@pytest.fixture(name="serve", scope="module")
def fixture_serve(tmp_path_factory):
    """`serve(item_ids) -> (top_items, scores)` of a freshly exported and loaded model."""
    keras.utils.set_random_seed(3)
    model = MTDModel(num_items=NUM_ITEMS, embedding_dim=8, max_len=MAX_LEN)
    model.build()
    export_dir = tmp_path_factory.mktemp("serving") / "export"
    export.export_saved_model(model, str(export_dir), top_k=TOP_K, item_popularity=POPULARITY)
    signature = tf.saved_model.load(str(export_dir)).signatures[export.SIGNATURE_KEY]

    def serve(item_ids):
        item_ids = np.asarray(item_ids, dtype=np.int64)  # [batch, len]
        outputs = signature(item_ids=tf.constant(item_ids))
        return outputs["top_items"].numpy(), outputs["scores"].numpy()

    return serve


def _known(row):
    """The ids the export must use for a row: known ones, in order, the last MAX_LEN."""
    return [int(item) for item in row if 1 <= item <= NUM_ITEMS][-MAX_LEN:]


def _padded(rows):
    width = max([len(row) for row in rows] + [1])
    return np.array([row + [0] * (width - len(row)) for row in rows], dtype=np.int64)


@SETTINGS
@hypothesis.given(item_ids=batches)
def test_any_batch_gives_catalogue_ids_unique_per_row_best_first(serve, item_ids):
    top_items, scores = serve(item_ids)
    assert top_items.dtype == np.int64 and scores.dtype == np.float32
    assert top_items.shape == scores.shape == (item_ids.shape[0], TOP_K)
    assert ((top_items >= 1) & (top_items <= NUM_ITEMS)).all()
    for row in top_items:
        assert len(set(row.tolist())) == TOP_K
    assert np.isfinite(scores).all()
    assert (np.diff(scores, axis=1) <= 0).all()


@SETTINGS
@hypothesis.given(item_ids=batches)
def test_unknown_and_padding_ids_are_ignored(serve, item_ids):
    # Each row is served as if the client had sent only its known ids (the last MAX_LEN).
    hypothesis.assume(item_ids.shape[0] > 0)
    top_items, scores = serve(item_ids)
    cleaned_top, cleaned_scores = serve(_padded([_known(row) for row in item_ids]))
    np.testing.assert_array_equal(top_items, cleaned_top)
    np.testing.assert_allclose(scores, cleaned_scores, rtol=1e-5, atol=1e-6)


@SETTINGS
@hypothesis.given(rows=st.lists(st.lists(known_ids, min_size=1, max_size=3 * MAX_LEN),
                                min_size=1, max_size=5))
def test_rows_of_a_mixed_batch_are_served_as_alone_and_only_the_last_max_len_count(
        serve, rows):
    top_items, scores = serve(_padded(rows))
    for index, row in enumerate(rows):
        alone_top, alone_scores = serve([row[-MAX_LEN:]])
        np.testing.assert_array_equal(top_items[index], alone_top[0])
        np.testing.assert_allclose(scores[index], alone_scores[0], rtol=1e-5, atol=1e-6)


@SETTINGS
@hypothesis.given(rows=st.lists(st.lists(unknown_ids, max_size=8), min_size=1, max_size=4))
def test_a_session_with_no_known_id_gets_the_most_popular_items(serve, rows):
    top_items, scores = serve(_padded(rows))
    most_popular = np.argsort(-POPULARITY)[:TOP_K] + 1  # item ids, best first
    for row_top, row_scores in zip(top_items, scores):
        np.testing.assert_array_equal(row_top, most_popular)
        np.testing.assert_array_equal(row_scores, POPULARITY[most_popular - 1])


def test_empty_inputs(serve):
    for shape in ((0, 0), (0, 4), (3, 0)):
        top_items, scores = serve(np.zeros(shape, np.int64))
        assert top_items.shape == scores.shape == (shape[0], TOP_K)
    assert (serve(np.zeros((3, 0), np.int64))[0] == np.argsort(-POPULARITY)[:TOP_K] + 1).all()
