"""Ragged containers for sessions: flat numpy arrays, so augmentation and batching vectorise."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Sessions:
    """Variable-length int sequences stored flat.

    Attributes:
      values: int32 [total_items], all sessions concatenated in order.
      row_splits: int64 [num_sessions + 1], session i is values[row_splits[i]:row_splits[i+1]].
    """

    values: np.ndarray
    row_splits: np.ndarray

    @classmethod
    def from_lists(cls, sequences):
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        row_splits = row_splits_from_lengths(lengths)
        values = np.fromiter(
            (item for s in sequences for item in s), dtype=np.int64, count=int(row_splits[-1]))
        return cls(values.astype(np.int32), row_splits)

    @property
    def lengths(self):
        return np.diff(self.row_splits)

    def __len__(self):
        return len(self.row_splits) - 1

    def __getitem__(self, index):
        return self.values[self.row_splits[index]:self.row_splits[index + 1]]

    def to_lists(self):
        return [self[i].tolist() for i in range(len(self))]

    def take(self, start, stop):
        """Sessions start..stop-1 as a new `Sessions` (a view of the values)."""
        splits = self.row_splits[start:stop + 1]
        return Sessions(self.values[splits[0]:splits[-1]], splits - splits[0])


def row_splits_from_lengths(lengths):
    """int64 [len(lengths) + 1]: where each of back-to-back sessions of these lengths starts."""
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def prefix_target_pairs(sessions, min_prefix_len=1):
    """Every (prefix, next item) cut of each session with a prefix of >= `min_prefix_len` ids.

    A session's pairs come longest prefix first: SR-GNN's order, which the published test
    splits keep.

    Args:
      sessions: `Sessions`.
      min_prefix_len: shortest prefix, at least 1.

    Returns:
      (prefixes `Sessions`, int32 targets [num_pairs]).
    """
    lengths = sessions.lengths
    cuts = np.maximum(lengths - min_prefix_len, 0)  # pairs per session
    session_of_pair = np.repeat(np.arange(len(lengths)), cuts)
    rank_in_session = np.arange(len(session_of_pair)) - np.repeat(
        row_splits_from_lengths(cuts)[:-1], cuts)
    prefix_lengths = lengths[session_of_pair] - 1 - rank_in_session
    starts = sessions.row_splits[:-1][session_of_pair]
    targets = sessions.values[starts + prefix_lengths]
    prefix_splits = row_splits_from_lengths(prefix_lengths)
    # Position k of pair p's prefix is values[starts[p] + k].
    within = np.arange(prefix_splits[-1]) - np.repeat(prefix_splits[:-1], prefix_lengths)
    prefix_values = sessions.values[np.repeat(starts, prefix_lengths) + within]
    return Sessions(prefix_values.astype(np.int32), prefix_splits), targets.astype(np.int32)


@dataclasses.dataclass(frozen=True)
class SessionDataset:
    """A published split: training sessions (oldest first) and test (prefix, target) pairs.

    Attributes:
      name: dataset name as resolved by the registry (e.g. "yoochoose1_64").
      train: training sessions.
      test_prefixes: one prefix per test pair.
      test_targets: int32 [num_test], the item that followed each prefix.
      num_items: M; items are 1..M (the largest id in the training sessions), 0 is padding.
    """

    name: str
    train: Sessions
    test_prefixes: Sessions
    test_targets: np.ndarray
    num_items: int
