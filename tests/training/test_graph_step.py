"""The graph-infomax step: L_co (eq. 8) against NumPy, one trace, early stopping."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import graph
from mtd_tf.errors import TrainingDivergedError
from mtd_tf.models.graph_infomax import GraphInfomax
from mtd_tf.training.graph_step import make_graph_train_step, run_graph_phase
from tests.layers.test_sparse_gcn import numpy_gcn

DIM = 16


def two_communities(seed, community_size=10, sessions_per_community=12):
    """Sessions that stay inside items 1..10 or inside 11..20: a graph with two clusters."""
    rng = np.random.default_rng(seed)
    sessions = []
    for offset in (0, community_size):
        for _ in range(sessions_per_community):
            sessions.append((offset + rng.integers(1, community_size + 1, size=4)).tolist())
    num_items = 2 * community_size
    normalized = graph.normalized_adjacency(graph.transition_adjacency(sessions, num_items))
    features = rng.normal(0.0, 0.05, (num_items, DIM)).astype(np.float32)
    return features, normalized


def built_infomax(encoder="gcn", l2=1e-6, num_items=20):
    infomax = GraphInfomax(encoder=encoder, l2=l2)
    infomax.build((num_items, DIM))
    return infomax


def numpy_infomax_loss(features, dense_adjacency, permutation, infomax):
    """Eq. 8 written out: mean BCE over M positives and M negatives, plus l2 ||Theta||^2."""
    gcn = infomax.encoder_layers[0]
    weights = ([k.numpy() for k in gcn.kernels], [n.gamma.numpy() for n in gcn.layer_norms],
               [n.beta.numpy() for n in gcn.layer_norms])
    positives = numpy_gcn(features, dense_adjacency, *weights)
    negatives = numpy_gcn(features[permutation], dense_adjacency, *weights)
    summary = 1.0 / (1.0 + np.exp(-positives.mean(axis=0)))
    kernel = infomax.discriminator.kernel.numpy()
    xi_positive = 1.0 / (1.0 + np.exp(-(positives @ kernel @ summary)))
    xi_negative = 1.0 / (1.0 + np.exp(-(negatives @ kernel @ summary)))
    cross_entropy = -np.mean(np.concatenate([np.log(xi_positive), np.log(1.0 - xi_negative)]))
    penalty = sum(np.sum(np.square(w.numpy())) for w in infomax.trainable_weights)
    return cross_entropy + infomax.l2 * penalty, positives


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_matches_numpy(seed):
    features, normalized = two_communities(seed)
    # A large l2 so that a wrong penalty would show.
    infomax = built_infomax(l2=0.05)
    for norm in infomax.encoder_layers[0].layer_norms:
        norm.gamma.assign(np.random.default_rng(seed).uniform(0.5, 1.5, DIM).astype(np.float32))
    permutation = np.random.default_rng(seed).permutation(len(features)).astype(np.int32)
    loss, embeddings = infomax.infomax_loss(
        features, graph.to_sparse_tensor(normalized), permutation, training=False)
    expected_loss, expected_embeddings = numpy_infomax_loss(
        features, normalized.toarray(), permutation, infomax)
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-5)
    np.testing.assert_allclose(embeddings.numpy(), expected_embeddings, atol=2e-5)


def test_step_updates_only_the_infomax_variables_and_traces_once():
    features, normalized = two_communities(seed=3)
    with tf.distribute.get_strategy().scope():
        infomax = built_infomax()
        optimizer = keras.optimizers.Adam(1e-2)
        optimizer.build(infomax.trainable_variables)
        table = tf.Variable(features)  # stands for the embedding table, an input here
        step = make_graph_train_step(infomax, optimizer)
        num_optimizer_variables = len(optimizer.variables)
        before = [v.numpy() for v in infomax.trainable_variables]
        adjacency = graph.to_sparse_tensor(normalized)
        rng = np.random.default_rng(0)
        for _ in range(3):
            outputs = step(table, adjacency, rng.permutation(len(features)).astype(np.int32))
    assert set(outputs) == {"loss/co", "embeddings"}
    assert outputs["embeddings"].shape == features.shape
    np.testing.assert_array_equal(table.numpy(), features)
    assert all(np.any(v.numpy() != b) for v, b in zip(infomax.trainable_variables, before))
    assert len(optimizer.variables) == num_optimizer_variables  # slots existed before the trace
    # A graph of another size fits the same signature.
    small_features, small_graph = features[:5], normalized[:5, :5]
    step(small_features, graph.to_sparse_tensor(small_graph), np.arange(5, dtype=np.int32)[::-1])
    assert step.experimental_get_tracing_count() == 1


def test_embeddings_come_from_the_same_forward_pass():
    features, normalized = two_communities(seed=4)
    infomax = built_infomax()
    adjacency = graph.to_sparse_tensor(normalized)
    expected = infomax(features, adjacency).numpy()  # weights before the update
    step = make_graph_train_step(infomax, keras.optimizers.Adam(1e-2))
    outputs = step(features, adjacency, np.arange(20, dtype=np.int32))
    np.testing.assert_allclose(outputs["embeddings"].numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("encoder", ["gcn", "gat"])
def test_loss_decreases_on_two_communities(encoder):
    keras.utils.set_random_seed(0)  # the initial weights
    features, normalized = two_communities(seed=5)
    infomax = built_infomax(encoder=encoder)
    step = make_graph_train_step(infomax, keras.optimizers.Adam(3e-2))
    adjacency = graph.to_sparse_tensor(normalized)
    rng = np.random.default_rng(0)
    losses = [float(step(features, adjacency, rng.permutation(20).astype(np.int32))["loss/co"])
              for _ in range(30)]
    # Untrained, the discriminator is near chance (L_co ~ log 2 = 0.69); after 30 steps the
    # loss is about a third of that on every initialisation tried (seeds 0-5: 0.28-0.49).
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def test_early_stopping_with_a_frozen_model():
    features, normalized = two_communities(seed=6)
    infomax = built_infomax()
    step = make_graph_train_step(infomax, keras.optimizers.Adam(learning_rate=0.0))
    embeddings, info = run_graph_phase(step, features, graph.to_sparse_tensor(normalized),
                                       max_steps=200, patience=2, seed=0)
    assert info["stopped_early"] and info["steps"] < 200
    assert set(info) == {"steps", "loss/co", "stopped_early"}
    # Nothing learns, so every step's H is the encoder applied to the same table.
    np.testing.assert_allclose(
        embeddings.numpy(), infomax(features, graph.to_sparse_tensor(normalized)).numpy(), atol=1e-6)


class ScriptedStep:
    """Stands in for the train step: fixed losses, and H filled with the step number."""

    def __init__(self, losses):
        self.losses = losses
        self.permutations = []

    def __call__(self, features, adjacency, permutation):
        self.permutations.append(permutation)
        step = len(self.permutations)
        return {"loss/co": tf.constant(self.losses[step - 1]),
                "embeddings": tf.fill(tf.shape(features), float(step))}


def test_keeps_the_embeddings_of_the_best_step():
    # Best loss 1.0 at step 4, then three steps without improvement: stop after step 7.
    scripted = ScriptedStep([3.0, 2.0, 2.5, 1.0, 1.5, 1.0, 1.1, 0.5])
    embeddings, info = run_graph_phase(scripted, np.zeros((4, 2), np.float32), None,
                                       max_steps=100, patience=3, seed=1)
    assert info == {"steps": 7, "loss/co": 1.0, "stopped_early": True}
    np.testing.assert_array_equal(embeddings.numpy(), np.full((4, 2), 4.0))


def test_runs_to_max_steps_while_improving():
    scripted = ScriptedStep([5.0, 4.0, 3.0, 2.0])
    embeddings, info = run_graph_phase(scripted, np.zeros((3, 2), np.float32), None,
                                       max_steps=4, patience=1)
    assert info == {"steps": 4, "loss/co": 2.0, "stopped_early": False}
    np.testing.assert_array_equal(embeddings.numpy(), np.full((3, 2), 4.0))


def test_permutations_are_seeded():
    def permutations(seed):
        scripted = ScriptedStep([1.0] * 5)
        run_graph_phase(scripted, np.zeros((6, 2), np.float32), None, max_steps=5, patience=10,
                        seed=seed)
        return np.stack(scripted.permutations)

    first, again, other = permutations(0), permutations(0), permutations(1)
    assert first.dtype == np.int32
    assert all(sorted(p) == list(range(6)) for p in first)
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)
    assert len({tuple(p) for p in first}) > 1  # a fresh permutation each step


def test_divergence_raises():
    with pytest.raises(TrainingDivergedError, match="graph step 2"):
        run_graph_phase(ScriptedStep([1.0, float("nan")]), np.zeros((3, 2), np.float32), None)


@pytest.mark.parametrize("argument, value", [
    ("max_steps", 0), ("patience", 0), ("patience", 1.5), ("max_steps", None)])
def test_run_graph_phase_rejects_bad_arguments(argument, value):
    with pytest.raises(ValueError, match=repr(value)):
        run_graph_phase(ScriptedStep([1.0]), np.zeros((3, 2), np.float32), None, **{argument: value})


def test_step_needs_a_built_model():
    with pytest.raises(ValueError, match="build"):
        make_graph_train_step(GraphInfomax(), keras.optimizers.Adam())


def test_checkpoint_restores_weights_and_optimizer_slots(tmp_path):
    features, normalized = two_communities(seed=7)
    adjacency = graph.to_sparse_tensor(normalized)
    infomax, optimizer = built_infomax(), keras.optimizers.Adam(1e-2)
    step = make_graph_train_step(infomax, optimizer)
    step(features, adjacency, np.arange(20, dtype=np.int32))
    path = tf.train.Checkpoint(infomax=infomax, optimizer=optimizer).write(str(tmp_path / "ckpt"))

    restored, restored_optimizer = built_infomax(), keras.optimizers.Adam(1e-2)
    restored_optimizer.build(restored.trainable_variables)
    tf.train.Checkpoint(infomax=restored, optimizer=restored_optimizer).read(path).assert_consumed()
    np.testing.assert_array_equal(restored(features, adjacency).numpy(),
                                  infomax(features, adjacency).numpy())
    for saved, loaded in zip(optimizer.variables, restored_optimizer.variables):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
