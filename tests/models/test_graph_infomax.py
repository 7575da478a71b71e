"""GraphInfomax (eq. 6-8 as one Keras model) and the write-back of its output into the item
table: the layer harness, configs, checkpoints and `write_back` against NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import graph
from mtd_tf.models.graph_infomax import GraphInfomax
from mtd_tf.models.graph_infomax import write_back
from mtd_tf.models.mtd import MTDModel
from tests.layers.harness import run_layer_test
from tests.layers.test_graph_attention import numpy_gat
from tests.layers.test_sparse_gcn import numpy_gcn
from tests.training.test_graph_step import DIM
from tests.training.test_graph_step import two_communities

NUM_ITEMS = 20


def numpy_encoder(infomax, features, adjacency):
    """H of `infomax`'s encoder, from its weights, as NumPy."""
    dense = tf.sparse.to_dense(tf.sparse.reorder(adjacency)).numpy()
    features = np.asarray(features, np.float64)
    if infomax.encoder == "gcn":
        gcn = infomax.encoder_layers[0]
        return numpy_gcn(features, dense, [k.numpy() for k in gcn.kernels],
                         [n.gamma.numpy() for n in gcn.layer_norms],
                         [n.beta.numpy() for n in gcn.layer_norms])
    for layer in infomax.encoder_layers:
        features = numpy_gat(features, dense, layer)
    return features


@pytest.mark.parametrize("encoder, num_layers, num_trainable_weights", [
    ("gcn", 2, 2 * 3 + 1),  # per layer: W_l, gamma, beta; then W_g
    ("gat", 1, 5 + 1),  # kernel, two attention vectors, gamma, beta; then W_g
])
def test_model_passes_the_layer_harness(encoder, num_layers, num_trainable_weights):
    features, normalized = two_communities(seed=3)
    small_features, small_normalized = features[:6], normalized[:6, :6]
    run_layer_test(
        GraphInfomax, {"encoder": encoder, "num_layers": num_layers, "l2": 1e-4, "name": "infomax"},
        {"features": features, "adjacency": graph.to_sparse_tensor(normalized)},
        resized_input_data={"features": small_features,
                            "adjacency": graph.to_sparse_tensor(small_normalized)},
        expected_output_shape=(NUM_ITEMS, DIM),
        expected_num_trainable_weights=num_trainable_weights,
        reference=numpy_encoder, rtol=1e-5, atol=1e-5,
        # The discriminator scores H only inside the infomax loss (eq. 7-8).
        weights_not_in_call=("infomax/discriminator",),
        precision_tolerance_scale=2.0)


@pytest.mark.parametrize("mode, mix", [("replace", 1.0), ("replace", 0.3), ("rescale", 1.0),
                                       ("rescale", 0.2)])
def test_write_back_matches_numpy(mode, mix):
    """E <- (1 - mix) E + mix H' on items with an edge, H' = H or H scaled to the table's
    mean row norm; items without an edge keep their row."""
    rng = np.random.default_rng(0)
    model = MTDModel(num_items=6, embedding_dim=4)
    model.build()
    table = rng.normal(size=(6, 4)).astype(np.float32)
    model.item_embeddings.assign(table)
    graph_rows = 10.0 * rng.normal(size=(6, 4)).astype(np.float32)
    has_edge = np.array([True, False, True, True, False, True])
    write_back(model, tf.constant(graph_rows), has_edge, mode, mix)
    scaled = graph_rows
    if mode == "rescale":
        scaled = graph_rows * (np.linalg.norm(table, axis=1).mean()
                               / np.linalg.norm(graph_rows, axis=1).mean())
    expected = np.where(has_edge[:, None], (1 - mix) * table + mix * scaled, table)
    np.testing.assert_allclose(model.item_embeddings.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, bad", [
    ({"encoder": "gin"}, "'gin'"), ({"num_layers": 0}, "0"), ({"l2": -1.0}, "-1.0")])
def test_rejects_bad_arguments(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        GraphInfomax(**kwargs)


@pytest.mark.parametrize("encoder, num_layers", [("gcn", 2), ("gat", 2)])
def test_config_round_trip_and_layers(encoder, num_layers):
    infomax = GraphInfomax(encoder=encoder, num_layers=num_layers, l2=1e-4, name="infomax")
    restored = GraphInfomax.from_config(infomax.get_config())
    assert restored.get_config() == infomax.get_config()
    restored.build((20, DIM))
    # GCN: 2 kernels + 2 LayerNorms (4) + W_g; GAT: 2 x (kernel, 2 attention vectors, 2 LN) + W_g.
    assert len(restored.trainable_weights) == {"gcn": 7, "gat": 11}[encoder]


@pytest.mark.parametrize("encoder, num_layers", [("gcn", 1), ("gcn", 2), ("gat", 2)])
def test_plain_checkpoint_round_trips_every_variable(tmp_path, encoder, num_layers):
    # The encoder layers live in a Python list, which Keras 3 keeps out of TensorFlow's
    # object graph; only an attribute per layer makes a plain checkpoint see their weights.
    def built(seed):
        infomax = GraphInfomax(encoder=encoder, num_layers=num_layers)
        infomax.build((20, DIM))
        rng = np.random.default_rng(seed)
        for variable in infomax.variables:
            variable.assign(rng.normal(size=variable.shape).astype(np.float32))
        return infomax

    infomax = built(seed=0)
    path = tf.train.Checkpoint(infomax=infomax).write(str(tmp_path / "ckpt"))
    restored = built(seed=1)
    tf.train.Checkpoint(infomax=restored).read(path).assert_consumed()
    assert len(restored.variables) == len(infomax.variables)
    for saved, loaded in zip(infomax.variables, restored.variables):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
