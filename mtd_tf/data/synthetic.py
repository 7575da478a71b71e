"""A small, learnable, deterministic dataset, so that everything runs without downloads.

Sessions are drawn from a generative process built to reward what MTD models and to
defeat popularity alone:

- Item popularity is Zipf-like (exponent `_ZIPF_EXPONENT`) over a random ranking of items.
- Items are split into topics (clusters). Each item has a few fixed "successor" items, mostly
  in its own topic, shared by every session: the global item-transition graph therefore
  carries information that any one session does not (the graph module's signal).
- Inside a session the next item is, given the current item x and the session's home topic
  (the first item's topic): one of x's successors (prob. 0.45), a popular item of x's topic
  (0.35), a popular item of the home topic (0.10, so the whole session matters, not only
  the last item), or an item from anywhere by global popularity (0.10, a topic jump).
- Session lengths: 1 + Geometric(1/4.5), i.e. mean 5.5, at least 2, clipped at 50.

The split follows the published protocol (DESIGN.md section 1): sessions are chronological,
the last 10% are test sessions; test items unseen in training are removed, test sessions
then shorter than 2 dropped, and each remaining session of length L gives the L - 1 pairs
(s[:t], s[t]), longest prefix first as in the SR-GNN preprocessing. Items are renumbered
1..M in order of first appearance in training, so every id in 1..M occurs in training.

Measured on the default (seed 0, 2000 items, 20000 sessions; tests/data/test_synthetic.py
checks the bounds): M = 2000, 18,000 training sessions (99,980 clicks, 81,980 training
samples), 8,760 test pairs, generated and written in about 0.2 s. P@20 / MRR@20 of
popularity (POP): 7.7% / 2.1%; of a first-order transition-count predictor (last item ->
most frequent next items in training): 61.6% / 31.7%. Seeds 1 and 2 give 8.9% vs 61-62%.
"""

import os

import numpy as np

from mtd_tf import io_utils
from mtd_tf.data import formats
from mtd_tf.data.sessions import Sessions
from mtd_tf.data.sessions import prefix_target_pairs
from mtd_tf.data.sessions import row_splits_from_lengths

SEED_FILE = "seed.txt"
_ZIPF_EXPONENT = 0.5
_ITEMS_PER_TOPIC = 50
_SUCCESSORS_PER_ITEM = 4
_SUCCESSOR_WEIGHTS = np.array([0.4, 0.3, 0.2, 0.1])
_SUCCESSOR_IN_TOPIC = 0.8
# Probabilities of picking the next item among x's successors, in x's topic, in the home
# topic; the remaining 0.10 is a jump to any item by global popularity.
_P_SUCCESSOR, _P_TOPIC, _P_HOME = 0.45, 0.35, 0.10
_MEAN_EXTRA_LENGTH = 4.5
_MAX_SESSION_LENGTH = 50
_TEST_FRACTION = 0.1


class _ItemSampler:
    """Draws items by popularity, globally or restricted to one topic, vectorised.

    Items are laid out topic by topic; `_offset_cdf` holds, for topic c, c + the cumulative
    within-topic popularity, so one `searchsorted` for c + u samples from topic c.
    """

    def __init__(self, rng, num_items, num_topics):
        ranks = rng.permutation(num_items) + 1
        self.popularity = ranks.astype(np.float64) ** -_ZIPF_EXPONENT  # [num_items]
        self.topic_of = rng.integers(0, num_topics, size=num_items)  # [num_items]
        self._items_by_topic = np.argsort(self.topic_of, kind="stable")
        sorted_topics = self.topic_of[self._items_by_topic]
        sorted_popularity = self.popularity[self._items_by_topic]
        topic_totals = np.bincount(sorted_topics, weights=sorted_popularity, minlength=num_topics)
        within = np.cumsum(sorted_popularity)
        topic_starts = np.concatenate([[0.0], np.cumsum(topic_totals)[:-1]])
        self._offset_cdf = sorted_topics + (within - topic_starts[sorted_topics]) / np.maximum(
            topic_totals[sorted_topics], 1e-300)
        self._global_cdf = np.cumsum(self.popularity) / self.popularity.sum()

    def global_items(self, rng, size):
        """Items (0-based) drawn by global popularity."""
        index = np.searchsorted(self._global_cdf, rng.random(size), side="right")
        return np.minimum(index, len(self._global_cdf) - 1)

    def topic_items(self, rng, topics):
        """One item (0-based) per entry of `topics`, by popularity within that topic."""
        index = np.searchsorted(self._offset_cdf, topics + rng.random(len(topics)), side="right")
        index = np.minimum(index, len(self._offset_cdf) - 1)
        # u < 1 and topic c's last entry is c + 1, so the draw stays inside topic c; topics
        # are only ever taken from existing items, so none asked for is empty.
        return self._items_by_topic[index]


def _successors(rng, sampler, num_items):
    """[num_items, _SUCCESSORS_PER_ITEM] fixed successor items (0-based), never the item itself."""
    items = np.repeat(np.arange(num_items), _SUCCESSORS_PER_ITEM)
    chosen = np.empty_like(items)
    pending = np.ones(len(items), dtype=bool)
    while pending.any():
        index = np.flatnonzero(pending)
        in_topic = rng.random(len(index)) < _SUCCESSOR_IN_TOPIC
        draw = sampler.global_items(rng, len(index))
        draw[in_topic] = sampler.topic_items(rng, sampler.topic_of[items[index[in_topic]]])
        chosen[index] = draw
        pending[index] = draw == items[index]
    return chosen.reshape(num_items, _SUCCESSORS_PER_ITEM)


def _generate_sessions(rng, num_items, num_sessions):
    """Sessions as a right-padded [num_sessions, max_len] matrix of 0-based items, and lengths."""
    num_topics = max(1, num_items // _ITEMS_PER_TOPIC)
    sampler = _ItemSampler(rng, num_items, num_topics)
    successors = _successors(rng, sampler, num_items)
    lengths = np.minimum(1 + rng.geometric(1.0 / _MEAN_EXTRA_LENGTH, size=num_sessions),
                         _MAX_SESSION_LENGTH)
    items = np.zeros((num_sessions, int(lengths.max())), dtype=np.int64)
    items[:, 0] = sampler.global_items(rng, num_sessions)
    home_topic = sampler.topic_of[items[:, 0]]
    for position in range(1, items.shape[1]):
        active = np.flatnonzero(lengths > position)
        current = items[active, position - 1]
        choice = np.searchsorted(np.cumsum([_P_SUCCESSOR, _P_TOPIC, _P_HOME]),
                                 rng.random(len(active)), side="right")
        slot = rng.choice(_SUCCESSORS_PER_ITEM, size=len(active), p=_SUCCESSOR_WEIGHTS)
        nxt = successors[current, slot]
        topics = np.where(choice == 1, sampler.topic_of[current], home_topic[active])
        use_topic = (choice == 1) | (choice == 2)
        nxt[use_topic] = sampler.topic_items(rng, topics[use_topic])
        jump = choice == 3
        nxt[jump] = sampler.global_items(rng, int(jump.sum()))
        items[active, position] = nxt
    return items, lengths


def _ragged(matrix, lengths):
    """Row-major flattening of the first lengths[i] entries of each row, and row_splits."""
    mask = np.arange(matrix.shape[1])[None, :] < lengths[:, None]
    return matrix[mask], row_splits_from_lengths(lengths)


def generate_synthetic_split(seed=0, num_items=2000, num_sessions=20000):
    """Generates the split in memory.

    Args:
      seed: random seed; the same seed gives identical arrays.
      num_items: size of the item pool (M, after renumbering, is at most this).
      num_sessions: sessions generated before the train/test split.

    Returns:
      (train Sessions, test prefixes Sessions, test targets int32 [num_pairs]), ids 1..M.
    """
    if num_items < 2 or num_sessions < 10:
        raise ValueError(f"need num_items >= 2 and num_sessions >= 10, got {num_items}, "
                         f"{num_sessions}")
    rng = np.random.default_rng(seed)
    matrix, lengths = _generate_sessions(rng, num_items, num_sessions)
    num_train = num_sessions - int(round(num_sessions * _TEST_FRACTION))
    train_values, train_splits = _ragged(matrix[:num_train], lengths[:num_train])
    test_values, test_splits = _ragged(matrix[num_train:], lengths[num_train:])

    # New id = 1 + rank of the item's first appearance in training; 0 = unseen in training.
    unique_items, first_index = np.unique(train_values, return_index=True)
    new_id = np.zeros(num_items, dtype=np.int64)
    new_id[unique_items[np.argsort(first_index)]] = np.arange(1, len(unique_items) + 1)
    train = Sessions(new_id[train_values].astype(np.int32), train_splits)

    test_values = new_id[test_values]
    kept = test_values > 0
    session_of_value = np.repeat(np.arange(len(test_splits) - 1), np.diff(test_splits))
    test_lengths = np.bincount(session_of_value[kept], minlength=len(test_splits) - 1)
    long_enough = test_lengths >= 2
    test_values = test_values[kept & long_enough[session_of_value]]
    test_prefixes, test_targets = prefix_target_pairs(
        Sessions(test_values, row_splits_from_lengths(test_lengths[long_enough])))
    return train, test_prefixes, test_targets


def write_synthetic_dataset(folder, seed=0, num_items=2000, num_sessions=20000):
    """Writes TRAIN_TEXT, TEST_TEXT and the seed (`SEED_FILE`) into `folder`, atomically.

    Args: as `generate_synthetic_split`.
    """
    train, test_prefixes, test_targets = generate_synthetic_split(seed, num_items, num_sessions)
    with io_utils.atomic_output_dir(folder) as tmp_folder:
        formats.write_text_split(tmp_folder, train, test_prefixes, test_targets)
        io_utils.atomic_write_text(os.path.join(tmp_folder, SEED_FILE), f"{seed}\n")


def recorded_seed(folder):
    """The seed `folder` was generated with, or None where it is not recorded."""
    try:
        with open(os.path.join(folder, SEED_FILE)) as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return None
