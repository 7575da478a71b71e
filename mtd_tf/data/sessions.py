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
        row_splits = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=row_splits[1:])
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
