"""The decay functions of session-rec's V-SKNN and SR, by name.

Two families (session-rec, `algorithms/knn/vsknn.py` and `algorithms/baselines/sr.py`):

- `gap_decay(name, gaps)`, a weight for a distance of `gap` >= 1 steps: SR's weight of a
  rule from an item to one `gap` clicks later, and V-SKNN's `weighting_score` of a
  neighbour whose most recent item shared with the prefix is the `gap`-th from the end
  (1 = the last item):
  same 1; div 1/g; linear max(0, 1 - 0.1 g); quadratic 1/g^2; log 1/log10(g + 1.7).
- `position_weight(name, positions, lengths)`, V-SKNN's `weighting` of a prefix item at
  (1-based) position i of a prefix of length L (its last occurrence when it repeats):
  same 1; div i/L; linear max(0, 1 - 0.1 (L - i)); quadratic (i/L)^2;
  log 1/log10(L - i + 1.7).

Both `linear`s are clipped at 0. The reference's gap `linear` turns negative beyond 10
steps, and its position `linear` is 0 for every position past the 10th counted from the
*start* (`if i <= 10`), so a long prefix loses even its last item; mtd-tf keeps the
evident intent, a weight falling by 0.1 per step from the end and never below 0.
"""

import numpy as np

DECAYS = ("same", "div", "linear", "quadratic", "log")


def gap_decay(name, gaps):
    """float [n]: the weight of each gap (int [n], >= 1) under decay `name`."""
    gaps = np.asarray(gaps, dtype=np.float64)
    if name == "same":
        return np.ones_like(gaps)
    if name == "div":
        return 1.0 / gaps
    if name == "linear":
        return np.maximum(1.0 - 0.1 * gaps, 0.0)
    if name == "quadratic":
        return 1.0 / gaps**2
    if name == "log":
        return 1.0 / np.log10(gaps + 1.7)
    raise ValueError(f"unknown decay {name!r}: expected one of {DECAYS}")


def position_weight(name, positions, lengths):
    """float [n]: the weight of 1-based positions (int [n]) in prefixes of `lengths` (int [n])."""
    positions = np.asarray(positions, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    if name == "div":
        return positions / lengths
    if name == "quadratic":
        return (positions / lengths)**2
    # The other three are functions of the distance from the end (0 = the last item).
    from_end = lengths - positions
    if name == "log":
        return 1.0 / np.log10(from_end + 1.7)
    if name == "same":
        return np.ones_like(from_end)
    if name == "linear":
        return np.maximum(1.0 - 0.1 * from_end, 0.0)
    raise ValueError(f"unknown decay {name!r}: expected one of {DECAYS}")
