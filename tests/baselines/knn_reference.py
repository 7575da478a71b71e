"""Plain-Python session kNN and sequential rules, one loop per prefix, neighbour and item, the
way session-rec writes them; the vectorised baselines are checked against these."""

import math

import numpy as np

from mtd_tf.data.sessions import Sessions

# session-rec's weights of a distance d >= 1 (SR's gap between two clicks, V-SKNN's step
# from the prefix's end), written out.
DISTANCE_WEIGHTS = {
    "same": lambda distance: 1.0,
    "div": lambda distance: 1 / distance,
    "linear": lambda distance: max(0.0, 1 - 0.1 * distance),
    "quadratic": lambda distance: 1 / distance**2,
    "log": lambda distance: 1 / math.log10(distance + 1.7),
}


def random_case(seed, num_items=15, seen_items=12):
    """(train lists, prefix lists, num_items): items above `seen_items` never occur in
    training; prefixes repeat items, have length 1, hold unseen items, and one is empty."""
    rng = np.random.default_rng(seed)
    train = [[int(item) for item in rng.integers(1, seen_items + 1, size=rng.integers(1, 7))]
             for _ in range(40)]
    prefixes = [[int(item) for item in rng.integers(1, num_items + 1, size=rng.integers(1, 6))]
                for _ in range(25)]
    prefixes += [[3], [5, 5, 5], [13], [14, 2], [2, 7, 2, 7], []]
    return train, prefixes, num_items


def last_position(sequence, item):
    """1-based position of the last occurrence of `item` in `sequence`."""
    return max(position for position, value in enumerate(sequence, 1) if value == item)


def popularity(train, num_items):
    return [sum(session.count(item) for session in train) for item in range(1, num_items + 1)]


def idf(train, item):
    """ln(sessions / clicks on item), as session-rec's idf."""
    return math.log(len(train) / sum(session.count(item) for session in train))


def knn_scores(train, prefix, k, sample_size, similarity, vote):
    """{item: score} of one prefix.

    Candidates: sessions sharing an item, the `sample_size` most recent (largest index);
    neighbours: the k of highest positive similarity, the more recent first on ties;
    every distinct item j of neighbour n gains vote(prefix, n's items, similarity, j).
    """
    candidates = sorted((index for index, session in enumerate(train)
                         if set(session) & set(prefix)), reverse=True)[:sample_size]
    similarities = [(similarity(prefix, train[index], index), index) for index in candidates]
    neighbours = sorted(((value, index) for value, index in similarities if value > 0),
                        key=lambda pair: (-pair[0], -pair[1]))[:k]
    scores = {}
    for value, index in neighbours:
        for item in set(train[index]):
            scores[item] = scores.get(item, 0.0) + vote(prefix, train[index], value, item)
    return scores


def sequential_rule_scores(train, prefix, steps, weight, pruning):
    """{item: score} of one prefix: session-rec's rule mining, then the last item's rules."""
    rules = {}
    for session in train:
        for position, item in enumerate(session):
            for gap in range(1, min(steps, position) + 1):
                previous = session[position - gap]
                rules.setdefault(previous, {})
                rules[previous][item] = rules[previous].get(item, 0.0) + weight(gap)
    if not prefix or prefix[-1] not in rules:
        return {}
    kept = sorted(rules[prefix[-1]].items(), key=lambda pair: (-pair[1], pair[0]))
    return dict(kept[:pruning] if pruning else kept)


def expected_rows(train, prefixes, num_items, scores_of):
    """float [len(prefixes), M]: each prefix's scores, the popularity fallback elsewhere
    (count / (max + 1) - 1, below every positive score)."""
    counts = popularity(train, num_items)
    fallback = [count / (max(counts) + 1.0) - 1.0 for count in counts]
    rows = []
    for prefix in prefixes:
        scores = scores_of(prefix)
        rows.append([scores[item] if scores.get(item, 0.0) > 0 else fallback[item - 1]
                     for item in range(1, num_items + 1)])
    return np.array(rows)


def check_against_reference(method, train, prefixes, num_items, scores_of):
    """Asserts `method.score` equals the reference rows for every prefix."""
    np.testing.assert_allclose(method.score(Sessions.from_lists(prefixes)),
                               expected_rows(train, prefixes, num_items, scores_of),
                               rtol=1e-12, atol=0)
