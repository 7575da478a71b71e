"""Exact t-SNE in NumPy (van der Maaten and Hinton, JMLR 2008) and a neighbour-label score.

For a few hundred points (Figure 5(d) maps 180 session vectors) the exact O(N^2) method
takes about a second, so no Barnes-Hut tree and no scikit-learn are needed. The optimiser
is the reference implementation's: early exaggeration 12 for the first 250 iterations,
momentum 0.5 then 0.8, learning rate 200, per-coordinate gains.
"""

import numpy as np

_EPSILON = 1e-12


def squared_distances(points):
    """[N, N] squared Euclidean distances (clipped at 0 against round-off)."""
    norms = np.sum(points * points, axis=1)
    return np.maximum(norms[:, None] + norms[None, :] - 2.0 * points @ points.T, 0.0)


def _conditional_probabilities(distances, perplexity, tolerance=1e-5, max_steps=200):
    """p_{j|i} with each row's Gaussian width found by bisection on its entropy."""
    num_points = len(distances)
    target_entropy = np.log(perplexity)
    probabilities = np.zeros_like(distances)
    for row in range(num_points):
        others = np.arange(num_points) != row
        shifted = distances[row, others] - distances[row, others].min()  # [N - 1]
        beta, low, high = 1.0, 0.0, np.inf
        for _ in range(max_steps):
            weights = np.exp(-shifted * beta)
            total = weights.sum()
            entropy = np.log(total) + beta * np.dot(shifted, weights) / total
            if abs(entropy - target_entropy) < tolerance:
                break
            if entropy > target_entropy:  # too flat: narrow the Gaussian
                low = beta
                beta = beta * 2.0 if np.isinf(high) else (beta + high) / 2.0
            else:
                high = beta
                beta = (beta + low) / 2.0
        probabilities[row, others] = weights / total
    return probabilities


def tsne(features, perplexity=30.0, num_iterations=1000, seed=0, learning_rate=200.0,
         early_exaggeration=12.0, exaggeration_iterations=250):
    """Embeds `features` in 2-D.

    Args:
      features: float [N, D].
      perplexity: effective number of neighbours; must be below N.
      num_iterations: gradient steps.
      seed: seed of the initial layout (N(0, 1e-4)).

    Returns:
      (float64 [N, 2] coordinates, final KL(P || Q)).
    """
    points = np.asarray(features, dtype=np.float64)
    num_points = len(points)
    if not 1.0 <= perplexity < num_points:
        raise ValueError(f"perplexity must be in [1, {num_points}), got {perplexity!r}")
    conditional = _conditional_probabilities(squared_distances(points), perplexity)
    joint = np.maximum((conditional + conditional.T) / (2.0 * num_points), _EPSILON)  # [N, N]
    layout = np.random.default_rng(seed).normal(scale=1e-4, size=(num_points, 2))
    velocity = np.zeros_like(layout)
    gains = np.ones_like(layout)
    for iteration in range(num_iterations):
        early = iteration < exaggeration_iterations
        gradient = kl_gradient((early_exaggeration if early else 1.0) * joint, layout)
        same_direction = np.sign(gradient) == np.sign(velocity)
        gains = np.maximum(np.where(same_direction, gains * 0.8, gains + 0.2), 0.01)
        velocity = (0.5 if early else 0.8) * velocity - learning_rate * gains * gradient
        layout = layout + velocity
        layout -= layout.mean(axis=0)
    return layout, kl_divergence(joint, layout)


def _student_t_similarity(layout):
    """(Q, the Student-t kernel [N, N]) of a layout, both with a zero diagonal."""
    kernel = 1.0 / (1.0 + squared_distances(layout))
    np.fill_diagonal(kernel, 0.0)
    return np.maximum(kernel / kernel.sum(), _EPSILON), kernel


def kl_divergence(joint, layout):
    """KL(P || Q) over the off-diagonal pairs: what the gradient steps minimise."""
    similarity, _ = _student_t_similarity(layout)
    off_diagonal = ~np.eye(len(layout), dtype=bool)
    return float(np.sum(joint[off_diagonal] * np.log(joint[off_diagonal]
                                                     / similarity[off_diagonal])))


def kl_gradient(joint, layout):
    """d KL(P || Q) / d layout for a symmetric P summing to one (van der Maaten and Hinton
    2008, eq. 5); early exaggeration passes a scaled P."""
    similarity, kernel = _student_t_similarity(layout)
    weights = (joint - similarity) * kernel
    return 4.0 * (weights.sum(axis=1)[:, None] * layout - weights @ layout)


def knn_label_accuracy(points, labels, k=5):
    """Leave-one-out k-nearest-neighbour accuracy of `labels` (majority vote, ties to the
    label of the nearer neighbour): how well the points cluster by label."""
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    distances = squared_distances(points)
    np.fill_diagonal(distances, np.inf)
    neighbours = np.argsort(distances, axis=1, kind="stable")[:, :k]  # [N, k], nearest first
    correct = 0
    for row, columns in enumerate(neighbours):
        votes = labels[columns]
        values, counts = np.unique(votes, return_counts=True)
        tied = set(values[counts == counts.max()])
        predicted = next(label for label in votes if label in tied)
        correct += predicted == labels[row]
    return correct / len(points)
