"""The SavedModel: same top-K in a fresh TensorFlow-only process and via saved_model_cli,
input cleaning against NumPy, popularity fallback, K > M, mixed-length batches; with the
paper's output and with the repeat head; raw item ids in and out (`serving_raw`)."""

import json
import os
import re
import subprocess
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf.data import item_catalog
from mtd_tf.models.mtd import MTDModel
from mtd_tf.serving import export
from tests import helpers

NUM_ITEMS = 30
DIM = 8
MAX_LEN = 5
TOP_K = 7
# Mixed lengths, unknown ids (0 inside, > M, negative), longer than max_len, all unknown.
CLIENT_SESSIONS = [
    [3, 4, 5],
    [7],
    [1, 0, 31, 2, -4, 3, 99, 4, 5, 6, 7],  # known: 1 2 3 4 5 6 7 -> last 5: 3 4 5 6 7
    [0, 999, -3],  # nothing known: popularity
    [30, 29, 28, 27, 26, 25],
]


def right_pad(rows, width=None):
    width = width or max(len(row) for row in rows)
    return np.array([row + [0] * (width - len(row)) for row in rows], dtype=np.int64)


def numpy_clean(row, num_items=NUM_ITEMS, max_len=MAX_LEN):
    """Known ids (1..M) in their order, the last max_len of them."""
    known = [int(v) for v in row if 1 <= v <= num_items]
    return known[-max_len:] if known else []


def expected_top_k(model, popularity, sessions, k):
    """(top_items, scores) computed here: model(ids) + tf.math.top_k, popularity if empty."""
    items, values = [], []
    for row in sessions:
        cleaned = numpy_clean(row)
        if cleaned:
            scores = model(np.array([cleaned], np.int32), training=False)[0]
        else:
            scores = tf.constant(popularity, tf.float32)
        top = tf.math.top_k(scores, k=k)
        items.append(top.indices.numpy() + 1)
        values.append(top.values.numpy())
    return np.stack(items), np.stack(values)


def build_model(seed, repeat_head=False, score_scale=0.0):
    """`repeat_head`: False, True, or "scores" for the head from the model's scores."""
    keras.utils.set_random_seed(seed)
    model = MTDModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=MAX_LEN, dropout=0.3,
                     repeat_head=bool(repeat_head), repeat_from_scores=repeat_head == "scores",
                     score_scale=score_scale)
    model.build()
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(rng.normal(0.0, 0.5, weight.shape).astype(np.float32))
    # Distinct counts, so the fallback ranking has no ties.
    popularity = rng.permutation(NUM_ITEMS).astype(np.int64) * 3 + 1
    return model, popularity


@pytest.fixture(scope="module", params=[False, True, "scores"],
                ids=["paper_head", "repeat_head", "repeat_from_scores"])
def exported(tmp_path_factory, request):
    """(model, popularity, export_dir) of a random model exported with K = 7, with the
    paper's scores or the repeat head's log-probabilities (served exactly as evaluated)."""
    model, popularity = build_model(0, repeat_head=request.param)
    export_dir = str(tmp_path_factory.mktemp("export") / "export")
    export.export_saved_model(model, export_dir, top_k=TOP_K, item_popularity=popularity)
    return model, popularity, export_dir


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[2]).signatures[export.SIGNATURE_KEY]


def serve(signature, rows):
    outputs = signature(item_ids=tf.constant(right_pad(rows)))
    return outputs["top_items"].numpy(), outputs["scores"].numpy()


@pytest.mark.slow
def test_fresh_tensorflow_only_process_gives_the_same_top_k(exported):
    model, popularity, export_dir = exported
    served = helpers.serve_in_fresh_process(export_dir, right_pad(CLIENT_SESSIONS).tolist())
    assert served["mtd_tf_imported"] is False
    assert served["dtypes"] == ["int64", "float32"]
    top_items, scores = expected_top_k(model, popularity, CLIENT_SESSIONS, TOP_K)
    np.testing.assert_array_equal(served["top_items"], top_items)
    np.testing.assert_allclose(served["scores"], scores, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_saved_model_cli_run(exported):
    model, popularity, export_dir = exported
    cli = os.path.join(os.path.dirname(helpers.PYTHON), "saved_model_cli")
    result = subprocess.run(
        [cli, "run", "--dir", export_dir, "--tag_set", "serve", "--signature_def",
         "serving_default", "--input_exprs", "item_ids=[[3, 4, 5], [7, 0, 0]]"],
        capture_output=True, text=True, timeout=120, env=helpers.SUBPROCESS_ENV, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"output key top_items:\s*(\[\[.*?\]\])", result.stdout, re.S)
    assert match, result.stdout
    printed = np.array(json.loads(re.sub(r"\s+", ",", match.group(1).replace("[ ", "["))))
    top_items, _ = expected_top_k(model, popularity, [[3, 4, 5], [7]], TOP_K)
    np.testing.assert_array_equal(printed, top_items)


def test_signature_is_the_documented_one(loaded):
    inputs = loaded.structured_input_signature[1]
    assert list(inputs) == ["item_ids"]
    assert inputs["item_ids"].dtype == tf.int64 and inputs["item_ids"].shape.as_list() == [None, None]
    outputs = loaded.structured_outputs
    assert set(outputs) == {"top_items", "scores"}
    assert outputs["top_items"].dtype == tf.int64 and outputs["scores"].dtype == tf.float32


def test_mixed_length_batch_matches_rows_served_alone_and_the_model(exported, loaded):
    model, popularity, _ = exported
    top_items, scores = serve(loaded, CLIENT_SESSIONS)
    assert top_items.shape == scores.shape == (len(CLIENT_SESSIONS), TOP_K)
    expected_items, expected_scores = expected_top_k(model, popularity, CLIENT_SESSIONS, TOP_K)
    np.testing.assert_array_equal(top_items, expected_items)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)
    for row, session in enumerate(CLIENT_SESSIONS):
        alone_items, alone_scores = serve(loaded, [session])
        np.testing.assert_array_equal(alone_items[0], top_items[row])
        np.testing.assert_allclose(alone_scores[0], scores[row], rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first


def test_unknown_ids_are_dropped_and_only_the_last_max_len_count(loaded):
    # Unknown ids anywhere are ignored, so these all serve as [3, 4, 5, 6, 7].
    variants = [[3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7], [3, 0, 4, 31, 5, -1, 6, 999, 7],
                [0, 0, 3, 4, 5, 6, 7, 0]]
    top_items, scores = serve(loaded, variants)
    for row in range(1, len(variants)):
        np.testing.assert_array_equal(top_items[row], top_items[0])
        np.testing.assert_allclose(scores[row], scores[0], rtol=1e-5, atol=1e-5)
    # Order matters: the last item is the query, so a reordering is served differently.
    reordered, _ = serve(loaded, [[7, 6, 5, 4, 3]])
    assert not np.array_equal(reordered[0], top_items[0])


def test_session_with_no_known_id_gets_the_most_popular_items(exported, loaded):
    _, popularity, _ = exported
    top_items, scores = serve(loaded, [[0, 999, -3], [0], [31, 32]])
    most_popular = np.argsort(-popularity)[:TOP_K] + 1
    for row in range(3):
        np.testing.assert_array_equal(top_items[row], most_popular)
        np.testing.assert_allclose(scores[row], np.sort(popularity)[::-1][:TOP_K])


def test_k_larger_than_the_catalogue_gives_every_item(tmp_path):
    model, popularity = build_model(1)
    export_dir = str(tmp_path / "export")
    export.export_saved_model(model, export_dir, top_k=NUM_ITEMS + 50, item_popularity=popularity)
    signature = tf.saved_model.load(export_dir).signatures[export.SIGNATURE_KEY]
    top_items, scores = serve(signature, [[3, 4, 5], [0, 999]])
    assert top_items.shape == (2, NUM_ITEMS)
    for row in top_items:
        assert sorted(row.tolist()) == list(range(1, NUM_ITEMS + 1))
    expected_items, _ = expected_top_k(model, popularity, [[3, 4, 5], [0, 999]], NUM_ITEMS)
    np.testing.assert_array_equal(top_items, expected_items)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_clean_sessions_against_numpy(seed):
    rng = np.random.default_rng(seed)
    batch, width = 9, 12
    raw = rng.integers(-5, NUM_ITEMS + 10, size=(batch, width))
    raw[rng.random((batch, width)) < 0.2] = 0
    raw[0] = 0  # an all-padding row
    raw[1, :] = np.arange(1, width + 1)  # all known, longer than max_len
    ids, lengths = export.clean_sessions(tf.constant(raw), NUM_ITEMS, MAX_LEN)
    ids, lengths = ids.numpy(), lengths.numpy()
    assert ids.dtype == np.int32 and ids.shape == (batch, min(width, MAX_LEN) + 1)
    for row in range(batch):
        cleaned = numpy_clean(raw[row])
        assert lengths[row] == len(cleaned)
        assert ids[row].tolist() == cleaned + [0] * (ids.shape[1] - len(cleaned))
    assert ids[1, :MAX_LEN].tolist() == list(range(width - MAX_LEN + 1, width + 1))


def test_clean_sessions_keeps_short_inputs_short():
    ids, lengths = export.clean_sessions(tf.constant([[4, 0], [31, 2]], tf.int64), NUM_ITEMS,
                                         MAX_LEN)
    # width min(2, 5) + 1 spare padding column.
    assert ids.numpy().tolist() == [[4, 0, 0], [2, 0, 0]]
    assert lengths.numpy().tolist() == [1, 1]


def test_load_export_of_a_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(export.MTDError, match="no SavedModel here"):
        export.load_export(str(tmp_path / "nothing"))


def test_exported_recommender_round_trip(exported):
    model, popularity, export_dir = exported
    recommender = export.load_export(export_dir)
    top_items, scores = recommender.recommend(right_pad(CLIENT_SESSIONS))
    expected_items, expected_scores = expected_top_k(model, popularity, CLIENT_SESSIONS, TOP_K)
    np.testing.assert_array_equal(top_items, expected_items)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


RAW_IDS = np.array([f"sku-{index * 7}" for index in range(1, NUM_ITEMS + 1)])  # item j: j*7
RAW_SESSIONS = [["sku-21", "sku-28", "sku-35"], ["nope", "sku-49", ""], ["", "gone"]]


@pytest.fixture(scope="module")
def raw_exported(tmp_path_factory):
    """(export_dir, the recommender) of a random model exported with raw ids."""
    model, popularity = build_model(1)
    export_dir = str(tmp_path_factory.mktemp("raw") / "export")
    export.export_saved_model(model, export_dir, top_k=TOP_K, item_popularity=popularity,
                              raw_item_ids=RAW_IDS)
    return export_dir, export.load_export(export_dir)


def test_raw_ids_in_give_the_internal_lists_in_raw_ids(raw_exported):
    _, recommender = raw_exported
    assert recommender.takes_raw_ids
    width = max(len(row) for row in RAW_SESSIONS)
    padded = [row + [""] * (width - len(row)) for row in RAW_SESSIONS]
    top_raw, raw_scores = recommender.recommend_raw(padded)
    # The same sessions in internal ids: unknown raw ids and padding become 0 (dropped).
    lookup = {raw: index + 1 for index, raw in enumerate(RAW_IDS)}
    internal = [[lookup.get(raw, 0) for raw in row] for row in padded]
    top_items, scores = recommender.recommend(internal)
    np.testing.assert_array_equal(top_raw, RAW_IDS[top_items - 1])
    np.testing.assert_allclose(raw_scores, scores)
    assert top_raw.dtype.kind == "U" and top_raw.shape == (3, TOP_K)


@pytest.mark.slow
def test_raw_signature_serves_in_a_fresh_tensorflow_only_process(raw_exported):
    export_dir, recommender = raw_exported
    program = textwrap.dedent(f"""
        import json, sys
        sys.modules["mtd_tf"] = None
        import tensorflow as tf
        serve = tf.saved_model.load({export_dir!r}).signatures["serving_raw"]
        out = serve(raw_item_ids=tf.constant([["sku-21", "sku-28"]]))
        print(json.dumps([item.decode() for item in out["top_raw_items"].numpy()[0]]))
    """)
    result = subprocess.run(
        [helpers.PYTHON, "-c", program], capture_output=True, text=True, timeout=120,
        cwd=os.path.dirname(export_dir), env=dict(helpers.SUBPROCESS_ENV, PYTHONPATH=""),
        check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    expected, _ = recommender.recommend_raw([["sku-21", "sku-28"]])
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected[0].tolist()


def test_predict_takes_and_returns_raw_ids(raw_exported):
    export_dir, recommender = raw_exported
    result = helpers.run_python(["-m", "mtd_tf.serving.predict", f"--export_dir={export_dir}",
                                 "--session=sku-21 nope sku-28"])
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    expected, _ = recommender.recommend_raw([["sku-21", "nope", "sku-28"]])
    assert printed["session"] == ["sku-21", "nope", "sku-28"]
    assert printed["top_items"] == expected[0].tolist()


def test_a_run_on_a_dataset_with_items_tsv_exports_its_raw_ids(tmp_path):
    data_dir = helpers.write_tiny_dataset(tmp_path / "data")
    raw = np.array([f"shop/{index}" for index in range(1, helpers.TINY_NUM_ITEMS + 1)])
    item_catalog.write_raw_item_ids(tmp_path / "data" / helpers.TINY, raw)
    config = helpers.tiny_config(data_dir, tmp_path / "run", epochs=1, max_train_batches=2)
    helpers.train_and_evaluate(config)
    recommender = export.load_export(str(tmp_path / "run" / "export"))
    top_raw, _ = recommender.recommend_raw([["shop/3", "shop/5"]])
    top_items, _ = recommender.recommend([[3, 5]])
    np.testing.assert_array_equal(top_raw, raw[top_items - 1])


@pytest.mark.slow
def test_saved_model_cli_show_finds_tensorflow_serving_signatures_of_core_ops(raw_exported):
    """What TensorFlow Serving reads: predict-method signatures by name, with typed inputs
    and outputs, and only ops every TensorFlow build has (no Python function inside)."""
    export_dir, _ = raw_exported
    cli = os.path.join(os.path.dirname(helpers.PYTHON), "saved_model_cli")
    result = subprocess.run([cli, "show", "--dir", export_dir, "--all"], capture_output=True,
                            text=True, timeout=120, env=helpers.SUBPROCESS_ENV, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    shown = result.stdout
    for name, inputs, outputs in (
            ("serving_default", {"item_ids": "DT_INT64"},
             {"top_items": "DT_INT64", "scores": "DT_FLOAT"}),
            ("serving_raw", {"raw_item_ids": "DT_STRING"},
             {"top_raw_items": "DT_STRING", "top_items": "DT_INT64", "scores": "DT_FLOAT"})):
        block = shown.split(f"signature_def['{name}']:")[1].split("signature_def[")[0]
        assert "Method name is: tensorflow/serving/predict" in block
        for kind, tensors in (("inputs", inputs), ("outputs", outputs)):
            for tensor, dtype in tensors.items():
                assert re.search(rf"{kind}\['{tensor}'\] tensor_info:\s*dtype: {dtype}", block), (
                    name, tensor)
    ops = re.search(r"contains the following ops: \{(.*?)\}", shown).group(1)
    op_names = {op.strip().strip("'") for op in ops.split(",")}
    assert op_names and op_names <= set(dir(tf.raw_ops)), op_names - set(dir(tf.raw_ops))
    assert not {"PyFunc", "EagerPyFunc", "PyFuncStateless"} & op_names


def test_session_embeddings_and_candidate_vectors_give_the_models_scores(exported):
    """For an approximate-nearest-neighbour index of the user's choice: the query vector of a
    served session times the exported candidate vectors is the model's score (the paper's
    output; with the repeat head, the explore scores the mixture starts from)."""
    model, _, export_dir = exported
    embed = tf.saved_model.load(export_dir).signatures[export.EMBEDDING_SIGNATURE_KEY]
    candidates = np.load(os.path.join(export_dir, export.CANDIDATES_FILE), allow_pickle=False)
    assert candidates.shape == (NUM_ITEMS, DIM) and candidates.dtype == np.float32
    embeddings = embed(item_ids=tf.constant(right_pad(CLIENT_SESSIONS)))["session_embedding"]
    embeddings = embeddings.numpy()
    for row, session in zip(embeddings, CLIENT_SESSIONS):
        cleaned = numpy_clean(session)
        if not cleaned:  # no known id: no embedding (the list is the popularity fallback)
            assert not row.any()
            continue
        ids = np.array([cleaned], np.int32)
        expected = tf.matmul(model.query_vectors(ids, training=False), model.candidate_vectors(),
                             transpose_b=True)[0].numpy()
        np.testing.assert_allclose(row @ candidates.T, expected, rtol=1e-4, atol=1e-4)


def saved_tables(export_dir):
    """Shapes of the export's saved [rows >= M, d] variables."""
    saved = tf.train.list_variables(os.path.join(export_dir, "variables", "variables"))
    return sorted(shape for name, shape in saved if name.startswith("_all_variables/")
                  and len(shape) == 2 and shape[0] >= NUM_ITEMS and shape[1] == DIM)


def test_a_scaled_cosine_export_serves_the_models_lists_from_its_own_table(tmp_path, exported):
    """Scaled cosines: the export holds the normalised table (padded to a whole block of
    128 rows) beside the model's, and serves the model's lists and scores; a repeat head
    scores through the model and holds no second table."""
    model, popularity = build_model(0, score_scale=4.0)
    export_dir = str(tmp_path / "scaled")
    export.export_saved_model(model, export_dir, top_k=TOP_K, item_popularity=popularity)
    assert saved_tables(export_dir) == [[NUM_ITEMS, DIM], [128, DIM]]
    signature = tf.saved_model.load(export_dir).signatures[export.SIGNATURE_KEY]
    items, scores = serve(signature, CLIENT_SESSIONS)
    want_items, want_scores = expected_top_k(model, popularity, CLIENT_SESSIONS, TOP_K)
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
    other, _, other_dir = exported
    assert saved_tables(other_dir) == ([[NUM_ITEMS, DIM]] if other.repeat_head
                                       else [[NUM_ITEMS, DIM], [128, DIM]])
