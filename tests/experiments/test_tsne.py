"""The NumPy t-SNE of Figure 5(d): calibrated perplexity, exact gradient, separated clusters."""

import numpy as np
import pytest

from experiments import tsne


def clusters(seed, num_clusters=4, per_cluster=15, dim=10, spread=4.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=spread, size=(num_clusters, dim))
    points = np.concatenate([center + rng.normal(size=(per_cluster, dim)) for center in centers])
    return points, np.repeat(np.arange(num_clusters), per_cluster)


@pytest.mark.parametrize("seed", [0, 1])
def test_each_row_has_the_asked_perplexity(seed):
    points, _ = clusters(seed)
    conditional = tsne._conditional_probabilities(tsne.squared_distances(points), 7.0)
    entropy = -np.sum(conditional * np.log(np.maximum(conditional, 1e-300)), axis=1)
    np.testing.assert_allclose(np.exp(entropy), 7.0, rtol=1e-3)
    np.testing.assert_allclose(conditional.sum(axis=1), 1.0)
    assert np.all(np.diag(conditional) == 0.0)


def test_gradient_matches_central_differences_of_the_divergence():
    rng = np.random.default_rng(0)
    affinity = rng.uniform(size=(6, 6))
    affinity = affinity + affinity.T
    np.fill_diagonal(affinity, 0.0)
    joint = affinity / affinity.sum()
    layout = rng.normal(size=(6, 2))
    step = 1e-6
    numeric = np.zeros_like(layout)
    for index in np.ndindex(*layout.shape):
        shift = np.zeros_like(layout)
        shift[index] = step
        numeric[index] = (tsne.kl_divergence(joint, layout + shift)
                          - tsne.kl_divergence(joint, layout - shift)) / (2 * step)
    np.testing.assert_allclose(tsne.kl_gradient(joint, layout), numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_separated_clusters_stay_separated_and_runs_repeat(seed):
    points, labels = clusters(seed)
    layout, divergence = tsne.tsne(points, perplexity=10.0, num_iterations=400, seed=seed)
    assert layout.shape == (60, 2) and np.isfinite(divergence) and divergence >= 0.0
    # The clusters are apart in the input (5-NN accuracy 1.0 there) and must stay so. A
    # t-SNE layout amplifies rounding, which differs between CPUs' BLAS kernels, so a point
    # or two at a cluster's edge may land elsewhere; a layout that lost the clusters
    # scores about 1/4.
    assert tsne.knn_label_accuracy(points, labels) == 1.0
    assert tsne.knn_label_accuracy(layout, labels) >= 0.95
    again, _ = tsne.tsne(points, perplexity=10.0, num_iterations=400, seed=seed)
    np.testing.assert_array_equal(layout, again)


def test_knn_label_accuracy_counts_leave_one_out_majorities():
    # Points on a line: 0, 1, 2 labelled 0; 10, 11 labelled 1; 12 labelled 0. With k = 2:
    # 0, 1, 2 see two 0s (right); 10 sees 11 and 12, a 1-1 tie won by the nearer, 11 (right);
    # 11 sees 10 and 12 at equal distance, a tie won by the lower index, 10 (right);
    # 12 sees 11 and 10, both labelled 1 (wrong): 5 of 6.
    points = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    labels = np.array([0, 0, 0, 1, 1, 0])
    assert tsne.knn_label_accuracy(points, labels, k=2) == pytest.approx(5 / 6)


def test_perplexity_must_be_below_the_number_of_points():
    with pytest.raises(ValueError, match="perplexity"):
        tsne.tsne(np.zeros((5, 3)), perplexity=5.0)
